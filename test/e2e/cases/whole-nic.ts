import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  applyScenarioForClaim,
  apiClient,
  clusterEnv,
  deleteScenarioLeavingNothing,
  e2eNamespace,
  execIn,
  getPod,
  upgradeDriver,
  hostVfs,
  kubectl,
  scenarioFile,
  useScenario,
  waitFor,
  waitPodReady,
  claimOfPod,
  type Condition,
} from "../support.js";

const SCENARIO = "whole-nic";
const NS = e2eNamespace("sriov-whole-nic");
const PF = "ens1f0";
const PF_ADDRESS = "0000:3b:00.0";
const PF_DEVICE = "pf-0000-3b-00-0";

interface Slice {
  spec?: { devices?: { name: string }[] };
}

interface PluginPod {
  metadata?: { deletionTimestamp?: string };
  spec?: { containers: { args?: string[] }[] };
  status?: { conditions?: Condition[] };
}

/**
 * One node plugin pod, Ready, started with (or without) --publish-pfs: during the rolling
 * update the old and the new pod publish side by side, and the old one's slices win until
 * it is gone.
 */
async function waitNodePlugin(publishPfs: boolean): Promise<void> {
  const env = clusterEnv();
  await waitFor(
    `one Ready node plugin pod ${publishPfs ? "with" : "without"} --publish-pfs`,
    async () => {
      const pods = (
        await apiClient().request<{ items: PluginPod[] }>({
          method: "GET",
          path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
          query: {
            labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
          },
        })
      ).items;
      const [pod] = pods;
      const ready = pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      const args = pod?.spec?.containers[0]?.args ?? [];
      return pods.length === 1 &&
        pod?.metadata?.deletionTimestamp === undefined &&
        ready &&
        args.includes("--publish-pfs") === publishPfs
        ? true
        : undefined;
    },
    120_000,
  );
}

/** The names of the devices the node publishes now. */
async function publishedDevices(): Promise<string[]> {
  const env = clusterEnv();
  const slices = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
  });
  return slices.items.flatMap((slice) => (slice.spec?.devices ?? []).map((d) => d.name));
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
 * the whole ens1f0 (the PF and its 8 VFs) into its network namespace; a pod asking for one
 * VF of it stays Pending with the scheduler's reason until the first pod goes.
 */
describe("demo/whole-nic", () => {
  const vfsBefore = useScenario(SCENARIO);

  it.runIf(clusterEnv().driverMode === "pods")(
    "moves the whole PF with its VFs into one pod; a VF of it waits until that pod goes",
    async () => {
      const rollback = await upgradeDriver(["driver.publishPfs=true"]);
      try {
        await waitNodePlugin(true);
        await waitFor(
          `${PF_DEVICE} published`,
          async () => ((await publishedDevices()).includes(PF_DEVICE) ? true : undefined),
          120_000,
        );

        const claim = await applyScenarioForClaim(SCENARIO, NS, "pod0", "nic");
        expect(claim.status?.allocation?.devices?.results?.map((r) => r.device)).toEqual([
          PF_DEVICE,
        ]);
        // In the pod: the PF as net1, each of its VFs as net1v<index>, each with an address.
        const links = (await execIn(NS, "pod0", ["ip", "-o", "link", "show"])).stdout;
        const names = [...links.matchAll(/^\d+: ([^:@]+)/gm)].map((match) => match[1]!);
        const expected = ["net1", ...Array.from({ length: 8 }, (_, i) => `net1v${i}`)];
        expect(names.filter((name) => name.startsWith("net1")).sort()).toEqual(expected.sort());
        const addresses = (await execIn(NS, "pod0", ["ip", "-4", "-o", "addr", "show"])).stdout;
        for (const name of expected) {
          expect(addresses, name).toMatch(
            new RegExp(`\\b${name}\\s+inet 10\\.56\\.218\\.1\\d\\d/24`),
          );
        }
        // ... and none of them on the host.
        expect(inHostNamespace(PF)).toBe(false);
        const vfsOfPf = [...(await hostVfs()).values()].filter((vf) => vf.pf === PF_ADDRESS);
        expect(vfsOfPf).toHaveLength(8);
        expect(vfsOfPf.filter((vf) => vf.inHostNamespace)).toEqual([]);

        // A VF of the same PF: Pending, with the scheduler's reason, while pod0 holds it.
        await kubectl(["apply", "-f", "-"], scenarioFile(SCENARIO, "later/pod1.yaml"));
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
        expect(vf?.device).toMatch(/^0000-3b-0[2-3]-[0-7]$/);

        await kubectl(
          ["delete", "--ignore-not-found", "--wait=true", "--timeout=120s", "-f", "-"],
          scenarioFile(SCENARIO, "later/pod1.yaml"),
        );
        await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
        await waitFor(`${PF} back in the host namespace`, async () =>
          inHostNamespace(PF) ? true : undefined,
        );
      } finally {
        await rollback();
        await waitNodePlugin(false);
        await waitFor(
          "no whole PF published after the rollback",
          async () => {
            const devices = await publishedDevices();
            return devices.length > 0 && !devices.includes(PF_DEVICE) ? true : undefined;
          },
          120_000,
        );
      }
    },
  );
});
