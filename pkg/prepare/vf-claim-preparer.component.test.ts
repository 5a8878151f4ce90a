import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { CdiSpec } from "../../lib/cdi/spec.js";
import { CheckpointStore } from "../../lib/checkpoint/checkpoint.js";
import { LiveInstance } from "../../lib/checkpoint/live-instance.js";
import { EmulatedKernel, buildEmulatedHost, builtinProfiles } from "../emulator/index.js";
import { bindDriver, currentDriver } from "../host/driver-binding.js";
import { HostPaths } from "../host/paths.js";
import type { ClaimRef, PrepareOutcome } from "../../lib/kubeletplugin/claim-preparer.js";
import { KubeApiError, type KubeRequest } from "../../lib/kube/client.js";
import type { AllocationConfig, ResourceClaim } from "./allocation.js";
import type { FaultHook, FaultStep } from "../faults/faults.js";
import { ClaimStatusWriter } from "../claimstatus/claim-status.js";
import type { PreparedClaim } from "./prepared-claim.js";
import { wholePfProblems } from "./host-state.js";
import { PreparedClaimStore } from "./prepared-claim-store.js";
import { deviceNetwork } from "./testing/fixtures.js";
import { VfClaimPreparer, type VfClaimPreparerOptions } from "./vf-claim-preparer.js";

const DRIVER = "sriovnetwork.openshift.io";
const NODE = "node-a";
const BOOT = "boot-1";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
const never = new AbortController().signal;

/** x710: ens1f0's VFs are 0000:3b:02.0-7 on iavf; ens1f1's VF 6 (0000:3b:0a.6) is on vfio-pci. */
const VF0 = "0000:3b:02.0";
const VF1 = "0000:3b:02.1";
const VF2 = "0000:3b:02.2";
const device = (pci: string) => pci.replace(/[:.]/g, "-");

/** An API server of plain objects by path; records every request. */
class FakeApi {
  readonly objects = new Map<string, unknown>();
  readonly requests: KubeRequest[] = [];

  request<T>(request: KubeRequest): Promise<T> {
    this.requests.push(request);
    if (request.method === "PATCH") {
      const claim = this.objects.get(request.path.replace(/\/status$/, "")) as ResourceClaim;
      claim.status = { ...claim.status, ...(request.body as { status: object }).status };
      return Promise.resolve(structuredClone(claim) as T);
    }
    const object = this.objects.get(request.path);
    if (object === undefined) {
      return Promise.reject(new KubeApiError(404, "NotFound", `${request.path} not found`));
    }
    return Promise.resolve(structuredClone(object) as T);
  }

  get statusWrites(): KubeRequest[] {
    return this.requests.filter((request) => request.method === "PATCH");
  }
}

interface ClaimSpec {
  name?: string;
  /** `name`: the device's name when it is not the VF's (a whole PF's `pf-...`). */
  devices: { pci: string; request?: string; pool?: string; name?: string }[];
  configs?: AllocationConfig[];
  pods?: string[];
}

const vfConfig = (
  parameters: Record<string, unknown>,
  source: AllocationConfig["source"] = "FromClaim",
  requests?: string[],
): AllocationConfig => ({
  source,
  ...(requests ? { requests } : {}),
  opaque: {
    driver: DRIVER,
    parameters: { apiVersion: API_VERSION, kind: "VfConfig", ...parameters },
  },
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let root: string;
let paths: HostPaths;
let api: FakeApi;
let checkpointFile: string;
let claimCount = 0;

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "prepare-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  paths = new HostPaths({ root });
  api = new FakeApi();
  checkpointFile = path.join(root, "var/lib/kubelet/plugins", DRIVER, "checkpoint.json");
});

async function startKernel(probeDurationMs = 0): Promise<void> {
  const kernel = new EmulatedKernel({ root, bindDelayMs: 1, probeDurationMs });
  await kernel.start();
  cleanups.push(() => kernel.stop());
}

/** The claim status writer each preparer was given. */
const statusWriters = new WeakMap<VfClaimPreparer, ClaimStatusWriter>();

/** Resolves when the status writes this preparer started have had their first try. */
const statusWritesSettled = (preparer: VfClaimPreparer) => statusWriters.get(preparer)!.settled();

function newPreparer(
  options: Partial<VfClaimPreparerOptions> & { bootId?: string } = {},
): VfClaimPreparer {
  const { bootId = BOOT, ...overrides } = options;
  const client = overrides.client ?? api;
  const status = new ClaimStatusWriter(client, { driverName: DRIVER, logger, retryDelaysMs: [] });
  const preparer = new VfClaimPreparer({
    client,
    paths,
    driverName: DRIVER,
    nodeName: NODE,
    claims: new PreparedClaimStore({ file: checkpointFile, bootId, logger }),
    status,
    resourceNameOf: () => undefined,
    bindTimeoutMs: 2_000,
    logger,
    faultHook: () => undefined,
    ...overrides,
  });
  statusWriters.set(preparer, status);
  cleanups.push(() => status.stop());
  return preparer;
}

function claimPath(ref: Pick<ClaimRef, "namespace" | "name">): string {
  return `/apis/resource.k8s.io/v1/namespaces/${ref.namespace}/resourceclaims/${ref.name}`;
}

/** Stores an allocated claim reserved for `pods` and returns the kubelet's reference to it. */
function addClaim(spec: ClaimSpec): ClaimRef {
  claimCount++;
  const ref = {
    namespace: "ns",
    name: spec.name ?? `claim-${claimCount}`,
    uid: `uid-${claimCount}`,
  };
  const claim: ResourceClaim = {
    metadata: { ...ref, resourceVersion: "1" },
    status: {
      allocation: {
        devices: {
          results: spec.devices.map(({ pci, request, pool, name }) => ({
            request: request ?? "vf",
            driver: DRIVER,
            pool: pool ?? NODE,
            device: name ?? device(pci),
          })),
          config: spec.configs ?? [],
        },
      },
      reservedFor: (spec.pods ?? ["pod-1"]).map((uid) => ({ resource: "pods", name: uid, uid })),
    },
  };
  api.objects.set(claimPath(ref), claim);
  return ref;
}

function addNad(name: string, config: unknown, namespace = "ns"): void {
  api.objects.set(
    `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions/${name}`,
    { metadata: { namespace, name }, spec: { config: JSON.stringify(config) } },
  );
}

async function prepareOne(preparer: VfClaimPreparer, ref: ClaimRef): Promise<PrepareOutcome> {
  return (await preparer.prepare([ref], never)).get(ref.uid)!;
}

function devicesOf(outcome: PrepareOutcome) {
  if ("error" in outcome) throw new Error(`prepare failed: ${outcome.error}`);
  return outcome.devices;
}

function errorOf(outcome: PrepareOutcome): string {
  if (!("error" in outcome)) throw new Error("prepare unexpectedly succeeded");
  return outcome.error;
}

function checkpointEntries(): Map<string, PreparedClaim> {
  return new CheckpointStore<PreparedClaim>(checkpointFile, BOOT).load().entries;
}

function cdiSpecs(): string[] {
  return fs.existsSync(paths.cdiRoot) ? fs.readdirSync(paths.cdiRoot).sort() : [];
}

function readSpec(uid: string): CdiSpec {
  return JSON.parse(
    fs.readFileSync(path.join(paths.cdiRoot, `sriovnetwork.openshift.io-vf_${uid}.json`), "utf8"),
  ) as CdiSpec;
}

/** Everything prepare may change: VF drivers, CDI specs, checkpoint entries. */
function hostState() {
  const drivers = Object.fromEntries(
    [VF0, VF1, VF2, "0000:3b:0a.6"].map((pci) => [pci, currentDriver(paths, pci)]),
  );
  return { drivers, cdiSpecs: cdiSpecs(), claims: [...checkpointEntries().keys()].sort() };
}

function iommuGroupOf(pci: string): number {
  return Number(path.basename(fs.readlinkSync(path.join(paths.pciDevice(pci), "iommu_group"))));
}

describe("VfClaimPreparer", () => {
  it("prepares a kernel-driver claim: answer, CDI spec, checkpoint and claim status", async () => {
    const preparer = newPreparer();
    const ref = addClaim({ devices: [{ pci: VF0 }, { pci: VF1, request: "second/any" }] });
    const devices = devicesOf(await prepareOne(preparer, ref));
    expect(devices).toEqual([
      {
        requestNames: ["vf"],
        poolName: NODE,
        deviceName: "0000-3b-02-0",
        cdiDeviceIds: [`${DRIVER}/vf=${VF0}`],
      },
      {
        requestNames: ["second/any"],
        poolName: NODE,
        deviceName: "0000-3b-02-1",
        cdiDeviceIds: [`${DRIVER}/vf=${VF1}`],
      },
    ]);
    const spec = readSpec(ref.uid);
    expect(spec.containerEdits?.env).toEqual([
      `PCIDEVICE_VF=${VF0}`,
      `PCIDEVICE_SECOND=${VF1}`,
      `SRIOVNETWORK_PCI_ADDRESSES=${VF0},${VF1}`,
    ]);
    expect(spec.devices.map((d) => d.containerEdits)).toEqual([
      { env: [`SRIOVNETWORK_VF_DEVICE_0=${VF0}`] },
      { env: [`SRIOVNETWORK_VF_DEVICE_1=${VF1}`] },
    ]);
    const entry = checkpointEntries().get(ref.uid)!;
    expect(entry).toMatchObject({ state: "PrepareCompleted", podUids: ["pod-1"], name: ref.name });
    expect(entry.devices.map((vf) => [vf.ifName, vf.originalDriver, vf.targetDriver])).toEqual([
      ["net1", "iavf", "iavf"],
      ["net2", "iavf", "iavf"],
    ]);
    expect(currentDriver(paths, VF0)).toBe("iavf");
    await statusWritesSettled(preparer);
    expect(api.statusWrites).toHaveLength(1);
    expect(api.statusWrites[0]!.path).toBe(`${claimPath(ref)}/status`);
    // The status write builds on the claim prepare read: one GET of the claim in all.
    expect(api.statusWrites[0]!.body).toMatchObject({ metadata: { resourceVersion: "1" } });
    expect(
      api.requests.filter((request) => request.method === "GET" && request.path === claimPath(ref)),
    ).toHaveLength(1);
  });

  it("binds a vfio-pci claim, names its VFIO group in the spec, and unprepare restores iavf", async () => {
    await startKernel();
    const preparer = newPreparer();
    const ref = addClaim({
      devices: [{ pci: VF1 }],
      configs: [vfConfig({ driver: "vfio-pci" }, "FromClass"), vfConfig({ addVhostMount: true })],
    });
    devicesOf(await prepareOne(preparer, ref));
    expect(currentDriver(paths, VF1)).toBe("vfio-pci");
    const group = iommuGroupOf(VF1);
    expect(fs.existsSync(path.join(root, "dev/vfio", String(group)))).toBe(true);
    expect(readSpec(ref.uid).devices[0]!.containerEdits.deviceNodes).toEqual(
      [`/dev/vfio/${group}`, "/dev/vfio/vfio", "/dev/vhost-net", "/dev/net/tun"].map((node) => ({
        path: node,
        hostPath: path.join(root, node),
      })),
    );
    expect(checkpointEntries().get(ref.uid)!.devices[0]).toMatchObject({
      originalDriver: "iavf",
      targetDriver: "vfio-pci",
      iommuGroup: group,
    });

    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(currentDriver(paths, VF1)).toBe("iavf");
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("refuses a vfio-pci claim on a VF already on vfio-pci that shares its IOMMU group", async () => {
    // ens1f1's VF 6 sits on vfio-pci from boot; here its group also holds VF 5.
    fs.rmSync(root, { recursive: true, force: true });
    await buildEmulatedHost({
      root,
      profile: { ...builtinProfiles.x710, sharedIommuGroups: [["0000:3b:0a.5", "0000:3b:0a.6"]] },
    });
    await startKernel();
    const preparer = newPreparer();
    const ref = addClaim({
      devices: [{ pci: "0000:3b:0a.6" }],
      configs: [vfConfig({ driver: "vfio-pci" })],
    });
    expect(errorOf(await prepareOne(preparer, ref))).toMatch(
      /0000:3b:0a\.6 shares IOMMU group \d+ with 0000:3b:0a\.5/,
    );
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
    expect(currentDriver(paths, "0000:3b:0a.6")).toBe("vfio-pci");
  });

  it("prepares and unprepares a vfio-pci claim on a kernel whose probes take 1.5 s", async () => {
    await startKernel(1_500);
    const preparer = newPreparer({ bindTimeoutMs: 10_000 });
    const ref = addClaim({ devices: [{ pci: VF1 }], configs: [vfConfig({ driver: "vfio-pci" })] });
    devicesOf(await prepareOne(preparer, ref));
    expect(currentDriver(paths, VF1)).toBe("vfio-pci");
    expect(fs.existsSync(path.join(root, "dev/vfio", String(iommuGroupOf(VF1))))).toBe(true);
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(currentDriver(paths, VF1)).toBe("iavf");
    expect(fs.existsSync(path.join(paths.pciDevice(VF1), "net/ens1f0v1"))).toBe(true);
    await vi.waitFor(
      () =>
        expect(fs.readFileSync(path.join(paths.pciDevice(VF1), "driver_override"), "utf8")).toBe(
          "(null)\n",
        ),
      { timeout: 5_000, interval: 5 },
    );
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("prepares a whole PF with its kernel driver like a VF, and answers again from the checkpoint", async () => {
    const PF = "0000:3b:00.0";
    const preparer = newPreparer();
    const ref = addClaim({ devices: [{ pci: PF, name: "pf-0000-3b-00-0", request: "nic" }] });
    const first = await prepareOne(preparer, ref);
    expect(devicesOf(first)).toEqual([
      {
        requestNames: ["nic"],
        poolName: NODE,
        deviceName: "pf-0000-3b-00-0",
        cdiDeviceIds: [`${DRIVER}/vf=0000:3b:00.0`],
      },
    ]);
    expect(readSpec(ref.uid).containerEdits?.env).toContain(`PCIDEVICE_NIC=${PF}`);
    expect(checkpointEntries().get(ref.uid)!.devices[0]).toMatchObject({
      pciAddress: PF,
      originalDriver: "i40e",
      targetDriver: "i40e",
      ifName: "net1",
    });
    // The checkpointed PF reads as present: a repeated prepare redoes nothing.
    expect(await prepareOne(newPreparer(), ref)).toEqual(first);
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(currentDriver(paths, PF)).toBe("i40e");
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });

    // A VF name for the PF's address is no device of ours.
    const misnamed = addClaim({ devices: [{ pci: PF }] });
    expect(errorOf(await prepareOne(preparer, misnamed))).toMatch(
      /VF 0000:3b:00.0 \(device 0000-3b-00-0\) is not present on this host/,
    );
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("puts a whole PF's VFs on vfio-pci (the PF keeps i40e and its VFs), a VFIO group each in the spec, and back", async () => {
    await startKernel();
    const PF = "0000:3b:00.0";
    const vfs = Array.from({ length: 8 }, (_, index) => `0000:3b:02.${index}`);
    const preparer = newPreparer();
    const ref = addClaim({
      devices: [{ pci: PF, name: "pf-0000-3b-00-0", request: "nic" }],
      configs: [vfConfig({ driver: "vfio-pci" })],
    });
    devicesOf(await prepareOne(preparer, ref));
    expect(currentDriver(paths, PF)).toBe("i40e");
    expect(vfs.map((vf) => currentDriver(paths, vf))).toEqual(vfs.map(() => "vfio-pci"));
    const groups = vfs.map(iommuGroupOf);
    const edits = readSpec(ref.uid).devices[0]!.containerEdits!;
    expect(edits.deviceNodes!.map((node) => node.path)).toEqual([
      ...groups.map((group) => `/dev/vfio/${group}`),
      "/dev/vfio/vfio",
    ]);
    for (const node of edits.deviceNodes!) expect(fs.existsSync(node.hostPath!)).toBe(true);
    expect(edits.env).toContain(`SRIOVNETWORK_PF_VFS_0=${vfs.join(",")}`);
    // A repeated prepare (another instance too) finds the VFs on vfio-pci: nothing to redo.
    expect(await prepareOne(newPreparer(), ref)).toEqual(await prepareOne(preparer, ref));

    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(vfs.map((vf) => currentDriver(paths, vf))).toEqual(vfs.map(() => "iavf"));
    expect(currentDriver(paths, PF)).toBe("i40e");
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("refuses a whole PF whose VF count changed while prepared, and still unprepares it", async () => {
    await startKernel();
    const preparer = newPreparer();
    const ref = addClaim({ devices: [{ pci: "0000:3b:00.0", name: "pf-0000-3b-00-0" }] });
    devicesOf(await prepareOne(preparer, ref));
    const prepared = checkpointEntries().get(ref.uid)!;
    expect(prepared.devices[0]!.wholePfVfs).toHaveLength(8);
    expect(wholePfProblems(paths, [prepared])).toEqual([]);
    const numVfs = path.join(paths.pciDevice("0000:3b:00.0"), "sriov_numvfs");
    const virtfns = () =>
      fs.readdirSync(paths.pciDevice("0000:3b:00.0")).filter((e) => e.startsWith("virtfn"));
    fs.writeFileSync(numVfs, "0");
    await vi.waitFor(() => expect(virtfns()).toEqual([]), { timeout: 5000, interval: 10 });
    fs.writeFileSync(numVfs, "4");
    await vi.waitFor(() => expect(virtfns()).toHaveLength(4), { timeout: 5000, interval: 10 });

    // The sandbox's start (pod network step) and a repeated prepare refuse it alike.
    expect(wholePfProblems(paths, [prepared])).toEqual([
      expect.stringMatching(/^whole PF 0000:3b:00.0 had 8 VFs .* and has 4 now: .*delete the pod/),
    ]);
    expect(errorOf(await prepareOne(preparer, ref))).toMatch(
      /whole PF 0000:3b:00.0 had 8 VFs when the claim was prepared and has 4 now: its VF count \(sriov_numvfs\) changed/,
    );
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
    // Unprepare put the count back (0, then 8), and the kernel probed the VFs' driver again.
    expect(virtfns()).toHaveLength(8);
    expect(fs.readFileSync(numVfs, "utf8").trim()).toBe("8");
    await vi.waitFor(() => expect(currentDriver(paths, VF0)).toBe("iavf"), {
      timeout: 5000,
      interval: 10,
    });
  });

  it("puts the whole PF's link back up after the pod, from the checkpoint a restart left", async () => {
    const PF = "0000:3b:00.0";
    const flags = path.join(paths.pciDevice(PF), "net/ens1f0/flags");
    expect(fs.readFileSync(flags, "utf8").trim()).toBe("0x1003");
    const ref = addClaim({ devices: [{ pci: PF, name: "pf-0000-3b-00-0" }] });
    devicesOf(await prepareOne(newPreparer(), ref));
    expect(checkpointEntries().get(ref.uid)!.devices[0]!.pfLink).toEqual({
      name: "ens1f0",
      up: true,
    });
    // Back from the pod's namespace the kernel shows it down (a move closes the link).
    fs.writeFileSync(flags, "0x1002\n");
    // Another instance (the plugin restarted) unprepares from the checkpoint alone.
    expect((await newPreparer().unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(fs.readFileSync(flags, "utf8").trim()).toBe("0x1003");
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });

    // A PF that was down stays down; one the host uses (an address on it) is refused.
    fs.writeFileSync(flags, "0x1002\n");
    const down = addClaim({ devices: [{ pci: PF, name: "pf-0000-3b-00-0" }] });
    devicesOf(await prepareOne(newPreparer(), down));
    expect((await newPreparer().unprepare([down], never)).get(down.uid)).toEqual({});
    expect(fs.readFileSync(flags, "utf8").trim()).toBe("0x1002");
    const inet6 = path.join(paths.procNet, "if_inet6");
    fs.appendFileSync(inet6, "20010db8000000000000000000000001 05 40 00 80 ens1f0\n");
    const used = addClaim({ devices: [{ pci: PF, name: "pf-0000-3b-00-0" }] });
    expect(errorOf(await prepareOne(newPreparer(), used))).toMatch(
      /whole PF 0000:3b:00.0: the host uses its network interface ens1f0/,
    );
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("answers a repeated prepare the same way from the checkpoint, re-creating a vanished spec", async () => {
    const preparer = newPreparer();
    const ref = addClaim({ devices: [{ pci: VF0 }] });
    const first = await prepareOne(preparer, ref);
    const reads = api.requests.length;
    fs.rmSync(path.join(paths.cdiRoot, cdiSpecs()[0]!));
    expect(await prepareOne(preparer, ref)).toEqual(first);
    expect(cdiSpecs()).toHaveLength(1);
    expect(api.requests).toHaveLength(reads);
    // A new instance (restart, rolling update) answers the same from the file.
    expect(await prepareOne(newPreparer(), ref)).toEqual(first);
  });

  it("succeeds unpreparing a claim it never prepared, and removes a stray spec of it", async () => {
    const preparer = newPreparer();
    const ref = { namespace: "ns", name: "never", uid: "uid-never" };
    fs.mkdirSync(paths.cdiRoot, { recursive: true });
    fs.writeFileSync(path.join(paths.cdiRoot, "sriovnetwork.openshift.io-vf_uid-never.json"), "{}");
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(cdiSpecs()).toEqual([]);
  });

  it("keeps the CDI ids of a claim prepared before devices were named by PCI address", async () => {
    const ref = addClaim({ devices: [{ pci: VF0 }] });
    devicesOf(await prepareOne(newPreparer(), ref));
    // The checkpoint as a driver of the old naming (`<claim UID>-<device>`) left it.
    const oldId = `${DRIVER}/vf=${ref.uid}-0000-3b-02-0`;
    const store = new CheckpointStore<PreparedClaim>(checkpointFile, BOOT);
    const entries = store.load().entries;
    entries.get(ref.uid)!.devices[0]!.cdiDeviceId = oldId;
    await store.save(entries);
    fs.rmSync(path.join(paths.cdiRoot, cdiSpecs()[0]!));

    expect(devicesOf(await prepareOne(newPreparer(), ref))[0]!.cdiDeviceIds).toEqual([oldId]);
    expect(readSpec(ref.uid).devices.map((d) => d.name)).toEqual([`${ref.uid}-0000-3b-02-0`]);
  });

  it("removes a stale spec naming the same VF that no claim owns, and refuses one a prepared claim holds", async () => {
    const preparer = newPreparer();
    const staleSpec: CdiSpec = {
      cdiVersion: "0.5.0",
      kind: `${DRIVER}/vf`,
      devices: [{ name: VF0, containerEdits: { env: [`SRIOVNETWORK_VF_DEVICE_0=${VF0}`] } }],
    };
    fs.mkdirSync(paths.cdiRoot, { recursive: true });
    const staleFile = path.join(paths.cdiRoot, "sriovnetwork.openshift.io-vf_uid-gone.json");
    fs.writeFileSync(staleFile, JSON.stringify(staleSpec));
    const first = addClaim({ devices: [{ pci: VF0 }] });
    devicesOf(await prepareOne(preparer, first));
    expect(cdiSpecs()).toEqual([`sriovnetwork.openshift.io-vf_${first.uid}.json`]);

    // Two claims of one VF would make the runtime drop the device of both specs.
    const second = addClaim({ devices: [{ pci: VF0 }] });
    expect(errorOf(await prepareOne(preparer, second))).toMatch(
      new RegExp(`CDI device ${DRIVER}/vf=${VF0} .*claim ns/${first.name}`),
    );
    expect(hostState()).toMatchObject({
      cdiSpecs: [`sriovnetwork.openshift.io-vf_${first.uid}.json`],
      claims: [first.uid],
    });
  });

  it("writes Multus's device information with the spec when asked, and removes it with the spec", async () => {
    const preparer = newPreparer({ deviceInfo: true });
    const ref = addClaim({ name: "sriov-vf", devices: [{ pci: VF0 }, { pci: VF1 }] });
    devicesOf(await prepareOne(preparer, ref));
    const dir = paths.at("/var/run/k8s.cni.cncf.io/devinfo/dp");
    expect(fs.readdirSync(dir).sort()).toEqual([
      `sriov-vf-${VF0}-device.json`,
      `sriov-vf-${VF1}-device.json`,
    ]);
    expect(
      JSON.parse(fs.readFileSync(path.join(dir, `sriov-vf-${VF1}-device.json`), "utf8")),
    ).toEqual({ type: "pci", version: "1.1.0", pci: { "pci-address": VF1 } });
    expect((await preparer.unprepare([ref], never)).get(ref.uid)).toEqual({});
    expect(fs.readdirSync(dir)).toEqual([]);

    // A prepare that fails after the spec was written takes the files back too.
    const failing = newPreparer({
      deviceInfo: true,
      faultHook: (step) => {
        if (step === "after-cdi-written") throw new Error("injected");
      },
    });
    expect(errorOf(await prepareOne(failing, ref))).toMatch(/injected/);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
  });

  it("keeps interface names unique in a pod, and the pod's other claim when one is unprepared", async () => {
    const preparer = newPreparer();
    const first = addClaim({ devices: [{ pci: VF0 }, { pci: VF1 }], pods: ["pod-1"] });
    const second = addClaim({ devices: [{ pci: VF2 }], pods: ["pod-1"] });
    const otherPod = addClaim({ devices: [{ pci: "0000:3b:02.3" }], pods: ["pod-2"] });
    await preparer.prepare([first], never);
    await preparer.prepare([second, otherPod], never);
    const ifNames = (uid: string) =>
      checkpointEntries()
        .get(uid)!
        .devices.map((vf) => vf.ifName);
    expect([ifNames(first.uid), ifNames(second.uid), ifNames(otherPod.uid)]).toEqual([
      ["net1", "net2"],
      ["net3"],
      ["net1"],
    ]);

    const together = [1, 2].map((n) =>
      addClaim({ devices: [{ pci: `0000:3b:02.${4 + n}` }], pods: ["pod-3"] }),
    );
    await preparer.prepare(together, never);
    expect(together.map(({ uid }) => ifNames(uid)[0]).sort()).toEqual(["net1", "net2"]);

    const clash = addClaim({
      devices: [{ pci: "0000:3b:02.4" }],
      configs: [vfConfig({ ifName: "net2" })],
      pods: ["pod-1"],
    });
    expect(errorOf(await prepareOne(preparer, clash))).toBe(
      `ifName "net2" (request vf) is already used in the pod by claim ns/${first.name}: give this VF another ifName`,
    );

    await preparer.unprepare([first], never);
    expect([...checkpointEntries().keys()].sort()).toEqual(
      [otherPod.uid, second.uid, ...together.map(({ uid }) => uid)].sort(),
    );
    expect(cdiSpecs()).toHaveLength(4);
    expect(devicesOf(await prepareOne(newPreparer(), second))).toHaveLength(1);
  });

  it("resolves a NetworkAttachmentDefinition into the VF's CNI configuration and the claim status", async () => {
    const preparer = newPreparer();
    addNad("sriov-net", {
      cniVersion: "1.0.0",
      name: "sriov-net",
      plugins: [{ type: "sriov", vlan: 10 }, { type: "tuning" }],
    });
    const ref = addClaim({
      devices: [{ pci: VF0 }],
      configs: [vfConfig({ netAttachDefName: "sriov-net" })],
    });
    devicesOf(await prepareOne(preparer, ref));
    const vf = checkpointEntries().get(ref.uid)!.devices[0]!;
    expect(vf.netAttachDef).toEqual({ namespace: "ns", name: "sriov-net" });
    expect(vf.cniConfig).toEqual({
      cniVersion: "1.0.0",
      name: "sriov-net",
      plugins: [{ type: "sriov", vlan: 10, deviceID: VF0, pciBusID: VF0 }, { type: "tuning" }],
    });
    expect(readSpec(ref.uid).containerEdits?.env).toContain(
      "SRIOVNETWORK_NET_ATTACH_DEF_NAME=ns/sriov-net",
    );
    await statusWritesSettled(preparer);
    expect(api.statusWrites[0]!.body).toMatchObject({
      status: {
        devices: [
          {
            device: device(VF0),
            data: { ifName: "net1", netAttachDefNamespace: "ns", netAttachDefName: "sriov-net" },
          },
        ],
      },
    });
  });

  it("names PCIDEVICE_ variables after the resourceName the node published", async () => {
    const published = (name: string) => (name === device(VF0) ? "eth0_resource" : undefined);
    const ref = addClaim({ devices: [{ pci: VF0 }, { pci: VF1 }] });
    devicesOf(await prepareOne(newPreparer({ resourceNameOf: published }), ref));
    expect(readSpec(ref.uid).containerEdits?.env?.slice(0, 2)).toEqual([
      `PCIDEVICE_ETH0_RESOURCE=${VF0}`,
      `PCIDEVICE_VF=${VF1}`,
    ]);
  });

  it("never fails a prepare because the claim status cannot be written", async () => {
    const failing = {
      request: <T>(request: KubeRequest): Promise<T> =>
        request.method === "PATCH"
          ? Promise.reject(new Error("connection reset"))
          : api.request<T>(request),
    };
    const ref = addClaim({ devices: [{ pci: VF0 }] });
    devicesOf(await prepareOne(newPreparer({ client: failing }), ref));
  });

  describe("bad input fails the claim and leaves the host as it was", () => {
    const cases: [string, () => ClaimRef, RegExp][] = [
      [
        "malformed VfConfig",
        () =>
          addClaim({
            devices: [{ pci: VF1 }],
            configs: [vfConfig({ driver: "vfio-pci", ifname: "x" })],
          }),
        /^invalid VfConfig \(ResourceClaim ns\/claim-\d+ status\.allocation\.devices\.config\[0\]\.opaque\.parameters\.ifname: unknown field .*: fix the claim's config$/,
      ],
      [
        "unknown driver",
        () => addClaim({ devices: [{ pci: VF1 }], configs: [vfConfig({ driver: "igb_uio" })] }),
        /parameters\.driver: must be one of/,
      ],
      [
        "invalid ifName",
        () => addClaim({ devices: [{ pci: VF1 }], configs: [vfConfig({ ifName: "has space" })] }),
        /parameters\.ifName: must not contain " "/,
      ],
      [
        "duplicate ifName in the claim",
        () =>
          addClaim({
            devices: [{ pci: VF0 }, { pci: VF1 }],
            configs: [vfConfig({ ifName: "data", driver: "vfio-pci" })],
          }),
        /^ifName "data" is set for two VFs of the claim \(requests vf and vf\)/,
      ],
      [
        "missing NetworkAttachmentDefinition",
        () =>
          addClaim({
            devices: [{ pci: VF1 }],
            configs: [vfConfig({ driver: "vfio-pci", netAttachDefName: "nope" })],
          }),
        /^NetworkAttachmentDefinition ns\/nope does not exist: create it, or fix netAttachDefName/,
      ],
      [
        "invalid NetworkAttachmentDefinition",
        () => {
          addNad("broken", { cniVersion: "1.0.0", plugins: [{ vlan: 1 }] });
          return addClaim({
            devices: [{ pci: VF1 }],
            configs: [vfConfig({ netAttachDefName: "broken" })],
          });
        },
        /^NetworkAttachmentDefinition ns\/broken has an invalid CNI configuration in spec\.config: plugins\[0\] has no plugin type/,
      ],
      [
        "network in another namespace",
        () => {
          addNad("shared", { cniVersion: "1.0.0", type: "sriov" }, "networks");
          return addClaim({
            devices: [{ pci: VF1 }],
            configs: [vfConfig({ netAttachDefName: "shared", netAttachDefNamespace: "networks" })],
          });
        },
        /outside the claim's namespace ns/,
      ],
      [
        "claim not allocated",
        () => {
          const ref = addClaim({ devices: [{ pci: VF1 }] });
          api.objects.set(claimPath(ref), { metadata: { ...ref }, status: {} });
          return ref;
        },
        /is not allocated/,
      ],
      [
        "claim allocated on another node",
        () => addClaim({ devices: [{ pci: VF1, pool: "node-b" }] }),
        /allocated from pool node-b, but this is node node-a/,
      ],
      [
        "UID mismatch",
        () => ({ ...addClaim({ devices: [{ pci: VF1 }] }), uid: "uid-old" }),
        /has UID uid-\d+, not uid-old/,
      ],
      [
        "claim gone",
        () => ({ namespace: "ns", name: "gone", uid: "uid-gone" }),
        /ResourceClaim ns\/gone does not exist/,
      ],
      [
        "VF not on the host",
        () => addClaim({ devices: [{ pci: VF0 }, { pci: "0000:3b:03.0" }] }),
        /^VF 0000:3b:03\.0 \(device 0000-3b-03-0\) is not present on this host/,
      ],
      [
        "kernel driver asked of a VF on vfio-pci",
        () => addClaim({ devices: [{ pci: "0000:3b:0a.6" }] }),
        /is bound to vfio-pci, so it has no network interface/,
      ],
    ];

    for (const [what, makeClaim, expected] of cases) {
      it(what, async () => {
        await startKernel();
        const preparer = newPreparer();
        const before = hostState();
        const ref = makeClaim();
        expect(errorOf(await prepareOne(preparer, ref))).toMatch(expected);
        expect(hostState()).toEqual(before);
        await statusWritesSettled(preparer);
        expect(api.statusWrites).toEqual([]);
      });
    }

    it("a vfio-pci bind that never completes", async () => {
      // No emulated kernel: nothing answers the sysfs writes.
      const preparer = newPreparer({ bindTimeoutMs: 50 });
      const before = hostState();
      const ref = addClaim({
        devices: [{ pci: VF1 }],
        configs: [vfConfig({ driver: "vfio-pci" })],
      });
      expect(errorOf(await prepareOne(preparer, ref))).toMatch(
        /^unbind 0000:3b:02\.1 from iavf did not complete within 50 ms/,
      );
      expect(hostState()).toEqual(before);
      const override = fs.readFileSync(path.join(paths.pciDevice(VF1), "driver_override"), "utf8");
      expect(["", "(null)"]).toContain(override.trim());
    });
  });

  describe("faults", () => {
    const PREPARE_STEPS: FaultStep[] = [
      "after-checkpoint-started",
      "after-driver-bound",
      "after-cdi-written",
      "before-checkpoint-completed",
    ];
    const UNPREPARE_STEPS: FaultStep[] = [
      "during-unprepare-after-checkpoint",
      "during-unprepare-after-cdi-removed",
      "during-unprepare-after-driver-restored",
    ];
    const vfioClaim = () =>
      addClaim({
        devices: [{ pci: VF0 }, { pci: VF1 }],
        configs: [vfConfig({ driver: "vfio-pci" })],
      });

    /** A hook under which the process "dies" at `step`: nothing after it ever runs. */
    function dieAt(step: FaultStep): { hook: FaultHook; reached: Promise<void> } {
      let reach!: () => void;
      const reached = new Promise<void>((resolve) => (reach = resolve));
      const hook: FaultHook = (at) => {
        if (at !== step) return undefined;
        reach();
        return new Promise<void>(() => undefined);
      };
      return { hook, reached };
    }

    it("leaves a half-done prepare to the instance doing it while that runs, and rolls it back once it is gone", async () => {
      await startKernel();
      const before = hostState();
      const instances = path.join(path.dirname(checkpointFile), "instances");
      const older = await LiveInstance.start(instances);
      const newer = await LiveInstance.start(instances);
      cleanups.push(() => void newer.close());
      const { hook, reached } = dieAt("after-driver-bound");
      const ref = vfioClaim();
      void newPreparer({ faultHook: hook, instance: older }).prepare([ref], never);
      await reached;

      // A rolling update: the new pod starts while the old one is mid-bind.
      const during = await newPreparer({ instance: newer }).recover();
      expect(during).toMatchObject({ leftToOtherInstance: [ref.uid], rolledBack: [] });
      // The first VF stays as the older instance bound it.
      expect(currentDriver(paths, VF0)).toBe("vfio-pci");
      expect(checkpointEntries().get(ref.uid)).toMatchObject({
        state: "PrepareStarted",
        owner: older.id,
      });

      await older.close(); // the old pod dies with its work half done
      const after = await newPreparer({ instance: newer }).recover();
      expect(after).toMatchObject({ leftToOtherInstance: [], rolledBack: [ref.uid] });
      expect(hostState()).toEqual(before);
    });

    for (const step of PREPARE_STEPS) {
      it(`a failure ${step} rolls the host back`, async () => {
        await startKernel();
        const before = hostState();
        const preparer = newPreparer({
          faultHook: (at) => {
            if (at === step) throw new Error(`injected at ${at}`);
          },
        });
        const ref = vfioClaim();
        expect(errorOf(await prepareOne(preparer, ref))).toBe(
          `prepare failed unexpectedly: injected at ${step}; the kubelet retries (see the driver's log)`,
        );
        expect(hostState()).toEqual(before);
      });

      it(`a crash ${step} is rolled back at the next start`, async () => {
        await startKernel();
        const before = hostState();
        const { hook, reached } = dieAt(step);
        const ref = vfioClaim();
        void newPreparer({ faultHook: hook }).prepare([ref], never);
        await reached;
        expect(checkpointEntries().get(ref.uid)!.state).toBe("PrepareStarted");

        const report = await newPreparer().recover();
        expect(report).toMatchObject({ rolledBack: [ref.uid], reapplied: [], failed: [] });
        expect(hostState()).toEqual(before);
        // The kubelet's retry then prepares the claim from scratch.
        devicesOf(await prepareOne(newPreparer(), ref));
        expect(currentDriver(paths, VF1)).toBe("vfio-pci");
      });
    }

    it("rolls a whole PF's VFs back from vfio-pci after a failure, and after a crash, midway", async () => {
      await startKernel();
      const vfs = Array.from({ length: 8 }, (_, index) => `0000:3b:02.${index}`);
      const drivers = () => vfs.map((vf) => currentDriver(paths, vf));
      const wholeVfio = () =>
        addClaim({
          devices: [{ pci: "0000:3b:00.0", name: "pf-0000-3b-00-0" }],
          configs: [vfConfig({ driver: "vfio-pci" })],
        });
      let bound = 0;
      const failing = newPreparer({
        faultHook: (at) => {
          if (at === "after-driver-bound" && ++bound === 3) throw new Error("injected");
        },
      });
      expect(errorOf(await prepareOne(failing, wholeVfio()))).toMatch(/injected/);
      expect(drivers()).toEqual(vfs.map(() => "iavf"));
      expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });

      const { hook, reached } = dieAt("after-driver-bound");
      const ref = wholeVfio();
      void newPreparer({ faultHook: hook }).prepare([ref], never);
      await reached;
      expect(currentDriver(paths, vfs[0]!)).toBe("vfio-pci");
      expect(await newPreparer().recover()).toMatchObject({ rolledBack: [ref.uid], failed: [] });
      expect(drivers()).toEqual(vfs.map(() => "iavf"));
      expect(hostState()).toMatchObject({ cdiSpecs: [], claims: [] });
    });

    for (const step of UNPREPARE_STEPS) {
      it(`a crash ${step} is finished at the next start`, async () => {
        await startKernel();
        const before = hostState();
        const ref = vfioClaim();
        devicesOf(await prepareOne(newPreparer(), ref));
        const { hook, reached } = dieAt(step);
        void newPreparer({ faultHook: hook }).unprepare([ref], never);
        await reached;
        expect(checkpointEntries().get(ref.uid)!.state).toBe("UnprepareStarted");

        expect((await newPreparer().recover()).rolledBack).toEqual([ref.uid]);
        expect(hostState()).toEqual(before);
        expect((await newPreparer().unprepare([ref], never)).get(ref.uid)).toEqual({});
      });
    }
  });

  describe("recover", () => {
    it("re-creates the spec of a prepared claim and removes specs no claim owns", async () => {
      const ref = addClaim({ devices: [{ pci: VF0 }] });
      const answer = await prepareOne(newPreparer(), ref);
      const spec = readSpec(ref.uid);
      fs.rmSync(paths.cdiRoot, { recursive: true });
      fs.mkdirSync(paths.cdiRoot);
      fs.writeFileSync(path.join(paths.cdiRoot, "sriovnetwork.openshift.io-vf_orphan.json"), "{}");
      fs.writeFileSync(path.join(paths.cdiRoot, "other-vendor.json"), "{}");

      const report = await newPreparer().recover();
      expect(report).toEqual({
        rolledBack: [],
        reapplied: [ref.uid],
        failed: [],
        removedCdiSpecs: ["orphan"],
        leftToOtherInstance: [],
      });
      expect(readSpec(ref.uid)).toEqual(spec);
      expect(cdiSpecs()).toEqual([
        "other-vendor.json",
        `sriovnetwork.openshift.io-vf_${ref.uid}.json`,
      ]);
      expect(await prepareOne(newPreparer(), ref)).toEqual(answer);
    });

    it("removes a spec no claim owns before re-creating the spec of a claim of the same VF", async () => {
      const ref = addClaim({ devices: [{ pci: VF0 }] });
      devicesOf(await prepareOne(newPreparer(), ref));
      const spec = readSpec(ref.uid);
      fs.rmSync(path.join(paths.cdiRoot, cdiSpecs()[0]!));
      // Left by a claim whose entry is gone; it names the same CDI device.
      fs.writeFileSync(
        path.join(paths.cdiRoot, "sriovnetwork.openshift.io-vf_orphan.json"),
        JSON.stringify(spec),
      );

      const report = await newPreparer().recover();
      expect(report).toMatchObject({
        reapplied: [ref.uid],
        failed: [],
        removedCdiSpecs: ["orphan"],
      });
      expect(cdiSpecs()).toEqual([`sriovnetwork.openshift.io-vf_${ref.uid}.json`]);
    });

    it("after a reboot re-binds prepared vfio VFs and follows a renumbered IOMMU group", async () => {
      await startKernel();
      const ref = addClaim({
        devices: [{ pci: VF1 }],
        configs: [vfConfig({ driver: "vfio-pci" })],
      });
      devicesOf(await prepareOne(newPreparer(), ref));
      // The reboot: drivers back to native, the CDI root (tmpfs) empty, another group number.
      await bindDriver(paths, VF1, "iavf", { timeoutMs: 2_000 });
      fs.rmSync(paths.cdiRoot, { recursive: true });
      const store = new CheckpointStore<PreparedClaim>(checkpointFile, BOOT);
      const entries = store.load().entries;
      entries.get(ref.uid)!.devices[0]!.iommuGroup = 999;
      await store.save(entries);

      const report = await newPreparer({ bootId: "boot-2" }).recover();
      expect(report.reapplied).toEqual([ref.uid]);
      expect(currentDriver(paths, VF1)).toBe("vfio-pci");
      const group = iommuGroupOf(VF1);
      expect(readSpec(ref.uid).devices[0]!.containerEdits.deviceNodes![0]!.path).toBe(
        `/dev/vfio/${group}`,
      );
      const reloaded = new CheckpointStore<PreparedClaim>(checkpointFile, "boot-2").load();
      expect(reloaded.fromPreviousBoot).toBe(false);
      expect(reloaded.entries.get(ref.uid)!.devices[0]!.iommuGroup).toBe(group);
    });

    it("keeps a prepared claim whose VF is gone, and tells the kubelet on its next prepare", async () => {
      const ref = addClaim({ devices: [{ pci: VF0 }] });
      devicesOf(await prepareOne(newPreparer(), ref));
      const store = new CheckpointStore<PreparedClaim>(checkpointFile, BOOT);
      const entries = store.load().entries;
      entries.get(ref.uid)!.devices[0]!.pciAddress = "0000:3b:03.0";
      await store.save(entries);

      const report = await newPreparer().recover();
      expect(report.failed).toEqual([
        {
          claimUid: ref.uid,
          error: expect.stringMatching(/VF 0000:3b:03\.0 of the prepared claim is gone/),
        },
      ]);
      expect(errorOf(await prepareOne(newPreparer(), ref))).toMatch(/is gone from this host/);
      expect((await newPreparer().unprepare([ref], never)).get(ref.uid)).toEqual({});
      expect(checkpointEntries().size).toBe(0);
    });

    it("sets a corrupt checkpoint aside and starts empty", async () => {
      fs.mkdirSync(path.dirname(checkpointFile), { recursive: true });
      fs.writeFileSync(checkpointFile, "{ half a file");
      const report = await newPreparer().recover();
      expect(report.checkpointSetAside?.reason).toMatch(/^not JSON/);
      expect(fs.existsSync(report.checkpointSetAside!.path)).toBe(true);
      expect(checkpointEntries().size).toBe(0);
    });
  });

  describe("concurrency", () => {
    it("serializes calls for one claim: a concurrent repeat waits and gets the same answer", async () => {
      await startKernel();
      let binds = 0;
      const preparer = newPreparer({
        faultHook: (step) => {
          if (step === "after-driver-bound") binds++;
        },
      });
      const ref = addClaim({
        devices: [{ pci: VF1 }],
        configs: [vfConfig({ driver: "vfio-pci" })],
      });
      const [a, b] = await Promise.all([
        preparer.prepare([ref], never),
        preparer.prepare([ref], never),
      ]);
      expect(a.get(ref.uid)).toEqual(b.get(ref.uid));
      devicesOf(a.get(ref.uid)!);
      expect(binds).toBe(1);
    });

    it("runs different claims in parallel", async () => {
      let releaseFirst!: () => void;
      const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
      const first = addClaim({ devices: [{ pci: VF0 }] });
      const second = addClaim({ devices: [{ pci: VF1 }] });
      const preparer = newPreparer({
        faultHook: (step, context) =>
          step === "after-checkpoint-started" &&
          "claimUid" in context &&
          context.claimUid === first.uid
            ? firstHeld
            : undefined,
      });
      const firstDone = preparer.prepare([first], never);
      // The second claim completes while the first is held mid-prepare.
      devicesOf(await prepareOne(preparer, second));
      expect(checkpointEntries().get(first.uid)!.state).toBe("PrepareStarted");
      releaseFirst();
      devicesOf((await firstDone).get(first.uid)!);
      expect([...checkpointEntries().values()].map((claim) => claim.state)).toEqual([
        "PrepareCompleted",
        "PrepareCompleted",
      ]);
    });
  });
});

describe("VfClaimPreparer serving the networks annotation (device-plugin pods)", () => {
  const NETDEV = "intel.com/intel_sriov_netdevice";
  const DPDK = "intel.com/intel_sriov_dpdk";
  const podPath = "/api/v1/namespaces/ns/pods/app";

  /** The scheduler's claim for pod `app`: request 0 serves DPDK (1 VF), request 1 NETDEV (2). */
  function addExtendedResourceClaim(networks: string | undefined): ClaimRef {
    const ref = addClaim({
      devices: [
        { pci: VF0, request: "container-0-request-1" },
        { pci: VF1, request: "container-0-request-0" },
        { pci: VF2, request: "container-0-request-1" },
      ],
      pods: ["app-uid"],
    });
    const claim = api.objects.get(claimPath(ref)) as ResourceClaim;
    claim.metadata.annotations = { "resource.kubernetes.io/extended-resource-claim": "true" };
    claim.status!.reservedFor = [{ resource: "pods", name: "app", uid: "app-uid" }];
    api.objects.set(podPath, {
      metadata: {
        namespace: "ns",
        name: "app",
        uid: "app-uid",
        annotations: networks === undefined ? {} : { "k8s.v1.cni.cncf.io/networks": networks },
      },
      status: {
        extendedResourceClaimStatus: {
          resourceClaimName: ref.name,
          requestMappings: [
            { containerName: "c", resourceName: DPDK, requestName: "container-0-request-0" },
            { containerName: "c", resourceName: NETDEV, requestName: "container-0-request-1" },
          ],
        },
      },
    });
    return ref;
  }

  function addNadFor(name: string, resourceName: string | undefined): void {
    api.objects.set(
      `/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/${name}`,
      deviceNetwork(name, "ns", resourceName),
    );
  }

  const networksOf = (ref: ClaimRef) =>
    checkpointEntries()
      .get(ref.uid)!
      .devices.map((vf) => [
        vf.pciAddress,
        vf.netAttachDef?.name ?? null,
        vf.ifName,
        vf.runtimeConfig,
      ]);

  it("gives each network of the annotation the next VF of its resourceName, with interface, ips and mac", async () => {
    await startKernel();
    addNadFor("sriov-a", NETDEV);
    addNadFor("sriov-b", NETDEV);
    addNadFor("macvlan", undefined);
    const ref = addExtendedResourceClaim(
      JSON.stringify([
        { name: "macvlan" },
        { name: "sriov-b", interface: "data", ips: ["10.56.217.11/24"], mac: "02:00:00:aa:bb:01" },
        { name: "sriov-a" },
      ]),
    );
    devicesOf(await prepareOne(newPreparer({ networksAnnotation: true }), ref));
    expect(networksOf(ref)).toEqual([
      [VF0, "sriov-b", "data", { ips: ["10.56.217.11/24"], mac: "02:00:00:aa:bb:01" }],
      [VF1, null, "net1", undefined],
      // Multus names an interface after its position in the annotation: the third is net3.
      [VF2, "sriov-a", "net3", undefined],
    ]);
  });

  it("takes the comma form, and leaves every claim alone when the mode is off", async () => {
    await startKernel();
    addNadFor("sriov-a", NETDEV);
    const on = addExtendedResourceClaim("sriov-a@eth5");
    devicesOf(await prepareOne(newPreparer({ networksAnnotation: true }), on));
    expect(networksOf(on)[0]!.slice(1, 3)).toEqual(["sriov-a", "eth5"]);
    // The same VFs again, once the first claim let them go.
    expect((await newPreparer().unprepare([on], never)).get(on.uid)).toEqual({});

    const requestsBefore = api.requests.length;
    const off = addExtendedResourceClaim("sriov-a@eth5");
    devicesOf(await prepareOne(newPreparer(), off));
    expect(networksOf(off).map((vf) => vf[1])).toEqual([null, null, null]);
    expect(api.requests.slice(requestsBefore).some((r) => r.path === podPath)).toBe(false);
  });

  it("reads no pod for a claim the scheduler did not make for extended resources", async () => {
    await startKernel();
    const ref = addClaim({ devices: [{ pci: VF0 }] });
    devicesOf(await prepareOne(newPreparer({ networksAnnotation: true }), ref));
    expect(api.requests.some((r) => r.path.startsWith("/api/v1/"))).toBe(false);
  });

  it("fails the claim with what to fix: a bad annotation, a missing network, too few VFs", async () => {
    await startKernel();
    const preparer = newPreparer({ networksAnnotation: true });
    addNadFor("sriov-a", NETDEV);
    addNadFor("dpdk", DPDK);
    expect(errorOf(await prepareOne(preparer, addExtendedResourceClaim("Bad/Net")))).toMatch(
      /^pod ns\/app, annotation k8s.v1.cni.cncf.io\/networks: entry 1 .*"Bad" is not a DNS label.*; fix the annotation/,
    );
    expect(errorOf(await prepareOne(preparer, addExtendedResourceClaim("nope")))).toMatch(
      /NetworkAttachmentDefinition ns\/nope does not exist; fix the annotation/,
    );
    expect(errorOf(await prepareOne(preparer, addExtendedResourceClaim("dpdk,dpdk")))).toMatch(
      /network ns\/dpdk needs a VF of intel.com\/intel_sriov_dpdk .* requests 1/,
    );
    expect(errorOf(await prepareOne(preparer, addExtendedResourceClaim("other/sriov-a")))).toMatch(
      /outside the pod's namespace/,
    );
  });
});
