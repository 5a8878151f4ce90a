import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import { isNotFound } from "../../../lib/kube/client.js";
import {
  allocatedDevices,
  apiClient,
  applyScenarioForClaim,
  cdiSpecs,
  claimOfPod,
  clusterEnv,
  deleteScenario,
  deleteScenarioLeavingNothing,
  e2eNamespace,
  expectNothingLeaked,
  getPod,
  hostVfs,
  skipBeforeKubernetes,
  upgradeDriver,
  kubectl,
  pciAddressOf,
  run,
  scenarioFile,
  useScenario,
  waitFor,
  waitPodReady,
  waitNodePluginArg,
  type Claim,
  type Condition,
  type Pod,
} from "../support.js";

const SCENARIO = "device-health";
const NS = e2eNamespace("sriov-device-health");
const POD = "pod0";
const LATER_POD = "pod1";
const PF = "ens1f0";
const OTHER_PF = "ens1f1";
const TAINT_KEY = "sriovnetwork.openshift.io/unhealthy";

interface ResourceHealth {
  resourceID: string;
  health: string;
  message?: string;
}

interface ResourceStatus {
  name: string;
  resources?: ResourceHealth[];
}

interface PodWithStatuses extends Pod {
  metadata?: KubeObject["metadata"] & { deletionTimestamp?: string };
  status?: Pod["status"] & {
    containerStatuses?: { name: string; allocatedResourcesStatus?: ResourceStatus[] }[];
  };
}

interface Taint {
  key: string;
  value?: string;
  effect: string;
  timeAdded?: string;
}

interface Slice extends KubeObject {
  spec: { devices?: { name: string; taints?: Taint[] }[] };
}

interface EventRecord extends KubeObject {
  type?: string;
  reason?: string;
  note?: string;
  reportingController?: string;
  regarding?: { kind?: string; name?: string };
}

interface DriverPod extends KubeObject {
  metadata?: KubeObject["metadata"] & { deletionTimestamp?: string };
  spec?: { containers: { args?: string[] }[] };
  status?: { phase?: string; conditions?: Condition[] };
}

/** The PCI address of a PF of the emulated host, from its netdev. */
function pfAddress(name: string): string {
  return path.basename(
    fs.readlinkSync(path.join(clusterEnv().hostRoot, "sys/class/net", name, "device")),
  );
}

/** `emulate --set-link`: the PF's cable plugged in or pulled, as a person does it. */
async function setLink(pf: string, up: boolean): Promise<void> {
  const env = clusterEnv();
  const [node, cli] = env.cli;
  const result = await run(node, [
    cli,
    "emulate",
    "--host-root",
    env.hostRoot,
    "--set-link",
    `${pf}=${up ? "up" : "down"}`,
  ]);
  if (result.code !== 0) throw new Error(`emulate --set-link ${pf} failed: ${result.stderr}`);
}

/** The kubelet's view of the pod's devices: its container's allocatedResourcesStatus. */
async function allocatedResourcesStatus(pod: string): Promise<ResourceStatus[] | undefined> {
  const read = await apiClient().request<PodWithStatuses>({
    method: "GET",
    path: `/api/v1/namespaces/${NS}/pods/${pod}`,
  });
  return read.status?.containerStatuses?.find((c) => c.name === "app")?.allocatedResourcesStatus;
}

/** Waits until the kubelet shows the claim `vf`'s one device with that health. */
async function waitDeviceHealth(pod: string, health: string): Promise<ResourceStatus[]> {
  return waitFor(`the kubelet to show ${pod}'s VF ${health}`, async () => {
    const status = await allocatedResourcesStatus(pod);
    return status?.[0]?.resources?.[0]?.health === health ? status : undefined;
  });
}

/** Each of our devices of the node and its taints. */
async function taintsByDevice(): Promise<Map<string, Taint[]>> {
  const env = clusterEnv();
  const slices = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
  });
  return new Map(
    slices.items.flatMap((slice) =>
      (slice.spec.devices ?? []).map((device) => [device.name, device.taints ?? []] as const),
    ),
  );
}

async function waitNoTaints(): Promise<void> {
  await waitFor("no device of the node to be tainted", async () =>
    [...(await taintsByDevice()).values()].every((taints) => taints.length === 0)
      ? true
      : undefined,
  );
}

/** The VFs (device names) of a PF, from the host. */
async function vfsOf(pf: string): Promise<string[]> {
  const address = pfAddress(pf);
  return [...(await hostVfs()).values()]
    .filter((vf) => vf.pf === address)
    .map((vf) => vf.pciAddress.replace(/[:.]/g, "-"));
}

async function eventsOf(kind: string, name: string): Promise<EventRecord[]> {
  const events = await apiClient().request<{ items: EventRecord[] }>({
    method: "GET",
    path: `/apis/events.k8s.io/v1/namespaces/${NS}/events`,
    query: { fieldSelector: `regarding.kind=${kind},regarding.name=${name}` },
  });
  return events.items;
}

async function waitEvent(
  kind: string,
  name: string,
  reason: string,
  note?: string,
): Promise<EventRecord> {
  return waitFor(`a ${reason} event${note ? ` "${note}"` : ""} on ${kind} ${name}`, async () =>
    (await eventsOf(kind, name)).find(
      (event) => event.reason === reason && (note === undefined || event.note === note),
    ),
  );
}

/** The CDI device the kubelet names the claim's VF by (its resourceID): `<kind>=<name>`. */
function cdiDeviceOfClaim(claim: Claim): string {
  const env = clusterEnv();
  const file = cdiSpecs().find((name) => name.endsWith(`_${claim.metadata!.uid!}.json`));
  if (file === undefined) throw new Error(`no CDI spec for claim ${claim.metadata!.uid!}`);
  const spec = JSON.parse(fs.readFileSync(path.join(env.cdiDir, file), "utf8")) as {
    kind: string;
    devices: { name: string }[];
  };
  expect(spec.devices).toHaveLength(1);
  return `${spec.kind}=${spec.devices[0]!.name}`;
}

/** What the node plugin says about a VF of a PF without link (pkg/health/assess.ts). */
function linkDownMessage(pf: string, vfAddress: string): string {
  return (
    `PF ${pf} (${pfAddress(pf)}) has no link (carrier 0, operstate down), so VF ${vfAddress} ` +
    `passes no traffic: check the cable and switch port, or bring it up (ip link set ${pf} up)`
  );
}

async function nodePluginPods(): Promise<DriverPod[]> {
  const env = clusterEnv();
  const pods = await apiClient().request<{ items: DriverPod[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
    query: {
      labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
    },
  });
  return pods.items.filter(
    (pod) => pod.metadata?.deletionTimestamp === undefined && pod.status?.phase === "Running",
  );
}

/** The taint effect the running node plugin pod was given. */
async function nodePluginEffect(): Promise<string> {
  const pods = await nodePluginPods();
  expect(pods).toHaveLength(1);
  const flag = "--unhealthy-taint-effect=";
  const arg = pods[0]!.spec?.containers[0]?.args?.find((a) => a.startsWith(flag));
  if (arg === undefined) throw new Error(`the node plugin pod has no ${flag}`);
  return arg.slice(flag.length);
}

const log = (line: string) => process.stderr.write(`e2e: device health: ${line}\n`);

/**
 * demo/device-health: a PF's cable pulled under a pod holding one of its VFs (the emulated
 * host's `emulate --set-link`), as the real kubelet, scheduler and device taint eviction
 * controller of 1.37.2 see it: the pod's allocatedResourcesStatus, the slice's taints, the
 * claim's events, a new pod placed on the other PF; then, opted in, NoExecute evicting it.
 */
describe("demo/device-health", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("a PF without link: the kubelet shows the pod's VF Unhealthy with the reason, the VFs are tainted, the claim warned, a new pod lands on the other PF; all undone when the link returns", async (context) => {
    skipBeforeKubernetes(context, 36, "ResourceHealthStatus and DRADeviceTaints");
    const env = clusterEnv();
    const claim = await applyScenarioForClaim(SCENARIO, NS, POD, "vf");
    const device = claim.status!.allocation!.devices!.results![0]!.device;
    const vfAddress = pciAddressOf(device);
    expect(vfsBefore().get(vfAddress)?.pf).toBe(pfAddress(PF));
    const resourceID = cdiDeviceOfClaim(claim);
    const healthy = [{ name: "claim:vf", resources: [{ resourceID, health: "Healthy" }] }];
    expect(await waitDeviceHealth(POD, "Healthy")).toEqual(healthy);
    const ens1f0Vfs = await vfsOf(PF);
    await waitNoTaints();

    const down = performance.now();
    try {
      await setLink(PF, false);

      // The kubelet: the pod's container shows its claim's VF Unhealthy, with our message.
      expect(await waitDeviceHealth(POD, "Unhealthy")).toEqual([
        {
          name: "claim:vf",
          resources: [{ resourceID, health: "Unhealthy", message: linkDownMessage(PF, vfAddress) }],
        },
      ]);
      log(
        `link down → pod's allocatedResourcesStatus Unhealthy: ${Math.round(performance.now() - down)} ms`,
      );
      const pod = await getPod(NS, POD);
      expect(pod.status?.phase).toBe("Running");

      // The slice: every VF of ens1f0 tainted NoSchedule with the reason, none of ens1f1.
      const taints = await waitFor("the taints on ens1f0's VFs", async () => {
        const now = await taintsByDevice();
        return ens1f0Vfs.every((vf) => (now.get(vf) ?? []).length > 0) ? now : undefined;
      });
      for (const [name, deviceTaints] of taints) {
        const expected = ens1f0Vfs.includes(name)
          ? [expect.objectContaining({ key: TAINT_KEY, value: "PFLinkDown", effect: "NoSchedule" })]
          : [];
        expect({ name, taints: deviceTaints }).toEqual({ name, taints: expected });
      }

      // The claim: a Warning event saying what happened and what to do.
      const warning = await waitEvent("ResourceClaim", claim.metadata!.name!, "DeviceUnhealthy");
      expect(warning).toMatchObject({
        type: "Warning",
        reportingController: env.driverName,
        note: `device ${device} on node ${env.nodeName} is unhealthy (PFLinkDown): ${linkDownMessage(PF, vfAddress)}`,
      });

      // A pod started now asks for any VF: the scheduler gives it one of ens1f1.
      await kubectl(["apply", "-f", "-"], scenarioFile(SCENARIO, "later/pod1.yaml"));
      await waitPodReady(NS, LATER_POD);
      const later = await claimOfPod(NS, LATER_POD, "vf");
      const laterDevice = later.status!.allocation!.devices!.results![0]!.device;
      expect((await vfsOf(OTHER_PF)).includes(laterDevice), laterDevice).toBe(true);
      expect(vfsBefore().get(pciAddressOf(laterDevice))?.pf).toBe(pfAddress(OTHER_PF));
    } finally {
      await setLink(PF, true);
    }

    // The link back: healthy once it held 10 s; the taints go, the claim hears it.
    const up = performance.now();
    expect(await waitDeviceHealth(POD, "Healthy")).toEqual(healthy);
    log(
      `link up → pod's allocatedResourcesStatus Healthy: ${Math.round(performance.now() - up)} ms`,
    );
    await waitNoTaints();
    const healthyAgain = await waitEvent("ResourceClaim", claim.metadata!.name!, "DeviceHealthy");
    expect(healthyAgain).toMatchObject({
      type: "Normal",
      reportingController: env.driverName,
      note: `device ${device} on node ${env.nodeName} is healthy again`,
    });
    expect((await getPod(NS, POD)).status?.phase).toBe("Running");

    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });

  it.runIf(clusterEnv().driverMode === "pods")(
    "opted in to NoExecute (helm upgrade): the device taint eviction controller evicts the pod using the VF, whose VF is unprepared cleanly",
    async (context) => {
      skipBeforeKubernetes(context, 36, "ResourceHealthStatus and DRADeviceTaints");
      // NoExecute evicts every pod using a VF of ens1f0, a user's too (make demo leaves one).
      const outside = await allocatedDevices(true);
      const held = (await vfsOf(PF)).filter((device) => outside.has(device));
      if (held.length > 0) {
        context.skip(
          `pods outside this suite hold VFs of ${PF} (${held.join(", ")}); NoExecute would evict them: delete them to run this case`,
        );
        return;
      }
      await deleteScenario(SCENARIO); // what a failed first test left
      const effectBefore = await nodePluginEffect();
      const rollback = await upgradeDriver(["driver.unhealthyTaintEffect=NoExecute"]);
      try {
        await waitNodePluginArg("--unhealthy-taint-effect=NoExecute");

        const claim = await applyScenarioForClaim(SCENARIO, NS, POD, "vf");
        const vfAddress = pciAddressOf(claim.status!.allocation!.devices!.results![0]!.device);
        expect(vfsBefore().get(vfAddress)?.pf).toBe(pfAddress(PF));
        const uid = (await getPod(NS, POD)).metadata!.uid!;
        await waitDeviceHealth(POD, "Healthy");

        const down = performance.now();
        try {
          await setLink(PF, false);
          // kube-controller-manager's device-taint-eviction-controller: DisruptionTarget,
          // then the pod deleted (its 5 s grace period).
          const condition = await waitFor("the pod to be marked for eviction", async () => {
            const pod = await getPod(NS, POD);
            expect(pod.metadata?.uid).toBe(uid);
            return pod.status?.conditions?.find((c) => c.type === "DisruptionTarget");
          });
          log(
            `NoExecute: link down → pod's DisruptionTarget: ${Math.round(performance.now() - down)} ms`,
          );
          expect(condition).toMatchObject({
            status: "True",
            reason: "DeletionByDeviceTaintManager",
            message: "Device Taint manager: deleting due to NoExecute taint",
          });
          const pod = (await getPod(NS, POD)) as PodWithStatuses;
          expect(pod.metadata?.deletionTimestamp).toBeDefined();
          // The controller may also post "Cancelling deletion" under the same reason once the
          // pod is going anyway (seen in CI): look for the marking itself.
          expect(
            await waitEvent("Pod", POD, "DeviceTaintManagerEviction", "Marking for deletion"),
          ).toMatchObject({
            type: "Normal",
            reportingController: "device-taint-eviction-controller",
          });
          await waitFor(`pod ${NS}/${POD} to be gone`, async () => {
            try {
              const read = await getPod(NS, POD);
              return read.metadata?.uid === uid ? undefined : true;
            } catch (error) {
              if (isNotFound(error)) return true;
              throw error;
            }
          });
          log(`NoExecute: link down → pod gone: ${Math.round(performance.now() - down)} ms`);
          // Unprepared as after any pod: the VF back on iavf in the host namespace, no CDI
          // spec, no checkpoint entry, no CNI result or lease.
          await expectNothingLeaked(vfsBefore());
          expect((await hostVfs()).get(vfAddress)).toMatchObject({
            driver: "iavf",
            inHostNamespace: true,
          });
        } finally {
          await setLink(PF, true);
        }
      } finally {
        await rollback();
        await waitNodePluginArg(`--unhealthy-taint-effect=${effectBefore}`);
        await waitNoTaints();
      }
    },
  );
});
