import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyScenario,
  attachedSandboxes,
  clusterCommand,
  clusterEnv,
  deleteScenarioLeavingNothing,
  e2eNamespace,
  getClaim,
  getPod,
  hostVfs,
  pciAddressOf,
  podInterface,
  upgradeDriver,
  useScenario,
  waitFor,
  waitNodePluginArg,
  waitPodReady,
} from "../support.js";

const SCENARIO = "multus-integration";
const NS = e2eNamespace("sriov-multus");
const POD = "pod0";
const CLAIM = "sriov-vf";
const NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";

interface StatusEntry {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
  "device-info"?: unknown;
}

/** Files below a directory of the node, relative to it (none when it does not exist). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

/** The node's device-information directory (/var/run/k8s.cni.cncf.io/devinfo). */
const devinfoDir = () => path.join(clusterEnv().hostRoot, "var/run/k8s.cni.cncf.io/devinfo");

/** Multus's cache of the node (its cniDir, hack/lib/multus.sh): what a sandbox left there. */
const multusCache = () => filesUnder(path.join(clusterEnv().stateDir, "cni/multus"));

/**
 * demo/multus-integration: a real thin Multus v4.2.2 as the node's CNI (installed for this
 * case, removed after it; the driver's networks-annotation mode stays off) and the release
 * with driver.deviceInfo (rolled back after). Multus finds the pod's VF in the kubelet's
 * PodResources API under the claim's name, the NetworkAttachmentDefinition's resourceName,
 * and hands the CNI the device ID, the VF's PCI address (the driver's CDI device name), as
 * deviceID; it reports the device information the driver wrote as device-info.
 */
describe.runIf(clusterEnv().driverMode === "pods")("demo/multus-integration", () => {
  // Registered before the scenario's hooks: Multus and the release's values are there
  // before the scenario is cleaned up, and go only after it was deleted (hooks after run
  // last-registered first).
  beforeAll(() => clusterCommand(["multus", "install"]), 600_000);
  afterAll(() => clusterCommand(["multus", "remove"]), 180_000);
  let rollback: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    rollback = await upgradeDriver(["driver.deviceInfo=true"]);
    await waitNodePluginArg("--device-info");
  }, 300_000);
  afterAll(async () => {
    await rollback?.();
    await waitNodePluginArg("--device-info", false);
  }, 300_000);
  const vfsBefore = useScenario(SCENARIO);

  it("Multus attaches the claim's VF as net1 with the PCI address as deviceID, and writes network-status", async () => {
    const env = clusterEnv();
    const before = multusCache();
    await applyScenario(SCENARIO);
    await waitPodReady(NS, POD);
    const claim = await getClaim(NS, CLAIM);
    const results = claim.status?.allocation?.devices?.results ?? [];
    expect(results).toHaveLength(1);
    const address = pciAddressOf(results[0]!.device);
    const vf = vfsBefore().get(address)!;
    expect(vf.inHostNamespace).toBe(true);

    // The claim's CDI device is named by the VF's PCI address: what the kubelet reports.
    const spec = JSON.parse(
      fs.readFileSync(
        path.join(env.cdiDir, `${env.driverName}-vf_${claim.metadata!.uid!}.json`),
        "utf8",
      ),
    ) as { devices: { name: string }[] };
    expect(spec.devices.map((device) => device.name)).toEqual([address]);
    // The device information the driver wrote, under the names Multus looks for.
    const deviceInfo = { type: "pci", version: "1.1.0", pci: { "pci-address": address } };
    const dpFile = path.join(devinfoDir(), "dp", `${CLAIM}-${address}-device.json`);
    expect(JSON.parse(fs.readFileSync(dpFile, "utf8"))).toEqual(deviceInfo);

    // In the pod: net1 is the VF (its MAC) with an address of the network's range.
    const net1 = await podInterface(NS, POD, "net1");
    expect(net1.mac).toBe(vf.mac);
    expect(net1.ipv4).toHaveLength(1);
    expect(net1.ipv4[0]).toMatch(/^10\.56\.221\.1\d\d\/24$/);
    expect((await hostVfs()).get(address)?.inHostNamespace).toBe(false);
    // Multus attached it, not the driver's NRI hook.
    expect(Object.keys(attachedSandboxes())).toEqual([]);

    // Multus's network-status: the cluster network on eth0, the VF on net1.
    const pod = await getPod(NS, POD);
    const status = JSON.parse(pod.metadata?.annotations?.[NETWORK_STATUS] ?? "[]") as StatusEntry[];
    expect(status).toEqual([
      expect.objectContaining({ interface: "eth0", default: true }),
      expect.objectContaining({
        name: `${NS}/sriov-net`,
        interface: "net1",
        ips: [net1.ipv4[0]!.replace(/\/24$/, "")],
        mac: vf.mac,
        "device-info": deviceInfo,
      }),
    ]);
    expect(multusCache().length).toBeGreaterThan(before.length);
  });

  it("gives the VF back and leaves nothing when the pod goes", async () => {
    const before = vfsBefore();
    await deleteScenarioLeavingNothing(SCENARIO, before);
    // Multus's cache and its copy of the device information, the driver's file too.
    await waitFor("Multus's and the driver's files of the pod to be gone", () =>
      multusCache().length === 0 && filesUnder(devinfoDir()).length === 0 ? true : undefined,
    );
  });
});
