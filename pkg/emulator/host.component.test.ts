import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { HostPaths } from "../host/paths.js";
import type { BuildSummary } from "./host.js";
import { MARKER_FILE, buildEmulatedHost, destroyEmulatedHost, resolveHostRoot } from "./host.js";
import type { BuiltinProfileName } from "./profiles.js";
import { builtinProfiles } from "./profiles.js";

const isRoot = process.getuid?.() === 0;
/** The scale profile has 2048 VFs; the machine may be busy. */
const SCALE_TIMEOUT_MS = 120_000;
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-host-"));
  tempDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const read = (file: string) => fs.readFileSync(file, "utf8");
const linkName = (link: string) => path.basename(fs.readlinkSync(link));

/** Every entry below `dir`: relative path, and the link text for symlinks. */
function walk(dir: string, prefix = ""): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) return [`${relative} -> ${fs.readlinkSync(full)}`];
    if (entry.isDirectory()) return [`${relative}/`, ...walk(full, relative)];
    return [relative];
  });
}

describe.each(Object.keys(builtinProfiles) as BuiltinProfileName[])("builtin %s", (name) => {
  const profile = builtinProfiles[name];
  // One build per profile: the scale profile's 2048 VFs are ~50,000 files and links.
  let parent: string;
  let summary: BuildSummary;
  beforeAll(async () => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), "emulator-host-"));
    summary = await buildEmulatedHost({ root: path.join(parent, "host"), profile });
  }, SCALE_TIMEOUT_MS);
  afterAll(() => fs.rmSync(parent, { recursive: true, force: true }), SCALE_TIMEOUT_MS);

  it(
    "builds a tree whose links lead where a kernel's would",
    () => {
      const paths = new HostPaths({ root: summary.root });
      const devicesDir = paths.at("/sys/devices");
      for (const pf of summary.inventory.pfs) {
        const pfDir = fs.realpathSync(paths.pciDevice(pf.pciAddress));
        expect(path.relative(devicesDir, pfDir).split(path.sep)[0]).toBe(pf.pcieRoot);
        expect(linkName(path.join(pfDir, "driver"))).toBe(pf.driver);
        expect(fs.realpathSync(path.join(pfDir, "driver"))).toBe(paths.pciDriver(pf.driver));
        expect(read(path.join(pfDir, "sriov_numvfs"))).toBe(`${pf.numVfs}\n`);
        expect(fs.realpathSync(paths.at(`/sys/class/net/${pf.netdev}`))).toBe(
          path.join(pfDir, "net", pf.netdev),
        );
        // One comparison for all VFs: the scale profile has 2048.
        const observed = pf.vfs.map((vf) => {
          const vfDir = fs.realpathSync(paths.pciDevice(vf.pciAddress));
          const resolve = (link: string) => fs.realpathSync(path.join(vfDir, link));
          const group = path.join(paths.iommuGroups, String(vf.iommuGroup));
          return {
            // PF and VFs are siblings below the same root port.
            parent: path.dirname(vfDir),
            virtfn: fs.realpathSync(path.join(pfDir, `virtfn${vf.vfID}`)) === vfDir,
            physfn: resolve("physfn"),
            driver: resolve("driver"),
            driverLink:
              fs.realpathSync(path.join(paths.pciDriver(vf.driver), vf.pciAddress)) === vfDir,
            iommuGroup: resolve("iommu_group"),
            groupDevices: fs.readdirSync(path.join(group, "devices")),
            groupLink: fs.realpathSync(path.join(group, "devices", vf.pciAddress)) === vfDir,
            subsystem: resolve("subsystem"),
            classNet:
              vf.netdev &&
              fs.realpathSync(paths.at(`/sys/class/net/${vf.netdev}`)) ===
                resolve(`net/${vf.netdev}`),
            netdevDevice: vf.netdev && linkName(path.join(vfDir, "net", vf.netdev, "device")),
            hasNet: fs.existsSync(path.join(vfDir, "net")),
            vfioNode: fs.existsSync(path.join(paths.devVfio, String(vf.iommuGroup))),
          };
        });
        expect(observed).toEqual(
          pf.vfs.map((vf) => ({
            parent: path.dirname(pfDir),
            virtfn: true,
            physfn: pfDir,
            driver: paths.pciDriver(vf.driver),
            driverLink: true,
            iommuGroup: path.join(paths.iommuGroups, String(vf.iommuGroup)),
            groupDevices: [vf.pciAddress],
            groupLink: true,
            subsystem: paths.at("/sys/bus/pci"),
            classNet: vf.netdev && true,
            netdevDevice: vf.netdev && vf.pciAddress,
            hasNet: vf.netdev !== undefined,
            vfioNode: vf.driver === "vfio-pci",
          })),
        );
      }
      const other = profile.otherDevices[0]!;
      const otherDir = paths.pciDevice(other.pciAddress);
      expect(fs.existsSync(path.join(otherDir, "sriov_totalvfs"))).toBe(false);
      expect(linkName(path.join(otherDir, "driver"))).toBe(other.driver);
    },
    SCALE_TIMEOUT_MS,
  );

  it(
    "uses only relative links, so the tree still resolves after it moves",
    () => {
      const { root } = summary;
      const links = walk(root).filter((entry) => entry.includes(" -> "));
      expect(links.filter((link) => link.split(" -> ")[1]!.startsWith("/"))).toEqual([]);
      const moved = `${root}-moved`;
      fs.renameSync(root, moved);
      // Moved back whatever happens: the other tests of this profile share the tree.
      onTestFinished(() => fs.renameSync(moved, root));
      const dangling = links
        .map((link) => link.split(" -> ")[0]!)
        .filter((link) => !fs.existsSync(path.join(moved, link)));
      expect(dangling).toEqual([]);
    },
    SCALE_TIMEOUT_MS,
  );
});

describe("tree contents", () => {
  it("prints attributes as the kernel does", async () => {
    const { root } = await buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.x710 });
    const device = (address: string, file: string) =>
      read(path.join(root, "sys/bus/pci/devices", address, file));
    expect(device("0000:3b:00.0", "vendor")).toBe("0x8086\n");
    expect(device("0000:3b:00.0", "device")).toBe("0x1572\n");
    expect(device("0000:3b:00.0", "class")).toBe("0x020000\n");
    expect(device("0000:3b:00.0", "numa_node")).toBe("0\n");
    expect(device("0000:3b:00.0", "sriov_totalvfs")).toBe("64\n");
    expect(device("0000:3b:00.1", "sriov_offset")).toBe("79\n");
    expect(device("0000:3b:00.0", "sriov_stride")).toBe("1\n");
    expect(device("0000:3b:00.0", "sriov_vf_device")).toBe("154c\n");
    expect(device("0000:3b:00.0", "net/ens1f0/type")).toBe("1\n");
    expect(device("0000:3b:02.3", "device")).toBe("0x154c\n");
    expect(device("0000:3b:02.3", "driver_override")).toBe("(null)\n");
    expect(device("0000:3b:02.3", "net/ens1f0v3/address")).toBe("02:ed:00:00:3b:13\n");
    expect(device("0000:3b:02.3", "net/ens1f0v3/operstate")).toBe("down\n");
    expect(device("0000:3b:0a.7", "net/ens1f1v7/operstate")).toBe("up\n");
    expect(device("0000:3a:00.0", "class")).toBe("0x060000\n");
    expect(fs.existsSync(path.join(root, "sys/bus/pci/devices/0000:3a:00.0/driver"))).toBe(false);
    expect(device("0000:3a:02.0", "class")).toBe("0x060400\n");
    expect(linkName(path.join(root, "sys/bus/pci/devices/0000:3b:00.0/driver"))).toBe("i40e");
    expect(fs.existsSync(path.join(root, "sys/bus/pci/devices/0000:3b:02.3/sriov_numvfs"))).toBe(
      false,
    );
    for (const driver of ["i40e", "iavf", "vfio-pci", "e1000e"]) {
      expect(read(path.join(root, "sys/bus/pci/drivers", driver, "bind"))).toBe("");
      expect(read(path.join(root, "sys/bus/pci/drivers", driver, "unbind"))).toBe("");
    }
    expect(read(path.join(root, "sys/bus/pci/drivers_probe"))).toBe("");
    expect(read(path.join(root, "proc/net/route"))).toMatch(/\nens1f1v7\t000112C6\t/);
    expect(read(path.join(root, "proc/net/if_inet6"))).toContain(" 00 80 ens1f1v7\n");
    expect(read(path.join(root, "proc/net/ipv6_route"))).toContain(" ens1f1v7\n");
    expect(read(path.join(root, "proc/sys/kernel/random/boot_id"))).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/,
    );
  });

  it("makes device nodes (character devices 1:3 as root)", async () => {
    const { root } = await buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.x710 });
    for (const node of ["dev/vfio/vfio", "dev/vfio/20", "dev/net/tun", "dev/vhost-net"]) {
      const stat = fs.statSync(path.join(root, node));
      if (isRoot) {
        expect(stat.isCharacterDevice(), node).toBe(true);
        expect([Math.floor(stat.rdev / 256), stat.rdev % 256]).toEqual([1, 3]);
      } else {
        expect(stat.isFile(), node).toBe(true);
      }
    }
    expect(fs.readdirSync(path.join(root, "dev/vfio")).sort()).toEqual(["20", "vfio"]);
  });

  it("gives every PCI function the identity files, resources and modes a kernel has", async () => {
    const { root } = await buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.x710 });
    const dir = (address: string) => path.join(root, "sys/bus/pci/devices", address);
    const pf = dir("0000:3b:00.0");
    const vf = dir("0000:3b:02.3");
    expect(read(path.join(pf, "modalias"))).toBe(
      "pci:v00008086d00001572sv00008086sd00000000bc02sc00i00\n",
    );
    expect(read(path.join(vf, "modalias"))).toBe(
      "pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00\n",
    );
    expect(read(path.join(pf, "revision"))).toBe("0x01\n");
    expect(read(path.join(pf, "subsystem_vendor"))).toBe("0x8086\n");
    expect(read(path.join(pf, "subsystem_device"))).toBe("0x0000\n");
    expect(read(path.join(pf, "local_cpulist"))).toBe("0-15\n");
    const config = fs.readFileSync(path.join(vf, "config"));
    expect(config).toHaveLength(4096);
    expect([config.readUInt16LE(0), config.readUInt16LE(2), config[0x0b]]).toEqual([
      0x8086, 0x154c, 0x02,
    ]);
    const resource = read(path.join(pf, "resource")).trimEnd().split("\n");
    expect(resource).toHaveLength(13);
    expect(resource[0]).toMatch(/^0x[0-9a-f]{16} 0x[0-9a-f]{16} 0x0000000000140204$/);
    expect(
      read(path.join(root, "sys/bus/pci/devices/0000:3a:02.0/resource")).split("\n"),
    ).toHaveLength(18);
    expect(read(path.join(vf, "uevent"))).toBe(
      [
        "DRIVER=iavf",
        "PCI_CLASS=20000",
        "PCI_ID=8086:154C",
        "PCI_SUBSYS_ID=8086:0000",
        "PCI_SLOT_NAME=0000:3b:02.3",
        "MODALIAS=pci:v00008086d0000154Csv00008086sd00000000bc02sc00i00",
        "",
      ].join("\n"),
    );
    const mode = (file: string) => (fs.statSync(path.join(pf, file)).mode & 0o777).toString(8);
    const readOnly = [
      "vendor",
      "device",
      "class",
      "revision",
      "subsystem_vendor",
      "subsystem_device",
      "modalias",
      "resource",
      "local_cpulist",
      "sriov_totalvfs",
      "sriov_offset",
      "sriov_stride",
      "sriov_vf_device",
    ];
    const readWrite = [
      "numa_node",
      "driver_override",
      "enable",
      "config",
      "uevent",
      "sriov_numvfs",
      "sriov_drivers_autoprobe",
    ];
    expect(
      Object.fromEntries([...readOnly, ...readWrite].map((file) => [file, mode(file)])),
    ).toEqual(
      Object.fromEntries([
        ...readOnly.map((file) => [file, "444"]),
        ...readWrite.map((file) => [file, "644"]),
      ]),
    );
  });

  it("has compat/devlink/mode only below mlx5_core PFs, as only MOFED's driver makes it", async () => {
    const x710 = await buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.x710 });
    const cx6 = await buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.cx6dx });
    const mode = (root: string, netdev: string) =>
      path.join(root, "sys/class/net", netdev, "compat/devlink/mode");
    expect(fs.existsSync(mode(x710.root, "ens1f0"))).toBe(false);
    expect(fs.existsSync(path.join(x710.root, "sys/class/net/ens1f0/compat"))).toBe(false);
    expect(read(mode(cx6.root, "ens3f0np0"))).toBe("legacy\n");
    expect(fs.existsSync(mode(cx6.root, "ens3f0np0v0"))).toBe(false);
  });

  it("gives InfiniBand PFs their class and type, RDMA devices to mlx5 PFs and VFs", async () => {
    const infiniband = {
      pfs: [{ ...builtinProfiles.cx6dx.pfs[0]!, linkType: "infiniband" as const, numVfs: 2 }],
      otherDevices: [],
    };
    const { root } = await buildEmulatedHost({ root: tempDir(), profile: infiniband });
    const pfDir = path.join(root, "sys/bus/pci/devices/0000:d8:00.0");
    expect(read(path.join(pfDir, "class"))).toBe("0x020700\n");
    expect(read(path.join(pfDir, "net/ens3f0np0/type"))).toBe("32\n");
    expect(fs.readdirSync(path.join(pfDir, "infiniband"))).toEqual(["mlx5_0"]);
    expect(fs.readdirSync(path.join(root, "sys/bus/pci/devices/0000:d8:00.3/infiniband"))).toEqual([
      "mlx5_2",
    ]);
    expect(fs.realpathSync(path.join(root, "sys/class/infiniband/mlx5_1"))).toBe(
      fs.realpathSync(path.join(root, "sys/bus/pci/devices/0000:d8:00.2/infiniband/mlx5_1")),
    );
  });
});

describe("safety", () => {
  it("refuses / and anything that resolves to it", async () => {
    await expect(buildEmulatedHost({ root: "/", profile: builtinProfiles.x710 })).rejects.toThrow(
      /refusing to use "\/" as an emulated host root/,
    );
    const toSlash = path.join(tempDir(), "slash");
    fs.symlinkSync("/", toSlash);
    await expect(
      buildEmulatedHost({ root: toSlash, profile: builtinProfiles.x710 }),
    ).rejects.toThrow(/it is the real "\/"/);
    await expect(destroyEmulatedHost(`${toSlash}/tmp/..`)).rejects.toThrow(/real "\/"/);
    expect(() => resolveHostRoot("/tmp/../")).toThrow(/real "\/"/);
  });

  it("refuses a non-empty directory that is not an emulated host and leaves it alone", async () => {
    const root = tempDir();
    fs.writeFileSync(path.join(root, "precious"), "data");
    await expect(buildEmulatedHost({ root, profile: builtinProfiles.x710 })).rejects.toThrow(
      `refusing to build an emulated host in ${fs.realpathSync(root)}: the directory is not empty and has no ${MARKER_FILE}`,
    );
    await expect(destroyEmulatedHost(root)).rejects.toThrow(/not an emulated host/);
    expect(fs.readdirSync(root)).toEqual(["precious"]);
  });

  it("rebuilds an emulated host to the same tree with a new boot id", async () => {
    const root = tempDir();
    const first = await buildEmulatedHost({ root, profile: builtinProfiles.e810 });
    const before = walk(root);
    fs.writeFileSync(path.join(root, "sys/bus/pci/devices/0000:86:01.0/driver_override"), "x\n");
    const second = await buildEmulatedHost({ root, profile: builtinProfiles.e810 });
    expect(walk(root)).toEqual(before);
    expect(read(path.join(root, "sys/bus/pci/devices/0000:86:01.0/driver_override"))).toBe(
      "(null)\n",
    );
    expect(second.bootId).not.toBe(first.bootId);
    expect(read(path.join(root, "proc/sys/kernel/random/boot_id"))).toBe(`${second.bootId}\n`);
  });

  it("destroys the whole tree, and a missing root is nothing to do", async () => {
    const root = path.join(tempDir(), "host");
    await buildEmulatedHost({ root, profile: builtinProfiles.x540 });
    await destroyEmulatedHost(root);
    expect(fs.existsSync(root)).toBe(false);
    await expect(destroyEmulatedHost(root)).resolves.toBeUndefined();
  });

  it.skipIf(isRoot)("asks for root for --netdevs", async () => {
    await expect(
      buildEmulatedHost({ root: tempDir(), profile: builtinProfiles.x710, netdevs: true }),
    ).rejects.toThrow(/needs root/);
  });
});
