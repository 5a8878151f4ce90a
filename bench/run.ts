/** `make bench`: every benchmark in turn, each printing its own table; one control plane for all. */
import { withControlPlane } from "./control-plane.js";
import { main as controller } from "./controller.js";
import { main as discovery } from "./discovery.js";
import { main as health } from "./health.js";
import { main as podNetwork } from "./pod-network.js";
import { main as prepare } from "./prepare.js";
import { main as publishing } from "./publishing.js";

await discovery();
await health();
await withControlPlane(async (kubeconfig) => {
  process.env["DRA_SRIOV_TEST_KUBECONFIG"] = kubeconfig;
  await publishing();
  await controller();
  await prepare();
  await podNetwork();
});
