import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  allocatedDevices,
  apiClient,
  clusterEnv,
  deleteScenarioLeavingNothing,
  e2eNamespace,
  execIn,
  getPod,
  upgradeDriver,
  waitNodePluginArg,
  hostVfs,
  kubectl,
  scenarioFile,
  scenarioManifests,
  skipBeforeKubernetes,
  useScenario,
  waitFor,
  waitPodReady,
  claimOfPod,
  type Condition,
} from "../support.js";

const SCENARIO = "whole-nic";
const NS = e2eNamespace("sriov-whole-nic");
/** The PF the scenario's manifests name. */
const SCENARIO_PF = "ens1f0";

interface PublishedDevice {
  name: string;
  attributes?: Record<string, { string?: string }>;
}

interface Slice {
  spec?: { devices?: PublishedDevice[] };
}

/** A whole PF the node publishes, and the device names of its VFs. */
interface WholePf {
  device: string;
  netdev: string;
  pciAddress: string;
  vfDevices: string[];
}

/** The devices the node publishes now. */
async function publishedDevices(): Promise<PublishedDevice[]> {
  const env = clusterEnv();
  const slices = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
  });
  return slices.items.flatMap((slice) => slice.spec?.devices ?? []);
}

/** The whole PFs among the published devices, each with its VFs. */
function wholePfs(devices: readonly PublishedDevice[]): WholePf[] {
  const { driverName } = clusterEnv();
  const attribute = (device: PublishedDevice, name: string) =>
    device.attributes?.[`${driverName}/${name}`]?.string;
  return devices
    .filter((device) => attribute(device, "deviceType") === "pf")
    .map((pf) => ({
      device: pf.name,
      netdev: attribute(pf, "PFName") ?? "",
      pciAddress: attribute(pf, "pciAddress") ?? "",
      vfDevices: devices
        .filter(
          (vf) =>
            attribute(vf, "deviceType") === "vf" &&
            attribute(vf, "pfPciAddress") === attribute(pf, "pciAddress"),
        )
        .map((vf) => vf.name),
    }));
}

/**
 * The scenario's PF if none of its functions is allocated, else another whole PF that is
 * free: pods outside the suite (the README's `make demo` runs before `make test`) may hold
 * a VF of ens1f0, and then the scheduler rightly never gives out the whole of it.
 */
function freeWholePf(pfs: readonly WholePf[], allocated: ReadonlySet<string>): WholePf | undefined {
  const free = pfs.filter(
    (pf) => !allocated.has(pf.device) && pf.vfDevices.every((vf) => !allocated.has(vf)),
  );
  return free.find((pf) => pf.netdev === SCENARIO_PF) ?? free.find((pf) => pf.netdev !== "");
}

/** A scenario manifest with the PF it names replaced by the one the case takes. */
function forPf(manifests: string, pf: WholePf): string {
  return manifests.replaceAll(`"${SCENARIO_PF}"`, `"${pf.netdev}"`);
}

function inHostNamespace(netdev: string): boolean {
  try {
    execFileSync("ip", ["link", "show", "dev", netdev], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * demo/whole-nic: with driver.publishPfs (helm upgrade, rolled back after), one pod takes
 * a whole PF (ens1f0 unless something else holds a VF of it) and its VFs into its network
 * namespace; a pod asking for one VF of it stays Pending with the scheduler's reason until
 * the first pod goes.
 */
describe("demo/whole-nic", () => {
  const vfsBefore = useScenario(SCENARIO);

  it.runIf(clusterEnv().driverMode === "pods")(
    "moves the whole PF with its VFs into one pod; a VF of it waits until that pod goes",
    async (context) => {
      skipBeforeKubernetes(context, 36, "DRAPartitionableDevices (counters, whole PFs)");
      const rollback = await upgradeDriver(["driver.publishPfs=true"]);
      try {
        await waitNodePluginArg("--publish-pfs");
        const pfs = await waitFor(
          "whole PFs published",
          async () => {
            const found = wholePfs(await publishedDevices());
            return found.length > 0 ? found : undefined;
          },
          120_000,
        );
        const pf = freeWholePf(pfs, await allocatedDevices());
        if (pf === undefined) {
          context.skip(
            `every whole PF has a VF allocated outside this suite (${pfs.map((p) => p.netdev).join(", ")}); delete those pods to run this case`,
          );
          return;
        }
        expect(pf.vfDevices.length).toBeGreaterThan(0);

        await kubectl(["apply", "-f", "-"], forPf(scenarioManifests(SCENARIO), pf));
        await waitPodReady(NS, "pod0");
        const claim = await claimOfPod(NS, "pod0", "nic");
        expect(claim.status?.allocation?.devices?.results?.map((r) => r.device)).toEqual([
          pf.device,
        ]);
        // In the pod: the PF as net1, each of its VFs as net1v<index>, each with an address.
        const links = (await execIn(NS, "pod0", ["ip", "-o", "link", "show"])).stdout;
        const names = [...links.matchAll(/^\d+: ([^:@]+)/gm)].map((match) => match[1]!);
        const expected = ["net1", ...pf.vfDevices.map((_, i) => `net1v${i}`)];
        expect(names.filter((name) => name.startsWith("net1")).sort()).toEqual(expected.sort());
        const addresses = (await execIn(NS, "pod0", ["ip", "-4", "-o", "addr", "show"])).stdout;
        for (const name of expected) {
          expect(addresses, name).toMatch(
            new RegExp(`\\b${name}\\s+inet 10\\.56\\.218\\.1\\d\\d/24`),
          );
        }
        // ... and none of them on the host.
        expect(inHostNamespace(pf.netdev)).toBe(false);
        const vfsOfPf = [...(await hostVfs()).values()].filter((vf) => vf.pf === pf.pciAddress);
        expect(vfsOfPf).toHaveLength(pf.vfDevices.length);
        expect(vfsOfPf.filter((vf) => vf.inHostNamespace)).toEqual([]);

        // A VF of the same PF: Pending, with the scheduler's reason, while pod0 holds it.
        await kubectl(["apply", "-f", "-"], forPf(scenarioFile(SCENARIO, "later/pod1.yaml"), pf));
        const pending = await waitFor("pod1 Unschedulable", async () => {
          const pod = await getPod(NS, "pod1");
          return pod.status?.conditions?.find(
            (c: Condition) => c.type === "PodScheduled" && c.status === "False",
          );
        });
        expect(pending.reason).toBe("Unschedulable");
        expect(pending.message).toMatch(/cannot allocate all claims/);

        await kubectl(["delete", "pod", "pod0", "-n", NS, "--wait=true", "--timeout=120s"]);
        await waitPodReady(NS, "pod1");
        const vfClaim = await claimOfPod(NS, "pod1", "vf");
        const [vf] = vfClaim.status?.allocation?.devices?.results ?? [];
        expect(pf.vfDevices).toContain(vf?.device);

        await kubectl(
          ["delete", "--ignore-not-found", "--wait=true", "--timeout=120s", "-f", "-"],
          scenarioFile(SCENARIO, "later/pod1.yaml"),
        );
        await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
        await waitFor(`${pf.netdev} back in the host namespace`, async () =>
          inHostNamespace(pf.netdev) ? true : undefined,
        );
      } finally {
        await rollback();
        await waitNodePluginArg("--publish-pfs", false);
        await waitFor(
          "no whole PF published after the rollback",
          async () => {
            const devices = await publishedDevices();
            return devices.length > 0 && wholePfs(devices).length === 0 ? true : undefined;
          },
          120_000,
        );
      }
    },
  );
});
