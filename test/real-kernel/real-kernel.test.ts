import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  buildEmulatedHost,
  builtinProfiles,
  destroyEmulatedHost,
} from "../../pkg/emulator/index.js";
import { isNotFound, type KubeClient } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createReadyNode,
  createVfioDeviceClass,
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
} from "../integration/kube.js";
import { enableVfs } from "./support/sriov.js";
import { guestDaemonLog, startGuestDaemon, writeGuestKubeconfig } from "./support/daemon.js";
import { BUNDLE, Guest, NODE, PF_ADDRESS, repoRoot } from "./support/guest.js";

const DRIVER = "sriovnetwork.openshift.io";
/** The driver's devlink reader as `make build` compiles it, run in the guest over its 9p root. */
const DEVLINK_MODULE = path.join(repoRoot, "dist/pkg/host/devlink.js");
const DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses";
const NUM_VFS = 4;
/** The 82576's VFs: offset 128, stride 2 from the PF at 01:00.0. */
const VF_ADDRESSES = [0, 1, 2, 3].map((index) => `0000:01:10.${index * 2}`);
/** The daemon's directories in the guest: its fresh tmpfs /run, never the host's files. */
const CDI_ROOT = "/run/cdi";

interface SliceList {
  items: { spec: { devices: { name: string; attributes: Record<string, unknown> }[] } }[];
}
/** A claim the real scheduler allocated, and the pod it was made for. */
interface Claim {
  namespace: string;
  name: string;
  uid: string;
  podName: string;
}
/** The claim as the kubelet names it to the driver. */
const wireOf = ({ namespace, name, uid }: Claim) => ({ namespace, name, uid });
interface ClaimStatus {
  status?: { devices?: { device: string; data?: Record<string, unknown> }[] };
}

const pciOf = (device: string) => device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
const sysfsDevice = (pci: string) => `/sys/bus/pci/devices/${pci}`;

/**
 * The node daemon on a real kernel: a QEMU guest whose Intel 82576 (igb) makes real VFs
 * (igbvf netdevs, IOMMU groups of their own), against the real control plane on the host.
 * What the emulated host stands in for everywhere else is checked here against the kernel.
 */
describe("a real kernel with real VFs (QEMU igb)", () => {
  let guest: Guest;
  let client: KubeClient;
  let kubelet: FakeKubelet;
  let draEndpoint: string;
  let nodeName: string;
  let namespace: string;
  let workDir: string;
  let guestKubeconfig: string;
  const vfioClass = `${uniqueName("vfio")}.${DRIVER}`;

  /** The kubelet-plugin in the guest, as the DaemonSet runs it (no NRI: no runtime here). */
  async function startDaemon(env: Record<string, string> = {}): Promise<void> {
    kubelet?.close();
    ({ kubelet, draEndpoint } = await startGuestDaemon(guest, {
      nodeName,
      namespace,
      kubeconfig: guestKubeconfig,
      args: [
        ...["--cdi-root", CDI_ROOT, "--nri-socket", "", "--cni-cache-dir", "/run/cni-cache"],
        // Rediscovery sees VFs come and go within seconds here (default 30 s).
        ...["--rediscovery-interval-seconds", "2"],
      ],
      env,
      registrationTimeoutMs: 120_000,
    }));
  }

  const daemonLog = () => guestDaemonLog(guest);

  const driverOf = async (pci: string) =>
    path.basename(
      await guest.sh(`readlink ${sysfsDevice(pci)}/driver || true`).then((s) => s.trim()),
    );
  const netdevsOf = async (pci: string) =>
    (await guest.sh(`ls ${sysfsDevice(pci)}/net 2>/dev/null || true`)).split("\n").filter(Boolean);

  beforeAll(async () => {
    client = testClient();
    kubelet = new FakeKubelet(loadKubeletProtos());
    nodeName = uniqueName("real-kernel");
    namespace = uniqueName("real-kernel");
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-real-kernel-"));
    guestKubeconfig = writeGuestKubeconfig(inject("kubeconfig"), workDir);

    guest = await Guest.boot({
      kernel: inject("guestKernel"),
      initramfs: inject("guestInitramfs"),
      consoleLog: path.join(workDir, "console.log"),
    });
    process.stderr.write(
      `real-kernel guest: agent answering ${guest.bootMs} ms after QEMU started\n`,
    );
    await enableVfs(guest, NUM_VFS);

    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(client, DEVICE_CLASSES, loadManifest("deployments/deviceclass.yaml"));
    await createVfioDeviceClass(client, vfioClass);
    await startDaemon();
    await waitFor(
      "the guest's slices",
      async () => ((await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined),
      60_000,
    );
  });

  afterAll(async () => {
    kubelet?.close();
    if (guest) {
      await guest.stop("daemon").catch(() => undefined);
      await guest.shutdown();
    }
    if (client) {
      await deleteTestNamespace(client, namespace);
      await deleteIgnoringMissing(client, `${DEVICE_CLASSES}/${vfioClass}`);
      await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("discovers on the real sysfs what the emulator's igb-82576 profile describes", async () => {
    const discover = await guest.exec(
      [NODE, BUNDLE, "discover", "--node-name", nodeName, "-o", "json"],
      { timeoutMs: 60_000 },
    );
    expect(discover.stderr).toBe("");
    const real = JSON.parse(discover.stdout) as SliceList;

    const root = fs.mkdtempSync(path.join(workDir, "emulated-"));
    await buildEmulatedHost({ root, profile: builtinProfiles["igb-82576"] });
    const emulated = JSON.parse(
      execFileSync(
        NODE,
        [BUNDLE, "discover", "--host-root", root, "--node-name", nodeName, "-o", "json"],
        {
          encoding: "utf8",
        },
      ),
    ) as SliceList;
    await destroyEmulatedHost(root);

    const devices = (list: SliceList) => list.items.flatMap((slice) => slice.spec.devices);
    expect(devices(real).map((device) => device.name)).toEqual(
      VF_ADDRESSES.map((pci) => pci.replace(/[:.]/g, "-")),
    );
    const iommuGroup = `${DRIVER}/iommuGroup`;
    for (const [index, device] of devices(real).entries()) {
      // IOMMU groups are numbered in probe order on both, so the numbers depend on what
      // else the machine has (QEMU's q35 probes a VGA, virtio and LPC functions before the
      // card). What must hold: each VF's is the kernel's own group, one per VF.
      const { [iommuGroup]: realGroup, ...realRest } = device.attributes;
      const { [iommuGroup]: emulatedGroup, ...emulatedRest } = devices(emulated)[index]!.attributes;
      expect(realRest).toEqual(emulatedRest);
      // devlink was asked (the next test shows what it answers for this PF): no instance.
      expect(realRest[`${DRIVER}/EswitchMode`]).toEqual({ string: "legacy" });
      expect(emulatedGroup).toEqual({ int: expect.any(Number) });
      const kernelGroup = await guest.sh(
        `basename $(readlink ${sysfsDevice(pciOf(device.name))}/iommu_group)`,
      );
      expect(realGroup).toEqual({ int: Number(kernelGroup.trim()) });
    }
    const groups = devices(real).map((device) => JSON.stringify(device.attributes[iommuGroup]));
    expect(new Set(groups).size).toBe(NUM_VFS);
  });

  it("reads e-switch modes through the kernel's devlink: netdevsim's switchdev and legacy, none for igb", async () => {
    // The driver's reader (dist/, as `make build` compiled it) in the guest, with a handle.
    const readEswitch = async (handle: string): Promise<unknown> => {
      const script = `const { readEswitchMode } = await import(${JSON.stringify(pathToFileURL(DEVLINK_MODULE).href)});
        process.stdout.write(JSON.stringify(await readEswitchMode(process.argv[1])));`;
      const run = await guest.exec([NODE, "--input-type=module", "-e", script, handle]);
      expect(run.stderr).toBe("");
      return JSON.parse(run.stdout);
    };
    // igb registers no devlink instance: the kernel answers ENODEV, discovery's fallback.
    const igb = await guest.exec(["devlink", "-j", "dev", "eswitch", "show", `pci/${PF_ADDRESS}`]);
    expect(igb).toMatchObject({ code: 1, stderr: "kernel answers: No such device\n" });
    expect(await readEswitch(`pci/${PF_ADDRESS}`)).toEqual({ kind: "no-eswitch" });

    // netdevsim (built for the guest's kernel: hack/real-kernel/build-guest.sh) with 2 VFs.
    const nsim = "/sys/bus/netdevsim/devices/netdevsim10";
    await guest.sh(`echo "10 1" > /sys/bus/netdevsim/new_device && echo 2 > ${nsim}/sriov_numvfs`);
    try {
      const handle = "netdevsim/netdevsim10";
      expect(await readEswitch(handle)).toEqual({ kind: "mode", mode: "legacy" });
      await guest.sh(`devlink dev eswitch set ${handle} mode switchdev`);
      expect(await readEswitch(handle)).toEqual({ kind: "mode", mode: "switchdev" });
      // In switchdev the device shows a representor per VF beside its uplink.
      const ports = await guest.sh(`cat ${nsim}/net/*/phys_port_name | sort`);
      expect(ports.split("\n").filter(Boolean)).toEqual(["p1", "pf0vf0", "pf0vf1"]);
      await guest.sh(`devlink dev eswitch set ${handle} mode legacy`);
      expect(await readEswitch(handle)).toEqual({ kind: "mode", mode: "legacy" });
    } finally {
      await guest.sh("echo 10 > /sys/bus/netdevsim/del_device");
    }
    expect(await readEswitch("netdevsim/netdevsim10")).toEqual({ kind: "no-eswitch" });
  });

  /** A claim for one VF of the class, optionally that VF index only. */
  async function allocate(className: string, vfIndex?: number): Promise<Claim> {
    const selectors =
      vfIndex === undefined
        ? []
        : [{ cel: { expression: `device.attributes["${DRIVER}"].vfID == ${vfIndex}` } }];
    const claim = await allocateForPod(
      client,
      { namespace, nodeName },
      { requests: [{ name: "vf", exactly: { deviceClassName: className, selectors } }] },
    );
    return claim;
  }

  async function prepare(claim: Claim): Promise<string> {
    const response = await kubelet.prepare(draEndpoint, "v1", [wireOf(claim)], 60_000);
    const result = response.claims[claim.uid]!;
    if (result.error) throw new Error(`prepare failed: ${result.error}\n${await daemonLog()}`);
    expect(result.devices).toHaveLength(1);
    return pciOf(result.devices[0]!.device_name);
  }

  /**
   * Unprepares like the kubelet after the pod ended, then deletes the pod: the garbage
   * collector removes its claim, and the scheduler may give the VF to the next test.
   */
  async function unprepare(claim: Claim): Promise<void> {
    const response = await kubelet.unprepare(draEndpoint, "v1", [wireOf(claim)]);
    expect(response.claims[claim.uid]!.error ?? "").toBe("");
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}/pods/${claim.podName}`);
    await waitFor(`claim ${claim.name} to be deleted`, () =>
      client
        .request({
          method: "GET",
          path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`,
        })
        .then(
          () => undefined,
          (error: unknown) => (isNotFound(error) ? true : Promise.reject(error)),
        ),
    );
  }

  const cdiSpecs = async () =>
    (await guest.sh(`ls ${CDI_ROOT} 2>/dev/null || true`)).split("\n").filter(Boolean);

  it("prepares a claim on an igbvf VF and unprepares it", async () => {
    const claim = await allocate(DRIVER);
    const pci = await prepare(claim);
    expect(VF_ADDRESSES).toContain(pci);
    expect(await driverOf(pci)).toBe("igbvf");
    expect(await cdiSpecs()).toEqual([`${DRIVER}-vf_${claim.uid}.json`]);
    const read = await client.request<ClaimStatus>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`,
    });
    expect(read.status?.devices?.[0]?.data).toEqual(
      expect.objectContaining({ pciAddress: pci, driver: "igbvf" }),
    );
    await unprepare(claim);
    expect(await cdiSpecs()).toEqual([]);
    expect(await driverOf(pci)).toBe("igbvf");
  });

  it("binds a VF to vfio-pci (its /dev/vfio group appears) and gives it back to igbvf", async () => {
    const claim = await allocate(vfioClass);
    const published = await publishedDevices();
    const pci = await prepare(claim);
    expect(await driverOf(pci)).toBe("vfio-pci");
    const group = (await guest.sh(`basename $(readlink ${sysfsDevice(pci)}/iommu_group)`)).trim();
    expect(await guest.sh(`stat -c %F /dev/vfio/${group}`)).toBe("character special file\n");
    expect(await netdevsOf(pci)).toEqual([]);
    const spec = JSON.parse(await guest.read(`${CDI_ROOT}/${DRIVER}-vf_${claim.uid}.json`)) as {
      devices: { containerEdits: { deviceNodes?: { path: string }[] } }[];
    };
    const nodes = spec.devices.flatMap((device) => device.containerEdits.deviceNodes ?? []);
    expect(nodes.map((node) => node.path)).toEqual(
      expect.arrayContaining(["/dev/vfio/vfio", `/dev/vfio/${group}`]),
    );

    await unprepare(claim);
    expect(await driverOf(pci)).toBe("igbvf");
    expect(await guest.read(`${sysfsDevice(pci)}/driver_override`)).toBe("(null)");
    expect(await netdevsOf(pci)).toHaveLength(1);
    expect(await cdiSpecs()).toEqual([]);
    // igbvf makes up a new MAC at every probe (the PF set none): the device is the same.
    expect(await publishedDevices()).toEqual(published);
  });

  it("is killed between the vfio-pci bind steps and, restarted, leaves no VF on vfio-pci and no driver_override", async () => {
    const claim = await allocate(vfioClass);
    const { code } = await guest.stop("daemon");
    expect(code).toBe(0);
    await startDaemon({ DRA_SRIOV_FAULT: "after-driver-bound" });
    await expect(kubelet.prepare(draEndpoint, "v1", [wireOf(claim)], 60_000)).rejects.toThrow();
    // The fault kills the process as a crash would; stop() reports how it ended.
    expect((await guest.stop("daemon")).signal).toBe("SIGKILL");
    await startDaemon();
    for (const pci of VF_ADDRESSES) {
      expect({ pci, driver: await driverOf(pci) }).toEqual({ pci, driver: "igbvf" });
      expect({ pci, override: await guest.read(`${sysfsDevice(pci)}/driver_override`) }).toEqual({
        pci,
        override: "(null)",
      });
    }
    expect(await cdiSpecs()).toEqual([]);
    const pci = await prepare(claim);
    expect(await driverOf(pci)).toBe("vfio-pci");
    await unprepare(claim);
    expect(await driverOf(pci)).toBe("igbvf");
  });

  /** The device names of this node's published slices. */
  const publishedDevices = async () =>
    (
      await listNodeSlices<SliceList["items"][number] & { metadata?: object }>(
        client,
        DRIVER,
        nodeName,
      )
    )
      .flatMap((slice) => slice.spec.devices)
      .map((device) => device.name);

  /** Sets the PF's VF count as an operator does: through 0, as the kernel demands. */
  async function setNumVfs(count: number): Promise<void> {
    const file = `${sysfsDevice(PF_ADDRESS)}/sriov_numvfs`;
    await guest.sh(`echo 0 > ${file}; echo ${count} > ${file}`);
  }

  it("refuses sriov_numvfs changes the way the kernel does: not from one count to another, not past totalvfs", async () => {
    const file = `${sysfsDevice(PF_ADDRESS)}/sriov_numvfs`;
    expect((await guest.exec(["sh", "-c", `echo 3 > ${file}`])).code).not.toBe(0);
    expect((await guest.exec(["sh", "-c", `echo 8 > ${file}`])).code).not.toBe(0);
    expect(await guest.read(file)).toBe(String(NUM_VFS));
  });

  it("lets a prepared vfio-pci VF vanish with sriov_numvfs: unprepare cleans up, the slice drops it and takes it back", async () => {
    const vf3 = VF_ADDRESSES[3]!;
    const claim = await allocate(vfioClass, 3);
    expect(await prepare(claim)).toBe(vf3);
    expect(await driverOf(vf3)).toBe("vfio-pci");
    // The kernel removes a VF on vfio-pci that no process holds open (it took 2 s here).
    await setNumVfs(3);
    expect((await guest.exec(["test", "-e", sysfsDevice(vf3)])).code).not.toBe(0);
    await waitFor("the slice without the vanished VF", async () =>
      (await publishedDevices()).includes("0000-01-10-6") ? undefined : true,
    );
    await unprepare(claim);
    expect(await cdiSpecs()).toEqual([]);

    await setNumVfs(NUM_VFS);
    expect(await driverOf(vf3)).toBe("igbvf");
    expect(await guest.read(`${sysfsDevice(vf3)}/driver_override`)).toBe("(null)");
    await waitFor("the slice with the VF again", async () =>
      (await publishedDevices()).includes("0000-01-10-6") ? true : undefined,
    );
  });

  it("gives a VF unbound from vfio-pci behind its back to igbvf on unprepare", async () => {
    const claim = await allocate(vfioClass);
    const pci = await prepare(claim);
    await guest.sh(`echo ${pci} > ${sysfsDevice(pci)}/driver/unbind`);
    expect(await driverOf(pci)).toBe("");
    await unprepare(claim);
    expect(await driverOf(pci)).toBe("igbvf");
    expect(await guest.read(`${sysfsDevice(pci)}/driver_override`)).toBe("(null)");
    expect(await netdevsOf(pci)).toHaveLength(1);
  });

  it("taints the VFs of a PF whose cable is cut and tells the kubelet, with a message; both recover when it returns", async () => {
    const taintsOf = async () =>
      new Map(
        (
          await listNodeSlices<
            SliceList["items"][number] & { metadata?: object } & {
              spec: { devices: { name: string; taints?: { value: string }[] }[] };
            }
          >(client, DRIVER, nodeName)
        )
          .flatMap((slice) => slice.spec.devices)
          .map((device) => [device.name, (device.taints ?? []).map((taint) => taint.value)]),
      );
    const devices = VF_ADDRESSES.map((pci) => pci.replace(/[:.]/g, "-"));
    const watch = kubelet.watchHealth(draEndpoint, "v1");
    try {
      const seen = (health: string) => () =>
        devices.every((device) => watch.deviceHealth(nodeName, device).health === health);
      await watch.until(seen("HEALTHY"), 60_000);

      const cut = Date.now();
      await guest.setLink(false);
      await watch.until(seen("UNHEALTHY"), 60_000);
      const toKubelet = Date.now() - cut;
      expect(watch.deviceHealth(nodeName, devices[0]!).message).toMatch(
        /PF eth0 \(0000:01:00\.0\) has no link \(carrier 0, operstate down\)/,
      );
      await waitFor("taints on the VFs", async () => {
        const taints = await taintsOf();
        return devices.every((device) => taints.get(device)?.[0] === "PFLinkDown")
          ? true
          : undefined;
      });
      const toSlices = Date.now() - cut;
      process.stderr.write(
        `real-kernel: cable cut → kubelet's view Unhealthy ${toKubelet} ms, slices tainted ${toSlices} ms\n`,
      );

      await guest.setLink(true);
      await watch.until(seen("HEALTHY"), 60_000);
      await waitFor(
        "the taints to go",
        async () =>
          [...(await taintsOf()).values()].every((t) => t.length === 0) ? true : undefined,
        60_000,
      );
    } finally {
      watch.cancel();
    }
  });
});
