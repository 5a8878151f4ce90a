/**
 * A Kubernetes upgrade under the driver (make test-upgrade): a one-node cluster on the
 * older version with pods holding VFs (a kernel-driver VF plugged in as net1, a VF on
 * vfio-pci), then its kubelet and control plane (kube-apiserver, kube-controller-manager,
 * kube-scheduler) stopped and started again from the newer version's binaries on the same
 * etcd, kubelet root dir and containerd (hack/local-cluster.sh upgrade). The claims prepared
 * before stay prepared, new pods with VF claims start, and deleting every pod leaves the
 * node as it was. One scenario, so its tests keep their order.
 */
import fs from "node:fs";
import { describe, expect, inject, it } from "vitest";
import {
  apiClient,
  applyScenario,
  attachedSandboxes,
  cdiSpecs,
  claimOfPod,
  clusterCommand,
  clusterEnv,
  deleteScenario,
  expectNothingLeaked,
  getClaim,
  getPod,
  hostVfs,
  kubectl,
  ourDevices,
  pciAddressOf,
  pluginInstance,
  podInterface,
  preparedClaims,
  readCheckpoint,
  scenarioFile,
  waitFor,
  waitNetworkData,
  waitPodReady,
  e2eNamespace,
  type DeviceStatus,
  type PluginInstance,
  type Pod,
  type VfState,
} from "../e2e/support.js";

const KERNEL = { scenario: "single-vf-claim", ns: e2eNamespace("sriov-single-vf"), pod: "pod0" };
const VFIO = { scenario: "vfio-driver", ns: e2eNamespace("sriov-vfio"), pod: "dpdk-app" };

/** What a pod holding a VF is, as the test records it before the upgrade. */
interface Held {
  podUid: string;
  /** Its containers' IDs: a container started again (or a new sandbox) changes them. */
  containerIds: string[];
  claimUid: string;
  claimName: string;
  device: string;
  /** The VF's PCI address. */
  address: string;
  /** Our entries of the claim's status.devices. */
  devices: DeviceStatus[];
  /** The pod's net1 (kernel-driver VF only). */
  net1?: { mac: string; ipv4: string[] };
}

interface PodWithContainers extends Pod {
  status?: Pod["status"] & { containerStatuses?: { containerID?: string; ready?: boolean }[] };
}

async function held(ns: string, pod: string, withNet1: boolean): Promise<Held> {
  const read = (await waitPodReady(ns, pod)) as PodWithContainers;
  const claim = withNet1
    ? await waitNetworkData(ns, await claimOfPod(ns, pod, "vf"))
    : await waitFor(`the applied config on the claim of ${ns}/${pod}`, async () => {
        const c = await claimOfPod(ns, pod, "vf");
        return ourDevices(c).some((device) => device.data !== undefined) ? c : undefined;
      });
  const results = claim.status?.allocation?.devices?.results ?? [];
  expect(results).toHaveLength(1);
  return {
    podUid: read.metadata!.uid!,
    containerIds: (read.status?.containerStatuses ?? []).map((c) => c.containerID ?? ""),
    claimUid: claim.metadata!.uid!,
    claimName: claim.metadata!.name!,
    device: results[0]!.device,
    address: pciAddressOf(results[0]!.device),
    devices: ourDevices(claim),
    ...(withNet1 ? { net1: await podInterface(ns, pod, "net1") } : {}),
  };
}

/** Only what the driver wrote that must not change: conditions without their timestamps. */
function stable(devices: DeviceStatus[]): unknown[] {
  return devices.map((device) => ({
    ...device,
    conditions: (device.conditions ?? []).map(({ type, status, reason }) => ({
      type,
      status,
      reason,
    })),
  }));
}

/** The pod is the same one, still Ready, its containers the same, its claim as it was. */
async function expectSurvived(
  ns: string,
  pod: string,
  was: Held,
  vfs: Map<string, VfState>,
  vfio: boolean,
): Promise<void> {
  const now = (await getPod(ns, pod)) as PodWithContainers;
  expect(now.metadata?.uid).toBe(was.podUid);
  expect(now.status?.phase).toBe("Running");
  expect(now.status?.containerStatuses?.map((c) => c.containerID ?? "")).toEqual(was.containerIds);
  expect(now.status?.containerStatuses?.every((c) => c.ready === true)).toBe(true);
  const claim = await getClaim(ns, was.claimName);
  expect(claim.metadata?.uid).toBe(was.claimUid);
  expect(claim.status?.allocation?.devices?.results?.map((r) => r.device)).toEqual([was.device]);
  expect(claim.status?.reservedFor?.map((r) => r.uid)).toEqual([was.podUid]);
  expect(stable(ourDevices(claim))).toEqual(stable(was.devices));
  const entry = preparedClaims()[was.claimUid];
  expect(entry?.state).toBe("PrepareCompleted");
  expect(entry?.devices?.map((d) => d.pciAddress)).toEqual([was.address]);
  const vf = vfs.get(was.address);
  if (vfio) {
    expect(vf?.driver).toBe("vfio-pci");
  } else {
    expect(vf?.inHostNamespace).toBe(false);
    expect(await podInterface(ns, pod, "net1")).toEqual(was.net1);
  }
}

/** The network namespaces containerd made for the node's pods (their files in its netns dir). */
function netnsEntries(): string[] {
  const dir = clusterEnv().netnsDir;
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

interface Node {
  status?: { nodeInfo?: { kubeletVersion?: string } };
}

async function versions(): Promise<{ apiserver: string; kubelet: string }> {
  const env = clusterEnv();
  const version = await apiClient().request<{ gitVersion: string }>({
    method: "GET",
    path: "/version",
  });
  const node = await apiClient().request<Node>({
    method: "GET",
    path: `/api/v1/nodes/${env.nodeName}`,
  });
  return { apiserver: version.gitVersion, kubelet: node.status?.nodeInfo?.kubeletVersion ?? "" };
}

describe("a Kubernetes upgrade with pods holding VFs", () => {
  const from = inject("upgradeFrom");
  const to = inject("upgradeTo");
  let vfsBefore = new Map<string, VfState>();
  let kernel: Held | undefined;
  let vfio: Held | undefined;
  let specs: string[] = [];
  let attached: string[] = [];
  let plugin: PluginInstance | undefined;
  let netnsBefore: string[] = [];

  it(`runs pods with a kernel-driver VF and a vfio-pci VF on ${from}`, async () => {
    expect(clusterEnv().kubernetesVersion).toBe(from);
    expect(await versions()).toEqual({ apiserver: from, kubelet: from });
    await deleteScenario(KERNEL.scenario);
    await deleteScenario(VFIO.scenario);
    vfsBefore = await hostVfs();
    netnsBefore = netnsEntries();

    await applyScenario(KERNEL.scenario);
    await applyScenario(VFIO.scenario);
    kernel = await held(KERNEL.ns, KERNEL.pod, true);
    vfio = await held(VFIO.ns, VFIO.pod, false);
    expect(kernel.address).not.toBe(vfio.address);
    expect(kernel.net1?.mac).toBe(vfsBefore.get(kernel.address)?.mac);
    expect(kernel.devices[0]?.networkData?.hardwareAddress).toBe(kernel.net1?.mac);
    expect(vfio.devices[0]?.data).toMatchObject({ driver: "vfio-pci", pciAddress: vfio.address });
    const vfs = await hostVfs();
    expect(vfs.get(kernel.address)?.inHostNamespace).toBe(false);
    expect(vfs.get(vfio.address)?.driver).toBe("vfio-pci");
    specs = cdiSpecs().sort();
    expect(specs).toHaveLength(2);
    attached = Object.keys(attachedSandboxes()).sort();
    expect(attached).toHaveLength(1);
    expect(Object.keys(preparedClaims()).sort()).toEqual([kernel.claimUid, vfio.claimUid].sort());
    plugin = await pluginInstance();
  });

  it(`upgrades the control plane and the kubelet to ${to} on the same state`, async () => {
    // As an operator runs it: only the version; the cluster keeps the profile it was up with.
    const profile = clusterEnv().profile;
    await clusterCommand(["upgrade"], { K8S_VERSION: to });
    expect(clusterEnv().kubernetesVersion).toBe(to);
    expect(clusterEnv().profile).toBe(profile);
    await waitFor(`the API server and the kubelet to report ${to}`, async () => {
      const now = await versions();
      return now.apiserver === to && now.kubelet === to ? true : undefined;
    });
  });

  it("keeps the claims prepared before: same pods, VFs, checkpoint, CDI specs, claim status", async () => {
    const vfs = await hostVfs();
    await expectSurvived(KERNEL.ns, KERNEL.pod, kernel!, vfs, false);
    await expectSurvived(VFIO.ns, VFIO.pod, vfio!, vfs, true);
    expect(cdiSpecs().sort()).toEqual(specs);
    expect(Object.keys(attachedSandboxes()).sort()).toEqual(attached);
    // The node plugin pod was not started again: the new kubelet found its socket.
    expect(await pluginInstance()).toEqual(plugin);
  });

  it(`schedules and starts new pods with VF claims on ${to}`, async () => {
    const pod1 = scenarioFile(KERNEL.scenario, "pod.yaml").replace(/^( {2}name: )pod0$/m, "$1pod1");
    const vfio1 = scenarioFile(VFIO.scenario, "pod.yaml").replace(
      /^( {2}name: )dpdk-app$/m,
      "$1dpdk-app-1",
    );
    await kubectl(["apply", "-f", "-"], `${pod1}\n---\n${vfio1}`);
    const kernel1 = await held(KERNEL.ns, "pod1", true);
    const vfio1Held = await held(VFIO.ns, "dpdk-app-1", false);
    const used = [kernel!.address, vfio!.address];
    expect(used).not.toContain(kernel1.address);
    expect(used).not.toContain(vfio1Held.address);
    expect(kernel1.net1?.mac).toBe(vfsBefore.get(kernel1.address)?.mac);
    expect(kernel1.devices[0]?.networkData?.hardwareAddress).toBe(kernel1.net1?.mac);
    const vfs = await hostVfs();
    expect(vfs.get(kernel1.address)?.inHostNamespace).toBe(false);
    expect(vfs.get(vfio1Held.address)?.driver).toBe("vfio-pci");
    expect(Object.keys(preparedClaims())).toHaveLength(4);
    expect(cdiSpecs()).toHaveLength(4);
    // The pods from before are still as they were.
    await expectSurvived(KERNEL.ns, KERNEL.pod, kernel!, vfs, false);
    await expectSurvived(VFIO.ns, VFIO.pod, vfio!, vfs, true);
  });

  it("leaves nothing behind once every pod is deleted", async () => {
    const env = clusterEnv();
    await deleteScenario(KERNEL.scenario);
    await deleteScenario(VFIO.scenario);
    // Every VF back on its driver in the host's namespace, nothing prepared, attached, no
    // CDI spec, CNI result or address lease.
    await expectNothingLeaked(vfsBefore);
    expect(readCheckpoint(env.checkpointFile).entries).toEqual({});
    // The pods' network namespaces went with them: those of the driver's own pods are left.
    await waitFor("the pods' network namespaces to be gone", () =>
      netnsEntries().join() === netnsBefore.join() ? true : undefined,
    );
  });
});
