import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { CdiSpec } from "../../lib/cdi/spec.js";
import { CheckpointStore } from "../../lib/checkpoint/checkpoint.js";
import { EmulatedKernel, buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { currentDriver } from "../../pkg/host/driver-binding.js";
import { HostPaths } from "../../pkg/host/paths.js";
import type { ClaimRef, PrepareOutcome } from "../../lib/kubeletplugin/claim-preparer.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { ClaimStatusWriter } from "../../pkg/claimstatus/claim-status.js";
import type { FaultHook } from "../../pkg/faults/faults.js";
import type { PreparedClaim, VfClaimPreparerOptions } from "../../pkg/prepare/index.js";
import { PreparedClaimStore, VfClaimPreparer } from "../../pkg/prepare/index.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createReadyNode,
  createVfioDeviceClass,
  deleteIgnoringMissing,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
  listNodeSlices,
  deleteTestNamespace,
} from "./kube.js";

const DRIVER = "sriovnetwork.openshift.io";
const DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
const never = new AbortController().signal;
/** VFs on a kernel network driver: ens1f1's VF 6 sits on vfio-pci and would be refused. */
const ON_IAVF = `device.attributes["${DRIVER}"].driver == "iavf"`;

interface Claim extends KubeObject {
  status?: {
    allocation?: { devices: { results: { device: string; request: string; pool: string }[] } };
    devices?: { driver: string; pool: string; device: string; data?: Record<string, unknown> }[];
  };
}

const vfConfig = (fields: Record<string, unknown>) => ({
  driver: DRIVER,
  parameters: { apiVersion: API_VERSION, kind: "VfConfig", ...fields },
});

describe("preparing claims the real scheduler allocated, on an emulated host", () => {
  let client: KubeClient;
  let root: string;
  let paths: HostPaths;
  let kernel: EmulatedKernel;
  let publisher: NodeDevicePublisher;
  let nodeName: string;
  let namespace: string;
  let bootId: string;
  const vfioClass = `${uniqueName("vfio")}.${DRIVER}`;
  const statusWriters = new Map<VfClaimPreparer, ClaimStatusWriter>();

  beforeAll(async () => {
    client = testClient();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "prepare-host-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    kernel = new EmulatedKernel({ root });
    await kernel.start();
    paths = new HostPaths({ root });
    bootId = fs.readFileSync(paths.bootId, "utf8").trim();
    nodeName = uniqueName("prepare-node");
    namespace = uniqueName("prepare");
    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(client, DEVICE_CLASSES, loadManifest("deployments/deviceclass.yaml"));
    await createVfioDeviceClass(client, vfioClass);
    publisher = new NodeDevicePublisher(client, {
      paths,
      driverName: DRIVER,
      nodeName,
      filterNamespace: namespace,
      publishHostUsedVfs: false,
      rediscoveryIntervalMs: 60_000,
      logger,
    });
    publisher.start();
    await waitFor("the node's slices", async () =>
      (await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    for (const status of statusWriters.values()) status.stop();
    await publisher?.stop();
    await kernel?.stop();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `${DEVICE_CLASSES}/${vfioClass}`);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(root, { recursive: true, force: true });
  });

  function newPreparer(options: Partial<VfClaimPreparerOptions> = {}): VfClaimPreparer {
    const status = new ClaimStatusWriter(client, { driverName: DRIVER, logger });
    const preparer = new VfClaimPreparer({
      client,
      paths,
      driverName: DRIVER,
      nodeName,
      claims: new PreparedClaimStore({
        file: path.join(paths.kubeletPluginsDir, DRIVER, "checkpoint.json"),
        bootId,
        logger,
      }),
      status,
      // As the daemon does: the publisher knows what it published.
      resourceNameOf: (device) => publisher.resourceNameOf(device),
      bindTimeoutMs: 10_000,
      logger,
      ...options,
    });
    statusWriters.set(preparer, status);
    return preparer;
  }

  async function allocate(
    requests: unknown[],
    config: { requests?: string[]; opaque: unknown }[] = [],
  ): Promise<ClaimRef> {
    const claim = await allocateForPod(client, { namespace, nodeName }, { requests, config });
    return { namespace: claim.namespace, name: claim.name, uid: claim.uid };
  }

  const readClaim = (name: string) =>
    client.request<Claim>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${name}`,
    });

  const request = (name: string, fields: Record<string, unknown> = {}) => ({
    name,
    exactly: { deviceClassName: DRIVER, ...fields },
  });
  const kernelVfs = (count = 1) => ({ count, selectors: [{ cel: { expression: ON_IAVF } }] });

  /** Prepares like the kubelet would, then waits for the claim status write it started. */
  async function prepare(preparer: VfClaimPreparer, ref: ClaimRef): Promise<PrepareOutcome> {
    const outcome = (await preparer.prepare([ref], never)).get(ref.uid)!;
    await statusWriters.get(preparer)!.settled();
    return outcome;
  }
  function devicesOf(outcome: PrepareOutcome) {
    if ("error" in outcome) throw new Error(`prepare failed: ${outcome.error}`);
    return outcome.devices;
  }
  const pciOf = (device: string) => device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
  const specFile = (uid: string) => path.join(paths.cdiRoot, `${DRIVER}-vf_${uid}.json`);
  const readSpec = (uid: string) => JSON.parse(fs.readFileSync(specFile(uid), "utf8")) as CdiSpec;
  const checkpoint = () =>
    new CheckpointStore<PreparedClaim>(
      path.join(paths.kubeletPluginsDir, DRIVER, "checkpoint.json"),
      bootId,
    ).load().entries;

  it("prepares a kernel-driver claim and writes status.devices", async () => {
    const ref = await allocate([request("vf", kernelVfs(2))], [{ opaque: vfConfig({}) }]);
    const preparer = newPreparer();
    const devices = devicesOf(await prepare(preparer, ref));
    expect(devices).toHaveLength(2);
    expect(devices.every((device) => device.poolName === nodeName)).toBe(true);
    expect(devices[0]!.cdiDeviceIds).toEqual([`${DRIVER}/vf=${pciOf(devices[0]!.deviceName)}`]);
    const pcis = devices.map((device) => pciOf(device.deviceName));
    expect(readSpec(ref.uid).containerEdits?.env).toEqual([
      `PCIDEVICE_VF=${pcis.join(",")}`,
      `SRIOVNETWORK_PCI_ADDRESSES=${pcis.join(",")}`,
    ]);
    for (const pci of pcis) expect(currentDriver(paths, pci)).toBe("iavf");

    const claim = await readClaim(ref.name);
    expect(claim.status?.devices).toEqual(
      devices.map((device, index) =>
        expect.objectContaining({
          driver: DRIVER,
          pool: nodeName,
          device: device.deviceName,
          data: { pciAddress: pcis[index], driver: "iavf", ifName: `net${index + 1}` },
        }),
      ),
    );

    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(fs.existsSync(specFile(ref.uid))).toBe(false);
    expect(checkpoint().has(ref.uid)).toBe(false);
  });

  it("binds a vfio-pci claim from a DeviceClass config, with vhost mounts from the claim, and unprepare restores iavf", async () => {
    const ref = await allocate(
      [{ name: "dpdk", exactly: { deviceClassName: vfioClass, selectors: kernelVfs().selectors } }],
      [{ opaque: vfConfig({ addVhostMount: true }) }],
    );
    const preparer = newPreparer();
    const [device] = devicesOf(await prepare(preparer, ref));
    const pci = pciOf(device!.deviceName);
    expect(currentDriver(paths, pci)).toBe("vfio-pci");
    const group = path.basename(fs.readlinkSync(path.join(paths.pciDevice(pci), "iommu_group")));
    expect(fs.existsSync(path.join(root, "dev/vfio", group))).toBe(true);
    expect(readSpec(ref.uid).devices[0]!.containerEdits).toEqual({
      env: [`SRIOVNETWORK_VF_DEVICE_0=${pci}`],
      deviceNodes: [`/dev/vfio/${group}`, "/dev/vfio/vfio", "/dev/vhost-net", "/dev/net/tun"].map(
        (node) => ({ path: node, hostPath: path.join(root, node) }),
      ),
    });
    expect(readSpec(ref.uid).containerEdits?.env?.[0]).toBe(`PCIDEVICE_DPDK=${pci}`);
    expect((await readClaim(ref.name)).status?.devices?.[0]?.data).toMatchObject({
      driver: "vfio-pci",
    });

    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(currentDriver(paths, pci)).toBe("iavf");
    expect(fs.existsSync(path.join(root, "dev/vfio", group))).toBe(false);
  });

  it("applies a config naming the main request to a device allocated for a subrequest", async () => {
    const ref = await allocate(
      [
        {
          name: "vf",
          firstAvailable: [
            {
              name: "mellanox",
              deviceClassName: DRIVER,
              selectors: [
                { cel: { expression: `device.attributes["${DRIVER}"].vendor == "15b3"` } },
              ],
            },
            { name: "intel", deviceClassName: DRIVER, ...kernelVfs() },
          ],
        },
      ],
      [{ requests: ["vf"], opaque: vfConfig({ ifName: "fast0" }) }],
    );
    const [device] = devicesOf(await prepare(newPreparer(), ref));
    expect(device!.requestNames).toEqual(["vf/intel"]);
    expect(checkpoint().get(ref.uid)!.devices[0]).toMatchObject({
      ifName: "fast0",
      resourceName: "vf",
    });
  });

  it("builds the VF's CNI configuration from a NetworkAttachmentDefinition", async () => {
    await client.request({
      method: "POST",
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name: "sriov-net" },
        spec: {
          config: JSON.stringify({
            cniVersion: "1.0.0",
            name: "sriov-net",
            plugins: [
              { type: "sriov", vlan: 100, ipam: { type: "static" } },
              { type: "tuning", mtu: 9000 },
            ],
          }),
        },
      },
    });
    const ref = await allocate(
      [request("vf", kernelVfs())],
      [{ opaque: vfConfig({ netAttachDefName: "sriov-net", ifName: "data0" }) }],
    );
    const [device] = devicesOf(await prepare(newPreparer(), ref));
    const pci = pciOf(device!.deviceName);
    const vf = checkpoint().get(ref.uid)!.devices[0]!;
    expect(vf.cniConfig).toEqual({
      cniVersion: "1.0.0",
      name: "sriov-net",
      plugins: [
        { type: "sriov", vlan: 100, ipam: { type: "static" }, deviceID: pci, pciBusID: pci },
        { type: "tuning", mtu: 9000 },
      ],
    });
    expect(readSpec(ref.uid).containerEdits?.env).toContain(
      `SRIOVNETWORK_NET_ATTACH_DEF_NAME=${namespace}/sriov-net`,
    );
    expect((await readClaim(ref.name)).status?.devices?.[0]?.data).toEqual({
      pciAddress: pci,
      driver: "iavf",
      ifName: "data0",
      netAttachDefNamespace: namespace,
      netAttachDefName: "sriov-net",
    });
  });

  it("fails a claim whose NetworkAttachmentDefinition is missing and leaves nothing behind", async () => {
    const ref = await allocate(
      [{ name: "dpdk", exactly: { deviceClassName: vfioClass, selectors: kernelVfs().selectors } }],
      [{ opaque: vfConfig({ netAttachDefName: "missing-net" }) }],
    );
    const claim = await readClaim(ref.name);
    const pci = pciOf(claim.status!.allocation!.devices.results[0]!.device);
    const outcome = await prepare(newPreparer(), ref);
    expect(outcome).toEqual({
      error: `NetworkAttachmentDefinition ${namespace}/missing-net does not exist: create it, or fix netAttachDefName/netAttachDefNamespace in the VfConfig`,
    });
    expect(currentDriver(paths, pci)).toBe("iavf");
    expect(fs.existsSync(specFile(ref.uid))).toBe(false);
    expect(checkpoint().has(ref.uid)).toBe(false);
    expect((await readClaim(ref.name)).status?.devices).toBeUndefined();
  });

  it("answers a repeated prepare the same way, and succeeds unpreparing an unknown claim", async () => {
    const ref = await allocate([request("vf", kernelVfs())]);
    const first = await prepare(newPreparer(), ref);
    devicesOf(first);
    expect(await prepare(newPreparer(), ref)).toEqual(first);
    const unknown = {
      namespace,
      name: "never-prepared",
      uid: "00000000-0000-0000-0000-000000000000",
    };
    expect((await newPreparer().unprepare([unknown], never)).get(unknown.uid)).toEqual({});
  });

  it("recovers after a restart: a vanished CDI spec comes back, an interrupted prepare is rolled back", async () => {
    const prepared = await allocate([request("vf", kernelVfs())]);
    const answer = await prepare(newPreparer(), prepared);
    fs.rmSync(specFile(prepared.uid));

    const interrupted = await allocate([
      { name: "dpdk", exactly: { deviceClassName: vfioClass, selectors: kernelVfs().selectors } },
    ]);
    let reach!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    // The process "dies" once the VF is on vfio-pci: nothing after that step runs.
    const dieAfterBind: FaultHook = (step) => {
      if (step !== "after-driver-bound") return undefined;
      reach();
      return new Promise<void>(() => undefined);
    };
    void newPreparer({ faultHook: dieAfterBind }).prepare([interrupted], never);
    await reached;
    const claim = await readClaim(interrupted.name);
    const pci = pciOf(claim.status!.allocation!.devices.results[0]!.device);
    expect(currentDriver(paths, pci)).toBe("vfio-pci");
    expect(checkpoint().get(interrupted.uid)?.state).toBe("PrepareStarted");

    const restarted = newPreparer();
    const report = await restarted.recover();
    expect(report.reapplied).toContain(prepared.uid);
    expect(report.rolledBack).toEqual([interrupted.uid]);
    expect(report.failed).toEqual([]);
    expect(fs.existsSync(specFile(prepared.uid))).toBe(true);
    expect(currentDriver(paths, pci)).toBe("iavf");
    expect(checkpoint().has(interrupted.uid)).toBe(false);
    expect(fs.existsSync(specFile(interrupted.uid))).toBe(false);

    expect(await prepare(restarted, prepared)).toEqual(answer);
    devicesOf(await prepare(restarted, interrupted));
    expect(currentDriver(paths, pci)).toBe("vfio-pci");
  });
});
