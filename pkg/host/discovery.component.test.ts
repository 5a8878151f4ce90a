import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles, type HostProfile } from "../emulator/index.js";
import type { EswitchAnswer } from "./devlink.js";
import {
  discoverHost,
  scanHostSysfs,
  ipv4RouteDevices,
  ipv6AddressDevices,
  ipv6RouteDevices,
} from "./discovery.js";
import { HostPaths } from "./paths.js";

/** Replaces a file's content; sysfs attributes like class and vendor are read-only (0444). */
function overwrite(file: string, text: string): void {
  fs.rmSync(file);
  fs.writeFileSync(file, text);
}

describe("scanHostSysfs on emulated hosts", () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "discovery-"));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }), 60_000);

  const build = async (profile: HostProfile) =>
    (await buildEmulatedHost({ root, profile })).inventory;

  it.each(Object.keys(builtinProfiles) as (keyof typeof builtinProfiles)[])(
    "finds exactly what the %s profile's kernel shows",
    async (name) => {
      const expected = await build(builtinProfiles[name]);
      const found = scanHostSysfs(new HostPaths({ root }));
      expect(found.warnings).toEqual([]);
      const byAddress = (a: { pciAddress: string }, b: { pciAddress: string }) =>
        a.pciAddress < b.pciAddress ? -1 : 1;
      expect(found.pfs).toEqual([...expected.pfs].sort(byAddress));
      expect(found.hostUsedNetdevs).toEqual(expected.hostUsedNetdevs);
    },
    60_000, // `scale` writes 2,048 VFs' worth of sysfs
  );

  it("ignores non-SR-IOV NICs and SR-IOV devices that are not network controllers", async () => {
    await build(builtinProfiles.x710);
    const paths = new HostPaths({ root });
    overwrite(path.join(paths.pciDevice("0000:3b:00.1"), "class"), "0x010802\n"); // NVMe
    const found = scanHostSysfs(paths);
    expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
  });

  it("names the PF by its uplink's physical port name when representors sit beside it", async () => {
    await build(builtinProfiles.cx6dx);
    const netDir = path.join(new HostPaths({ root }).pciDevice("0000:d8:00.0"), "net");
    // switchdev: a VF representor (sorting before the uplink) under the PF's net/
    fs.mkdirSync(path.join(netDir, "ens3f0_0"));
    fs.writeFileSync(path.join(netDir, "ens3f0_0", "phys_port_name"), "pf0vf0\n");
    fs.writeFileSync(path.join(netDir, "ens3f0np0", "phys_port_name"), "p0\n");
    const pfNames = () => scanHostSysfs(new HostPaths({ root })).pfs.map((pf) => pf.netdev);
    expect(pfNames()).toEqual(["ens3f0np0", "ens3f1np1"]);
    // Without port names (drivers that have none) the first entry, as before.
    fs.rmSync(path.join(netDir, "ens3f0np0", "phys_port_name"));
    expect(pfNames()).toEqual(["ens3f0_0", "ens3f1np1"]);
  });

  it("tells per VF whether it has an RDMA device: none while it sits on vfio-pci", async () => {
    const cx6 = builtinProfiles.cx6dx;
    await build({ ...cx6, pfs: [{ ...cx6.pfs[0]!, numVfs: 2, vfDrivers: { 1: "vfio-pci" } }] });
    const [pf] = scanHostSysfs(new HostPaths({ root })).pfs;
    expect(pf!.rdmaCapable).toBe(true);
    expect(pf!.vfs.map((vf) => [vf.driver, vf.rdmaCapable])).toEqual([
      ["mlx5_core", true],
      ["vfio-pci", false],
    ]);
  });

  it("reads the eswitch mode from compat/devlink/mode, legacy where the driver has no such file", async () => {
    const cx6 = builtinProfiles.cx6dx;
    await build({ ...cx6, pfs: [{ ...cx6.pfs[0]!, eswitchMode: "switchdev" }, cx6.pfs[1]!] });
    expect(scanHostSysfs(new HostPaths({ root })).pfs.map((pf) => pf.eswitchMode)).toEqual([
      "switchdev",
      "legacy",
    ]);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), "discovery-"));
    try {
      await buildEmulatedHost({ root: other, profile: builtinProfiles.x710 });
      const paths = new HostPaths({ root: other });
      expect(fs.existsSync(path.join(paths.classNet, "ens1f0/compat"))).toBe(false);
      expect(scanHostSysfs(paths).pfs.map((pf) => pf.eswitchMode)).toEqual(["legacy", "legacy"]);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  describe("discoverHost: the e-switch mode from devlink first", () => {
    /** cx6dx: PF 0000:d8:00.0 shows switchdev in compat/devlink/mode, 0000:d8:00.1 legacy. */
    const buildCx6 = () => {
      const cx6 = builtinProfiles.cx6dx;
      return build({ ...cx6, pfs: [{ ...cx6.pfs[0]!, eswitchMode: "switchdev" }, cx6.pfs[1]!] });
    };
    const discoverWith = async (answers: Record<string, EswitchAnswer>) => {
      const asked: string[] = [];
      const inventory = await discoverHost(new HostPaths({ root }), (handle) => {
        asked.push(handle);
        return Promise.resolve(answers[handle] ?? { kind: "no-eswitch" });
      });
      return { asked, inventory, modes: inventory.pfs.map((pf) => pf.eswitchMode) };
    };

    it("asks devlink for each PF by its PCI handle, and its mode wins over the compat file", async () => {
      await buildCx6();
      const { asked, modes, inventory } = await discoverWith({
        "pci/0000:d8:00.0": { kind: "mode", mode: "legacy" },
        "pci/0000:d8:00.1": { kind: "mode", mode: "switchdev" },
      });
      expect(asked).toEqual(["pci/0000:d8:00.0", "pci/0000:d8:00.1"]);
      expect(modes).toEqual(["legacy", "switchdev"]);
      expect(inventory.warnings).toEqual([]);
    });

    it("falls back to the compat file, else legacy, where devlink has no instance or no devlink is here", async () => {
      await buildCx6();
      for (const fallback of [
        { kind: "no-eswitch" },
        { kind: "unavailable", reason: "devlink is not installed" },
      ] satisfies EswitchAnswer[]) {
        const { modes, inventory } = await discoverWith({
          "pci/0000:d8:00.0": fallback,
          "pci/0000:d8:00.1": fallback,
        });
        expect(modes).toEqual(["switchdev", "legacy"]);
        expect(inventory.warnings).toEqual([]);
      }
    });

    it("keeps the sysfs mode and warns when devlink fails for a PF", async () => {
      await buildCx6();
      const { modes, inventory } = await discoverWith({
        "pci/0000:d8:00.0": { kind: "failed", reason: "devlink did not answer in time: killed" },
        "pci/0000:d8:00.1": { kind: "mode", mode: "switchdev" },
      });
      expect(modes).toEqual(["switchdev", "switchdev"]);
      expect(inventory.warnings).toEqual([
        {
          path: "devlink dev eswitch show pci/0000:d8:00.0",
          message: "devlink did not answer in time: killed; e-switch mode switchdev from sysfs",
        },
      ]);
    });

    it("gives legacy for a PF whose driver has no compat file and no devlink instance (x710)", async () => {
      await build(builtinProfiles.x710);
      const { asked, modes } = await discoverWith({});
      expect(asked).toEqual(["pci/0000:3b:00.0", "pci/0000:3b:00.1"]);
      expect(modes).toEqual(["legacy", "legacy"]);
    });
  });

  it("fails with a clear error when the root has no PCI bus at all", () => {
    expect(() => scanHostSysfs(new HostPaths({ root }))).toThrow(
      /no PCI devices directory .* --host-root/,
    );
  });

  describe("skips bad host data with a warning that names the path", () => {
    const corrupt = async (damage: (paths: HostPaths) => string) => {
      await build(builtinProfiles.x710);
      const paths = new HostPaths({ root });
      const damaged = damage(paths);
      const found = scanHostSysfs(paths);
      return { found, damaged };
    };

    it("garbage in a PF's numa_node skips that PF only", async () => {
      const { found, damaged } = await corrupt((paths) => {
        const file = path.join(paths.pciDevice("0000:3b:00.0"), "numa_node");
        fs.writeFileSync(file, "banana\n");
        return file;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.1"]);
      expect(found.warnings).toEqual([{ path: damaged, message: '"banana" is not a number' }]);
    });

    it("a missing vendor file skips that PF", async () => {
      const { found, damaged } = await corrupt((paths) => {
        const file = path.join(paths.pciDevice("0000:3b:00.1"), "vendor");
        fs.rmSync(file);
        return file;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
      expect(found.warnings).toEqual([{ path: damaged, message: "file is missing" }]);
    });

    it("a dangling virtfn link skips that VF only", async () => {
      const { found } = await corrupt((paths) => {
        const link = path.join(paths.pciDevice("0000:3b:00.0"), "virtfn3");
        fs.rmSync(link);
        fs.symlinkSync("../0000:3b:1f.7", link);
        return link;
      });
      const pf = found.pfs.find((p) => p.pciAddress === "0000:3b:00.0")!;
      expect(pf.vfs.map((vf) => vf.vfID)).toEqual([0, 1, 2, 4, 5, 6, 7]);
      expect(found.warnings).toHaveLength(1);
      expect(found.warnings[0]!.path).toMatch(/0000:3b:00\.0\/virtfn3$/);
      expect(found.warnings[0]!.message).toMatch(/dangling link/);
    });

    it("a virtfn link that names no PCI address skips that VF", async () => {
      const { found } = await corrupt((paths) => {
        const link = path.join(paths.pciDevice("0000:3b:00.0"), "virtfn0");
        fs.rmSync(link);
        fs.symlinkSync("../not-a-device", link);
        return link;
      });
      expect(found.pfs[0]!.vfs.map((vf) => vf.vfID)).not.toContain(0);
      expect(found.warnings[0]!.message).toMatch(/does not name a VF PCI address/);
    });

    it("a garbage iommu_group link skips that VF", async () => {
      const { found } = await corrupt((paths) => {
        const link = path.join(paths.pciDevice("0000:3b:02.1"), "iommu_group");
        fs.rmSync(link);
        fs.symlinkSync("../../../../kernel/iommu_groups/xx", link);
        return link;
      });
      expect(found.pfs[0]!.vfs.map((vf) => vf.pciAddress)).not.toContain("0000:3b:02.1");
      expect(found.warnings[0]!.message).toMatch(/"xx" is not a group number/);
    });

    it("a PF whose directory cannot be listed is skipped", async () => {
      const { found } = await corrupt((paths) => {
        // Replace the PF's device directory link with one to a file: nothing below it reads.
        const link = paths.pciDevice("0000:3b:00.1");
        const target = fs.readlinkSync(link);
        fs.rmSync(link);
        fs.symlinkSync(`${target}/vendor`, link);
        return link;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
    });

    it("a driver link that names no driver skips that device", async () => {
      const { found, damaged } = await corrupt((paths) => {
        const link = path.join(paths.pciDevice("0000:3b:02.2"), "driver");
        fs.rmSync(link);
        fs.symlinkSync("../0000:ff:1f.7", link);
        return link;
      });
      expect(found.pfs[0]!.vfs.map((vf) => vf.pciAddress)).not.toContain("0000:3b:02.2");
      expect(found.warnings).toEqual([
        { path: damaged, message: 'link "../0000:ff:1f.7" does not name a driver' },
      ]);
    });

    it.each([
      ["vendor", "0xdeadbeef", '"0xdeadbeef" is not a 16-bit PCI id'],
      ["numa_node", "1e20", '"1e20" is not a number'],
      ["numa_node", "-5", "-5 is out of range (-1 to 1023)"],
      ["sriov_numvfs", "70000", "70000 is out of range (0 to 65535)"],
    ])("a PF's %s of %j skips that PF", async (file, value, message) => {
      const { found, damaged } = await corrupt((paths) => {
        const target = path.join(paths.pciDevice("0000:3b:00.1"), file);
        overwrite(target, `${value}\n`);
        return target;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
      expect(found.warnings).toEqual([{ path: damaged, message }]);
    });

    it("a virtfn link to a device whose physfn is another PF skips it: never a PF or another PF's VF as ours", async () => {
      const { found, damaged } = await corrupt((paths) => {
        const link = path.join(paths.pciDevice("0000:3b:00.0"), "virtfn5");
        fs.rmSync(link);
        fs.symlinkSync("../0000:3b:0a.1", link); // a VF of PF 0000:3b:00.1
        return link;
      });
      const pf0 = found.pfs.find((p) => p.pciAddress === "0000:3b:00.0")!;
      const all = found.pfs.flatMap((pf) => pf.vfs.map((vf) => vf.pciAddress));
      expect(pf0.vfs.map((vf) => vf.vfID)).toEqual([0, 1, 2, 3, 4, 6, 7]);
      expect(all.filter((address) => address === "0000:3b:0a.1")).toHaveLength(1);
      expect(found.warnings).toEqual([
        {
          path: damaged,
          message: "0000:3b:0a.1 is not a VF of 0000:3b:00.0 (its physfn names 0000:3b:00.1)",
        },
      ]);
    });

    it("a PF netdev that is no interface name skips that PF", async () => {
      const { found } = await corrupt((paths) => {
        const net = path.join(paths.pciDevice("0000:3b:00.1"), "net");
        const [name] = fs.readdirSync(net);
        fs.renameSync(path.join(net, name!), path.join(net, "a-name-far-too-long"));
        return net;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
      expect(found.warnings[0]!.message).toMatch(/"a-name-far-too-long" is not an interface name/);
    });

    it("a /proc/net table that is no regular file is a warning naming it, not a failure", async () => {
      const { found, damaged } = await corrupt((paths) => {
        const real = fs.realpathSync(paths.procNet);
        const fake = path.join(root, "fake-proc-net");
        fs.mkdirSync(fake);
        for (const table of fs.readdirSync(real)) {
          if (["if_inet6", "ipv6_route"].includes(table)) {
            fs.copyFileSync(path.join(real, table), path.join(fake, table));
          }
        }
        fs.mkdirSync(path.join(fake, "route"));
        fs.rmSync(paths.procNet, { recursive: true, force: true });
        fs.symlinkSync(fake, paths.procNet);
        return path.join(paths.procNet, "route");
      });
      expect(found.pfs).toHaveLength(2);
      expect(found.warnings).toEqual([
        {
          path: damaged,
          message: `${damaged} is not a regular file: cannot tell which VFs the host uses`,
        },
      ]);
    });

    it("a device below a directory that is no PCI root complex skips it", async () => {
      const { found } = await corrupt((paths) => {
        const link = paths.pciDevice("0000:3b:00.1");
        const target = fs.readlinkSync(link);
        const devices = fs.realpathSync(paths.at("/sys/devices"));
        const moved = path.join(devices, `pci${"f".repeat(80)}`, "0000:3b:00.1");
        fs.mkdirSync(path.dirname(moved), { recursive: true });
        fs.cpSync(fs.realpathSync(link), moved, { recursive: true, verbatimSymlinks: true });
        fs.rmSync(link);
        fs.symlinkSync(moved, link);
        return target;
      });
      expect(found.pfs.map((pf) => pf.pciAddress)).toEqual(["0000:3b:00.0"]);
      expect(found.warnings[0]!.message).toMatch(/is not below a PCI root complex/);
    });

    it("missing /proc/net is a warning, not a failure", async () => {
      const { found } = await corrupt((paths) => {
        fs.rmSync(paths.procNet, { recursive: true, force: true });
        return paths.procNet;
      });
      expect(found.pfs).toHaveLength(2);
      expect(found.hostUsedNetdevs).toEqual([]);
      expect(found.warnings.map((w) => w.message)).toEqual(
        Array(3).fill("missing: cannot tell which VFs the host uses"),
      );
    });
  });

  it("sees VF count changes on the next look (rediscovery without restart)", async () => {
    await build(builtinProfiles.x710);
    const paths = new HostPaths({ root });
    const before = scanHostSysfs(paths);
    const pf = path.join(paths.pciDevice("0000:3b:00.0"));
    fs.rmSync(path.join(pf, "virtfn7"));
    const after = scanHostSysfs(paths);
    expect(after.pfs[0]!.vfs).toHaveLength(before.pfs[0]!.vfs.length - 1);
  });
});

describe("host-used netdev parsing of /proc/net", () => {
  it("reads IPv4 route devices after the header", () => {
    const text = [
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
      "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0",
      "ens1f1v7\t00121298\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    ].join("\n");
    expect(ipv4RouteDevices(text)).toEqual(["eth0", "ens1f1v7"]);
  });

  it("ignores link-local and host-scope IPv6 addresses", () => {
    const text = [
      "fe800000000000000000000000000001 03 40 20 80 ens1f0v0",
      "00000000000000000000000000000001 01 80 10 80 lo",
      "20010002000000000000000000000001 04 40 00 80 ens1f1v7",
    ].join("\n");
    expect(ipv6AddressDevices(text)).toEqual(["ens1f1v7"]);
  });

  it("ignores link-local, multicast and loopback IPv6 routes", () => {
    const row = (dest: string, dev: string) =>
      `${dest} 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 ${dev}`;
    const text = [
      row("fe800000000000000000000000000000", "ens1f0v0"),
      row("ff000000000000000000000000000000", "ens1f0v0"),
      row("00000000000000000000000000000001", "lo"),
      row("20010002000000000000000000000000", "ens1f1v7"),
    ].join("\n");
    expect(ipv6RouteDevices(text)).toEqual(["ens1f1v7"]);
  });
});
