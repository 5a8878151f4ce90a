import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HostPaths } from "../host/paths.js";
import { buildEmulatedHost } from "./host.js";
import type { EmulatedKernelOptions } from "./kernel.js";
import { EmulatedKernel, numVfsRefusal, parseControlWrite } from "./kernel.js";
import type { ExpectedInventory } from "./layout.js";
import type { EmulatorLogger } from "./logger.js";
import type { HostProfile } from "./profile.js";
import { builtinProfiles } from "./profiles.js";

interface LogLine {
  level: string;
  fields: object;
  message: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A built host with a running kernel, torn down after the test. */
async function serve(
  profile: HostProfile = builtinProfiles.x710,
  options: Pick<EmulatedKernelOptions, "probeDurationMs"> = {},
) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-kernel-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  const { inventory } = await buildEmulatedHost({ root, profile });
  const logs: LogLine[] = [];
  const record =
    (level: string) =>
    (fields: object, message: string): void => {
      logs.push({ level, fields, message });
    };
  const logger: EmulatorLogger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
  };
  const kernel = new EmulatedKernel({ root, bindDelayMs: 2, logger, ...options });
  await kernel.start();
  cleanups.push(() => kernel.stop());
  return { root, kernel, logs, inventory, paths: new HostPaths({ root }) };
}

type Host = Awaited<ReturnType<typeof serve>>;

function driverOf(host: Host, address: string): string | undefined {
  const link = path.join(host.paths.pciDevice(address), "driver");
  return fs.existsSync(link) ? path.basename(fs.readlinkSync(link)) : undefined;
}

function vfOf(inventory: ExpectedInventory, pf: number, vf: number) {
  return inventory.pfs[pf]!.vfs[vf]!;
}

const write = (file: string, text: string) => fs.promises.writeFile(file, text);
const waitFor = (assertion: () => void) => vi.waitFor(assertion, { timeout: 5000, interval: 5 });

/** What a driver does to move a VF to vfio-pci: override, unbind, wait, probe, wait. */
async function moveToVfio(host: Host, address: string, from: string): Promise<void> {
  await write(path.join(host.paths.pciDevice(address), "driver_override"), "vfio-pci\n");
  await write(path.join(host.paths.pciDriver(from), "unbind"), `${address}\n`);
  await waitFor(() => expect(driverOf(host, address)).toBeUndefined());
  await write(host.paths.pciDriversProbe, address);
  await waitFor(() => expect(driverOf(host, address)).toBe("vfio-pci"));
}

describe("EmulatedKernel", () => {
  it("serves bind, unbind and drivers_probe as FIFOs and restores regular files on stop", async () => {
    const host = await serve();
    const controls = [
      host.paths.pciDriversProbe,
      ...["iavf", "i40e", "vfio-pci", "e1000e", "pcieport"].flatMap((driver) => [
        path.join(host.paths.pciDriver(driver), "bind"),
        path.join(host.paths.pciDriver(driver), "unbind"),
      ]),
    ];
    for (const file of controls) expect(fs.statSync(file).isFIFO(), file).toBe(true);
    await host.kernel.stop();
    for (const file of controls) {
      expect(fs.statSync(file).isFile(), file).toBe(true);
      expect(fs.readFileSync(file, "utf8")).toBe("");
    }
    // Nobody answers now: the write lands in a plain file that nobody reads.
    const vf = vfOf(host.inventory, 0, 0);
    const unbind = path.join(host.paths.pciDriver("iavf"), "unbind");
    await write(unbind, vf.pciAddress);
    expect(fs.readFileSync(unbind, "utf8")).toBe(vf.pciAddress);
    expect(driverOf(host, vf.pciAddress)).toBe("iavf");
  });

  it("moves a VF to vfio-pci and back to its native driver", async () => {
    const host = await serve();
    const vf = vfOf(host.inventory, 0, 1);
    const vfDir = host.paths.pciDevice(vf.pciAddress);
    const vfioNode = path.join(host.paths.devVfio, String(vf.iommuGroup));
    const classNet = path.join(host.paths.classNet, "ens1f0v1");

    await write(path.join(vfDir, "driver_override"), "vfio-pci\n");
    await write(path.join(host.paths.pciDriver("iavf"), "unbind"), `${vf.pciAddress}\n`);
    await waitFor(() => expect(driverOf(host, vf.pciAddress)).toBeUndefined());
    expect(fs.existsSync(path.join(vfDir, "net"))).toBe(false);
    expect(fs.existsSync(classNet)).toBe(false);
    expect(fs.existsSync(path.join(host.paths.pciDriver("iavf"), vf.pciAddress))).toBe(false);

    await write(host.paths.pciDriversProbe, `${vf.pciAddress}\n`);
    await waitFor(() => expect(driverOf(host, vf.pciAddress)).toBe("vfio-pci"));
    expect(fs.existsSync(vfioNode)).toBe(true);
    expect(fs.realpathSync(path.join(host.paths.pciDriver("vfio-pci"), vf.pciAddress))).toBe(
      fs.realpathSync(vfDir),
    );
    expect(fs.existsSync(path.join(vfDir, "net"))).toBe(false);

    await write(path.join(host.paths.pciDriver("vfio-pci"), "unbind"), vf.pciAddress);
    await waitFor(() => expect(driverOf(host, vf.pciAddress)).toBeUndefined());
    expect(fs.existsSync(vfioNode)).toBe(false);
    await write(path.join(vfDir, "driver_override"), "\n");
    await write(path.join(host.paths.pciDriver("iavf"), "bind"), vf.pciAddress);
    await waitFor(() => expect(driverOf(host, vf.pciAddress)).toBe("iavf"));
    expect(fs.readFileSync(path.join(vfDir, "net/ens1f0v1/address"), "utf8")).toBe(
      "02:ed:00:00:3b:11\n",
    );
    expect(fs.realpathSync(classNet)).toBe(fs.realpathSync(path.join(vfDir, "net/ens1f0v1")));
    expect(fs.readFileSync(path.join(vfDir, "driver_override"), "utf8")).toBe("(null)\n");
  });

  it("shows a driver_override cleared with a newline as (null), also on VFs created later", async () => {
    const host = await serve();
    const pf = host.inventory.pfs[0]!;
    const override = (address: string) =>
      path.join(host.paths.pciDevice(address), "driver_override");
    const vf = pf.vfs[0]!.pciAddress;
    await write(override(vf), "vfio-pci\n");
    await write(override(vf), "\n");
    await waitFor(() => expect(fs.readFileSync(override(vf), "utf8")).toBe("(null)\n"));

    const numVfs = path.join(host.paths.pciDevice(pf.pciAddress), "sriov_numvfs");
    await write(numVfs, "0\n");
    await waitFor(() => expect(fs.existsSync(host.paths.pciDevice(vf))).toBe(false));
    await write(numVfs, "2\n");
    await waitFor(() => expect(driverOf(host, vf)).toBe("iavf"));
    await write(override(vf), "\n");
    await waitFor(() => expect(fs.readFileSync(override(vf), "utf8")).toBe("(null)\n"));
  });

  it("holds a device for its probe: the link comes at the end, operations on it wait, others go on", async () => {
    const host = await serve(builtinProfiles.x710, { probeDurationMs: 1000 });
    const [slow, other] = [vfOf(host.inventory, 0, 0), vfOf(host.inventory, 0, 1)];
    const vfioUnbind = path.join(host.paths.pciDriver("vfio-pci"), "unbind");
    await write(path.join(host.paths.pciDevice(slow.pciAddress), "driver_override"), "vfio-pci");
    await write(path.join(host.paths.pciDriver("iavf"), "unbind"), slow.pciAddress);
    await waitFor(() => expect(driverOf(host, slow.pciAddress)).toBeUndefined());
    await write(host.paths.pciDriversProbe, slow.pciAddress);
    const logged = (message: string, address: string) =>
      host.logs.some(
        (line) => line.message === message && JSON.stringify(line.fields).includes(address),
      );
    await waitFor(() => expect(logged("probing", slow.pciAddress)).toBe(true));
    // Written during the probe: waits for it, as the kernel's unbind waits for the device lock.
    await write(vfioUnbind, slow.pciAddress);
    await write(path.join(host.paths.pciDriver("iavf"), "unbind"), other.pciAddress);
    await waitFor(() => expect(driverOf(host, other.pciAddress)).toBeUndefined());
    expect(logged("probed and bound", slow.pciAddress)).toBe(false);
    expect(driverOf(host, slow.pciAddress)).toBeUndefined();
    await waitFor(() => expect(logged("probed and bound", slow.pciAddress)).toBe(true));
    await waitFor(() => expect(driverOf(host, slow.pciAddress)).toBeUndefined());
    expect(fs.existsSync(path.join(host.paths.devVfio, String(slow.iommuGroup)))).toBe(false);
    expect(host.logs.filter((line) => line.level === "warn")).toEqual([]);
  });

  it("keeps a shared IOMMU group's VFIO node while a device of the group is on vfio-pci", async () => {
    const [vf0, vf1] = ["0000:3b:02.0", "0000:3b:02.1"];
    const host = await serve({ ...builtinProfiles.x710, sharedIommuGroups: [[vf0, vf1]] });
    const group = vfOf(host.inventory, 0, 0).iommuGroup;
    expect(vfOf(host.inventory, 0, 1).iommuGroup).toBe(group);
    expect(fs.readdirSync(path.join(host.paths.iommuGroups, String(group), "devices"))).toEqual([
      vf0,
      vf1,
    ]);
    const node = path.join(host.paths.devVfio, String(group));
    await moveToVfio(host, vf0, "iavf");
    await moveToVfio(host, vf1, "iavf");
    await write(path.join(host.paths.pciDriver("vfio-pci"), "unbind"), vf0);
    await waitFor(() => expect(driverOf(host, vf0)).toBeUndefined());
    expect(fs.existsSync(node)).toBe(true);
    await write(path.join(host.paths.pciDriver("vfio-pci"), "unbind"), vf1);
    await waitFor(() => expect(fs.existsSync(node)).toBe(false));
  });

  it("binds only the driver an override names", async () => {
    const host = await serve();
    const vf = vfOf(host.inventory, 0, 2);
    await moveToVfio(host, vf.pciAddress, "iavf");
    await write(path.join(host.paths.pciDriver("vfio-pci"), "unbind"), vf.pciAddress);
    await waitFor(() => expect(driverOf(host, vf.pciAddress)).toBeUndefined());
    // driver_override still says vfio-pci: the native driver may not take the VF.
    await write(path.join(host.paths.pciDriver("iavf"), "bind"), vf.pciAddress);
    await waitFor(() =>
      expect(host.logs).toContainEqual(
        expect.objectContaining({ level: "warn", message: expect.stringMatching(/ENODEV/) }),
      ),
    );
    expect(driverOf(host, vf.pciAddress)).toBeUndefined();
  });

  it("lands 32 concurrent rebinds written through the shared FIFOs", async () => {
    const profile = {
      ...builtinProfiles.x710,
      pfs: [{ ...builtinProfiles.x710.pfs[0]!, numVfs: 32 }],
    };
    const host = await serve(profile);
    const vfs = host.inventory.pfs[0]!.vfs;
    expect(vfs).toHaveLength(32);
    await Promise.all(vfs.map((vf) => moveToVfio(host, vf.pciAddress, "iavf")));
    expect(vfs.map((vf) => driverOf(host, vf.pciAddress))).toEqual(vfs.map(() => "vfio-pci"));
    expect(fs.readdirSync(host.paths.devVfio).sort()).toEqual(
      ["vfio", ...vfs.map((vf) => String(vf.iommuGroup))].sort(),
    );
    // Back again, all unbinds written at once.
    await Promise.all(
      vfs.map((vf) => write(path.join(host.paths.pciDriver("vfio-pci"), "unbind"), vf.pciAddress)),
    );
    await waitFor(() => expect(fs.readdirSync(host.paths.devVfio)).toEqual(["vfio"]));
  });

  it("creates and removes VFs through sriov_numvfs: 8 → 0 → 4", async () => {
    const host = await serve();
    const pf = host.inventory.pfs[1]!;
    const pfDir = host.paths.pciDevice(pf.pciAddress);
    const numVfs = path.join(pfDir, "sriov_numvfs");
    const virtfns = () => fs.readdirSync(pfDir).filter((name) => name.startsWith("virtfn"));
    const vfioVf = pf.vfs[6]!;
    expect(fs.existsSync(path.join(host.paths.devVfio, String(vfioVf.iommuGroup)))).toBe(true);

    await write(numVfs, "0");
    await waitFor(() => expect(virtfns()).toEqual([]));
    for (const vf of pf.vfs) {
      expect(fs.existsSync(host.paths.pciDevice(vf.pciAddress)), vf.pciAddress).toBe(false);
      expect(fs.existsSync(path.join(host.paths.iommuGroups, String(vf.iommuGroup)))).toBe(false);
    }
    expect(
      fs.readdirSync(host.paths.classNet).filter((name) => name.startsWith("ens1f1v")),
    ).toEqual([]);
    expect(fs.readdirSync(host.paths.pciDriver("vfio-pci"))).toEqual(["bind", "unbind"]);
    expect(fs.existsSync(path.join(host.paths.devVfio, String(vfioVf.iommuGroup)))).toBe(false);
    expect(fs.readFileSync(numVfs, "utf8")).toBe("0\n");

    await write(numVfs, "4\n");
    await waitFor(() => expect(virtfns()).toHaveLength(4));
    for (const vf of pf.vfs.slice(0, 4)) {
      const vfDir = host.paths.pciDevice(vf.pciAddress);
      expect(driverOf(host, vf.pciAddress)).toBe("iavf");
      // The kernel hands out the lowest free group numbers: the ones just freed.
      expect(path.basename(fs.readlinkSync(path.join(vfDir, "iommu_group")))).toBe(
        String(vf.iommuGroup),
      );
      expect(fs.existsSync(path.join(vfDir, "net", `ens1f1v${vf.vfID}`))).toBe(true);
    }
    expect(fs.existsSync(host.paths.pciDevice(pf.vfs[4]!.pciAddress))).toBe(false);
    expect(fs.readFileSync(numVfs, "utf8")).toBe("4\n");
  });

  it("tears a PF's VFs down when its driver is unbound, as a driver's remove disables SR-IOV", async () => {
    const host = await serve();
    const pf = host.inventory.pfs[0]!;
    const pfDir = host.paths.pciDevice(pf.pciAddress);
    const virtfns = () => fs.readdirSync(pfDir).filter((name) => name.startsWith("virtfn"));
    expect(virtfns()).toHaveLength(8);
    await write(path.join(host.paths.pciDriver("i40e"), "unbind"), pf.pciAddress);
    await waitFor(() => expect(driverOf(host, pf.pciAddress)).toBeUndefined());
    expect(virtfns()).toEqual([]);
    for (const vf of pf.vfs) expect(fs.existsSync(host.paths.pciDevice(vf.pciAddress))).toBe(false);
    expect(fs.readFileSync(path.join(pfDir, "sriov_numvfs"), "utf8")).toBe("0\n");
    // Bound again, the PF comes back without VFs: nobody wrote sriov_numvfs.
    await write(host.paths.pciDriversProbe, pf.pciAddress);
    await waitFor(() => expect(driverOf(host, pf.pciAddress)).toBe("i40e"));
    expect(virtfns()).toEqual([]);
  });

  it("refuses changing a non-zero VF count (EBUSY) and counts above totalvfs (ERANGE)", async () => {
    const host = await serve();
    const pf = host.inventory.pfs[0]!;
    const numVfs = path.join(host.paths.pciDevice(pf.pciAddress), "sriov_numvfs");
    await write(numVfs, "4\n");
    await waitFor(() => expect(fs.readFileSync(numVfs, "utf8")).toBe("8\n"));
    expect(host.logs).toContainEqual(
      expect.objectContaining({ level: "warn", message: expect.stringMatching(/EBUSY/) }),
    );
    expect(fs.existsSync(host.paths.pciDevice(pf.vfs[7]!.pciAddress))).toBe(true);

    await write(numVfs, "0\n");
    await waitFor(() =>
      expect(fs.existsSync(host.paths.pciDevice(pf.vfs[0]!.pciAddress))).toBe(false),
    );
    await write(numVfs, "65\n");
    await waitFor(() => expect(fs.readFileSync(numVfs, "utf8")).toBe("0\n"));
    expect(host.logs).toContainEqual(
      expect.objectContaining({ level: "warn", message: expect.stringMatching(/ERANGE/) }),
    );
  });

  it("logs and ignores garbage and unknown devices", async () => {
    const host = await serve();
    const vf = vfOf(host.inventory, 0, 0);
    await write(path.join(host.paths.pciDriver("iavf"), "unbind"), "hello world\n");
    await write(path.join(host.paths.pciDriver("iavf"), "unbind"), "0000:99:00.0\n");
    await write(host.paths.pciDriversProbe, "0000:3b:02.0 junk");
    await waitFor(() => expect(host.logs.filter((line) => line.level === "warn")).toHaveLength(4));
    expect(host.logs.map((line) => line.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/not a PCI address \(EINVAL\)/),
        expect.stringMatching(/no such device \(ENODEV\)/),
      ]),
    );
    expect(driverOf(host, vf.pciAddress)).toBe("iavf");
  });

  it("removes and recreates RDMA devices with the mlx5 driver", async () => {
    const host = await serve(builtinProfiles.cx6dx);
    const vf = vfOf(host.inventory, 0, 0);
    const ibDir = path.join(host.paths.pciDevice(vf.pciAddress), "infiniband");
    const [name] = fs.readdirSync(ibDir);
    expect(name).toMatch(/^mlx5_\d+$/);
    await write(path.join(host.paths.pciDriver("mlx5_core"), "unbind"), vf.pciAddress);
    await waitFor(() => expect(fs.existsSync(ibDir)).toBe(false));
    expect(fs.existsSync(host.paths.at(`/sys/class/infiniband/${name}`))).toBe(false);
    await write(host.paths.pciDriversProbe, vf.pciAddress);
    await waitFor(() => expect(fs.readdirSync(ibDir)).toEqual([name]));
  });

  it("allows one kernel per root and only on an emulated host", async () => {
    const host = await serve();
    await expect(new EmulatedKernel({ root: host.root }).start()).rejects.toThrow(/already serves/);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-kernel-"));
    cleanups.push(() => fs.rmSync(empty, { recursive: true }));
    await expect(new EmulatedKernel({ root: empty }).start()).rejects.toThrow(
      /is not an emulated host/,
    );
  });
});

describe("parseControlWrite", () => {
  it("splits addresses, also when writes without newlines arrive together", () => {
    expect(parseControlWrite("0000:3b:02.0\n0000:3b:02.10000:3b:02.2\n")).toEqual({
      addresses: ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2"],
      invalid: [],
    });
    expect(parseControlWrite("0000:3b:02.0x\n3b:02.0\n\n")).toEqual({
      addresses: [],
      invalid: ["0000:3b:02.0x", "3b:02.0"],
    });
  });
});

describe("numVfsRefusal", () => {
  const state = { current: 8, totalVfs: 64, pfBound: true };
  it.each([
    ["8", undefined],
    ["0", undefined],
    ["4", /EBUSY/],
    ["x", /EINVAL/],
    ["-1", /EINVAL/],
  ])("%s with 8 VFs", (written, refusal) => {
    const result = numVfsRefusal(written, state);
    if (refusal === undefined) expect(result).toBeUndefined();
    else expect(result).toMatch(refusal);
  });

  it("needs a bound PF and a count within totalvfs", () => {
    expect(numVfsRefusal("4", { ...state, current: 0, pfBound: false })).toMatch(/ENOENT/);
    expect(numVfsRefusal("65", { ...state, current: 0 })).toMatch(/ERANGE/);
    expect(numVfsRefusal("64", { ...state, current: 0 })).toBeUndefined();
  });
});
