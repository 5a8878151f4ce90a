/**
 * `make bench`: every benchmark in turn, each printing its own table; one control plane for
 * all. The curves' tables and points go to bench/results/, and bench/plot.py (Debian's
 * python3-matplotlib) draws each as a PNG there. A benchmark that fails is reported and the
 * others still run; `make bench` fails at the end.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { withControlPlane } from "./control-plane.js";
import { main as controller } from "./controller.js";
import { main as discovery } from "./discovery.js";
import { main as health } from "./health.js";
import { main as podNetwork } from "./pod-network.js";
import { main as prepare } from "./prepare.js";
import { main as publishingNodes } from "./publishing-nodes.js";
import { main as publishing } from "./publishing.js";
import { RESULTS_DIR } from "./results.js";
import { main as scheduler } from "./scheduler.js";
import { QUICK, REPO } from "./support.js";

const started = Date.now();
const failed: string[] = [];
async function bench(name: string, run: () => Promise<void>): Promise<void> {
  const at = Date.now();
  try {
    await run();
  } catch (error) {
    failed.push(name);
    console.error(`\nbench ${name} failed:`, error);
  }
  console.log(`(${name}: ${((Date.now() - at) / 1000).toFixed(0)} s)`);
}

await bench("discovery", discovery);
await bench("health", health);
await withControlPlane(async (kubeconfig) => {
  process.env["DRA_SRIOV_TEST_KUBECONFIG"] = kubeconfig;
  await bench("publishing", publishing);
  await bench("publishing-nodes", publishingNodes);
  await bench("controller", controller);
  await bench("prepare", prepare);
  await bench("pod-network", podNetwork);
  await bench("scheduler", scheduler);
});
const plot = spawnSync("/usr/bin/python3", [path.join(REPO, "bench/plot.py"), RESULTS_DIR], {
  stdio: "inherit",
});
if (plot.status !== 0) {
  failed.push("plot (bench/plot.py needs Debian's python3-matplotlib: make prereqs installs it)");
}
console.log(
  `\nmake bench${QUICK ? " (quick)" : ""} took ${((Date.now() - started) / 60_000).toFixed(1)} min`,
);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(", ")}`);
  process.exitCode = 1;
}
