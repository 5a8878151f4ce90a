import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import {
  apiClient,
  applyScenario,
  cdiSpecs,
  claimOfPod,
  clusterCommand,
  clusterEnv,
  deleteScenario,
  deleteScenarioLeavingNothing,
  getPod,
  hostVfs,
  pciAddressOf,
  podInterface,
  preparedClaims,
  pluginDied,
  pluginInstance,
  waitFor,
  waitPodReady,
  type VfState,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "single-vf-claim";
const NS = e2eNamespace("sriov-single-vf");
const POD = "pod0";

interface Event extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  source?: { component?: string };
}

/** The pod runs with its VF as net1 (the VF's own MAC). */
async function expectVfInPod(before: Map<string, VfState>): Promise<void> {
  await waitPodReady(NS, POD);
  const claim = await claimOfPod(NS, POD, "vf");
  const device = claim.status?.allocation?.devices?.results?.[0]?.device;
  expect(device).toBeDefined();
  const vf = before.get(pciAddressOf(device!))!;
  const net1 = await podInterface(NS, POD, "net1");
  expect(net1.mac).toBe(vf.mac);
  expect(net1.ipv4).toHaveLength(1);
}

/** The kubelet has tried to prepare the pod's claim and failed: its start-up is stuck there. */
async function waitPrepareRefused(): Promise<void> {
  const driver = clusterEnv().driverName;
  await waitFor("the kubelet's failed attempt to prepare the pod's claim", async () => {
    const events = await apiClient().request<{ items: Event[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${NS}/events`,
      query: { fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${POD}` },
    });
    return events.items.find(
      (event) =>
        event.type === "Warning" &&
        event.source?.component === "kubelet" &&
        (event.message ?? "").includes(driver),
    );
  });
  const pod = await getPod(NS, POD);
  expect(pod.spec?.nodeName).toBe(clusterEnv().nodeName);
  expect(pod.status?.phase).toBe("Pending");
}

/**
 * Restarts of the node's parts, in the middle of a pod's start-up and while it runs: the
 * pod ends up (or stays) Running with its VF, and deleting it leaves nothing behind.
 */
describe("restarts", () => {
  let before: Map<string, VfState>;

  beforeAll(async () => {
    await deleteScenario(SCENARIO);
    before = await hostVfs();
  });

  afterEach(async () => {
    // Whatever a failed test left stopped runs again, without faults.
    await clusterCommand(["start", "kubelet"]);
    await clusterCommand(["start", "kubelet-plugin"]);
    await deleteScenario(SCENARIO);
  });

  it("the kubelet-plugin dying in the middle of NodePrepareResources", async () => {
    await clusterCommand(["restart", "kubelet-plugin"], { DRA_SRIOV_FAULT: "after-cdi-written" });
    const faulty = await pluginInstance();
    await applyScenario(SCENARIO);
    await waitFor("the kubelet-plugin to die at after-cdi-written", async () =>
      (await pluginDied(faulty)) ? true : undefined,
    );
    if (clusterEnv().driverMode === "host") {
      // It died with the claim half prepared: started in the checkpoint, the CDI spec
      // written. (A pod's container is restarted at once by the kubelet, and dies there
      // again, so that moment cannot be caught in pods mode.)
      expect(Object.values(preparedClaims()).map((entry) => entry.state)).toEqual([
        "PrepareStarted",
      ]);
      expect(cdiSpecs()).toHaveLength(1);
    }

    await clusterCommand(["start", "kubelet-plugin"]);
    await expectVfInPod(before);
    expect(Object.values(preparedClaims()).map((entry) => entry.state)).toEqual([
      "PrepareCompleted",
    ]);
    expect(cdiSpecs()).toHaveLength(1);
    await deleteScenarioLeavingNothing(SCENARIO, before);
  });

  for (const part of ["kubelet", "containerd"] as const) {
    it(`${part} restarting while a pod waits for its VF`, async () => {
      await clusterCommand(["stop", "kubelet-plugin"]);
      await applyScenario(SCENARIO);
      await waitPrepareRefused();
      await clusterCommand(part === "containerd" ? ["restart", part, "--kill"] : ["restart", part]);
      await clusterCommand(["start", "kubelet-plugin"]);
      await expectVfInPod(before);
      await deleteScenarioLeavingNothing(SCENARIO, before);
    });
  }

  // containerd last: after it restarts, it sends no Stop/RemovePodSandbox NRI events for
  // sandboxes it found running (containerd 2.4.2 syncs only containers' NRI states), so a
  // failure there must not take VFs from the tests before it.
  for (const [part, kill] of [
    ["kubelet-plugin", true],
    ["kubelet", false],
    ["containerd", true],
  ] as const) {
    it(`${part} ${kill ? "killed" : "restarted"} while a pod with a VF runs`, async () => {
      await applyScenario(SCENARIO);
      await expectVfInPod(before);
      await clusterCommand(kill ? ["restart", part, "--kill"] : ["restart", part]);
      await expectVfInPod(before);
      const pod = await getPod(NS, POD);
      expect(pod.status?.phase).toBe("Running");
      await deleteScenarioLeavingNothing(SCENARIO, before);
    });
  }
});
