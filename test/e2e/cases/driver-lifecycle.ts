import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
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
  e2eNamespace,
  expectNothingLeaked,
  getPod,
  upgradeRelease,
  hostVfs,
  pciAddressOf,
  pluginInstance,
  podInterface,
  preparedClaims,
  run,
  waitFor,
  waitPodReady,
  type VfState,
} from "../support.js";

const KERNEL = {
  scenario: "single-vf-claim",
  namespace: e2eNamespace("sriov-single-vf"),
  pod: "pod0",
};
const VFIO = { scenario: "vfio-driver", namespace: e2eNamespace("sriov-vfio"), pod: "dpdk-app" };

interface DriverPod extends KubeObject {
  metadata?: KubeObject["metadata"] & { deletionTimestamp?: string };
  spec?: { containers: { image: string }[] };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: { restartCount?: number }[];
  };
}

interface Slices {
  items: KubeObject[];
}

async function driverPods(component: string): Promise<DriverPod[]> {
  const env = clusterEnv();
  const pods = await apiClient().request<{ items: DriverPod[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
    query: {
      labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=${component}`,
    },
  });
  return pods.items;
}

/** The one node plugin pod once it alone runs, Ready, with `image`. */
async function waitNodePlugin(image: string): Promise<DriverPod> {
  return waitFor(`one Ready node plugin pod running ${image}`, async () => {
    const pods = await driverPods("node-plugin");
    const [pod] = pods;
    const ready = pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    return pods.length === 1 && ready && pod!.spec?.containers[0]?.image === image
      ? pod
      : undefined;
  });
}

async function driverSlices(): Promise<Slices> {
  const env = clusterEnv();
  return apiClient().request<Slices>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
  });
}

/** The pod still runs the sandbox it had, with its VF as net1 (same MAC). */
async function expectSameVf(
  target: { namespace: string; pod: string },
  uid: string,
  mac: string,
): Promise<void> {
  const pod = await getPod(target.namespace, target.pod);
  expect(pod.metadata?.uid).toBe(uid);
  expect(pod.status?.phase).toBe("Running");
  expect((await podInterface(target.namespace, target.pod, "net1")).mac).toBe(mac);
}

/**
 * The driver's life as users live it, in pods mode (the Helm release): an upgrade while
 * pods hold VFs, the node plugin force-deleted in the middle of a prepare and of an
 * attach, and helm uninstall. Last in the suite: it replaces the node plugin's pod, and
 * puts the release back as it found it.
 */
describe.runIf(clusterEnv().driverMode === "pods")("the Helm release", () => {
  let before: Map<string, VfState>;

  beforeAll(async () => {
    await deleteScenario(KERNEL.scenario);
    await deleteScenario(VFIO.scenario);
    before = await hostVfs();
  });

  afterEach(async () => {
    // Whatever a failed test left: no fault, the release's own image, no scenario.
    await clusterCommand(["start", "kubelet-plugin"]);
    await deleteScenario(KERNEL.scenario);
    await deleteScenario(VFIO.scenario);
  });

  afterAll(async () => {
    // The release back if a failed test left it uninstalled (a no-op otherwise).
    await clusterCommand(["start", "driver"]);
  });

  it("upgrades to another image tag while pods hold VFs (kernel and vfio-pci): nothing is lost, and the new pod unprepares", async () => {
    const env = clusterEnv();
    await applyScenario(KERNEL.scenario);
    await applyScenario(VFIO.scenario);
    const kernelPod = await waitPodReady(KERNEL.namespace, KERNEL.pod);
    await waitPodReady(VFIO.namespace, VFIO.pod);
    const mac = (await podInterface(KERNEL.namespace, KERNEL.pod, "net1")).mac;
    const vfioClaim = await claimOfPod(VFIO.namespace, VFIO.pod, "vf");
    const vfioAddress = pciAddressOf(vfioClaim.status!.allocation!.devices!.results![0]!.device);
    const prepared = preparedClaims();
    expect(Object.values(prepared).map((entry) => entry.state)).toEqual([
      "PrepareCompleted",
      "PrepareCompleted",
    ]);
    const oldPod = (await driverPods("node-plugin"))[0]!;

    // A "new release": the same image under another tag, so the pod template changes.
    const [repository] = env.driverImage.split(/:(?=[^:/]+$)/);
    const upgraded = `${repository}:upgrade-e2e`;
    const tagged = await run(env.ctr, [
      "--address",
      path.join(env.containerdStateDir, "containerd.sock"),
      "--namespace",
      "k8s.io",
      "images",
      "tag",
      "--force",
      env.driverImage,
      upgraded,
    ]);
    expect(tagged.code, tagged.stderr).toBe(0);
    await upgradeRelease(["image.tag=upgrade-e2e"]);
    const newPod = await waitNodePlugin(upgraded);
    expect(newPod.metadata?.uid).not.toBe(oldPod.metadata?.uid);

    // The rolling update kept every claim prepared and every sandbox its VF.
    expect(preparedClaims()).toEqual(prepared);
    await expectSameVf(KERNEL, kernelPod.metadata!.uid!, mac);
    expect((await hostVfs()).get(vfioAddress)?.driver).toBe("vfio-pci");

    // The new pod unprepares what the old one prepared.
    await deleteScenario(KERNEL.scenario);
    await deleteScenario(VFIO.scenario);
    await expectNothingLeaked(before);

    await upgradeRelease([`image.tag=${env.driverImage.split(":").pop()!}`]);
    await waitNodePlugin(env.driverImage);
  });

  it("force-deleted in the middle of a prepare: the DaemonSet's replacement takes the claim over", async () => {
    await clusterCommand(["restart", "kubelet-plugin"], {
      DRA_SRIOV_FAULT: "hang:after-cdi-written",
    });
    const stuck = await pluginInstance();
    await applyScenario(KERNEL.scenario);
    await waitFor("the prepare to stop after its CDI spec", () => {
      const states = Object.values(preparedClaims()).map((entry) => entry.state);
      return states.length === 1 && states[0] === "PrepareStarted" && cdiSpecs().length === 1
        ? true
        : undefined;
    });
    // The template loses the fault, then the stuck pod is force-deleted.
    await clusterCommand(["restart", "kubelet-plugin", "--kill"]);
    expect((await pluginInstance()).pod?.uid).not.toBe(stuck.pod?.uid);
    await waitPodReady(KERNEL.namespace, KERNEL.pod);
    expect(Object.values(preparedClaims()).map((entry) => entry.state)).toEqual([
      "PrepareCompleted",
    ]);
    expect(cdiSpecs()).toHaveLength(1);
    expect((await podInterface(KERNEL.namespace, KERNEL.pod, "net1")).ipv4).toHaveLength(1);
    await deleteScenarioLeavingNothing(KERNEL.scenario, before);
  });

  it("force-deleted in the middle of an attach: the replacement finishes it or the sandbox is retried, and nothing leaks", async () => {
    await clusterCommand(["restart", "kubelet-plugin"], {
      DRA_SRIOV_FAULT: "hang:during-attach-after-add",
    });
    await applyScenario(KERNEL.scenario);
    await waitFor("the attach to stop after its CNI ADD", async () => {
      const log = await podLogOfNodePlugin();
      return log.includes("stopping here until the process is killed") ? true : undefined;
    });
    await clusterCommand(["restart", "kubelet-plugin", "--kill"]);
    await waitPodReady(KERNEL.namespace, KERNEL.pod);
    expect((await podInterface(KERNEL.namespace, KERNEL.pod, "net1")).ipv4).toHaveLength(1);
    await deleteScenarioLeavingNothing(KERNEL.scenario, before);
  });

  it("reports the node plugin not Ready while the container runtime is away (its probe), and Ready once it is back", async () => {
    const ready = async () => {
      const [pod] = await driverPods("node-plugin");
      return pod?.status?.conditions?.find((c) => c.type === "Ready")?.status;
    };
    expect(await ready()).toBe("True");
    await clusterCommand(["stop", "containerd"]);
    try {
      await waitFor("the node plugin pod to be not Ready", async () =>
        (await ready()) === "False" ? true : undefined,
      );
    } finally {
      await clusterCommand(["start", "containerd"]);
    }
    await waitFor("the node plugin pod to be Ready again", async () =>
      (await ready()) === "True" ? true : undefined,
    );
  });

  it("helm uninstall removes the driver's pods and slices, leaving on the node only what the chart's README says", async () => {
    const env = clusterEnv();
    expect((await driverSlices()).items.length).toBeGreaterThan(0);
    await clusterCommand(["stop", "driver"]);
    expect(await driverPods("node-plugin")).toEqual([]);
    expect(await driverPods("controller")).toEqual([]);
    await waitFor("the node's ResourceSlices to be removed", async () =>
      (await driverSlices()).items.length === 0 ? true : undefined,
    );
    // What stays: the driver's directory under the kubelet's (its checkpoints, empty),
    // and its CNI results directory (empty). No CDI spec, no registration socket.
    expect(cdiSpecs()).toEqual([]);
    const registry = path.join(env.kubeletRootDir, "plugins_registry");
    expect(fs.readdirSync(registry).filter((file) => file.startsWith(env.driverName))).toEqual([]);
    expect(Object.keys(preparedClaims())).toEqual([]);

    // And back, timed: helm install until the node's slices are published.
    const start = performance.now();
    await clusterCommand(["start", "driver"]);
    await waitFor("the node's ResourceSlices", async () =>
      (await driverSlices()).items.length > 0 ? true : undefined,
    );
    process.stderr.write(
      `e2e: helm install to the node's ResourceSlices published: ${Math.round(performance.now() - start)} ms\n`,
    );
  });
});

async function podLogOfNodePlugin(): Promise<string> {
  const env = clusterEnv();
  const result = await run(env.kubectl, [
    "--kubeconfig",
    env.kubeconfig,
    "-n",
    env.driverNamespace,
    "logs",
    "-l",
    `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
    "--tail=-1",
  ]);
  return result.stdout;
}
