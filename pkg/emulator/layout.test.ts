import { describe, expect, it } from "vitest";
import type { DeviceSpec } from "./layout.js";
import {
  assignIommuGroups,
  bootDevices,
  expectedInventory,
  hostLayout,
  hostUsedNetdevs,
  macAddress,
} from "./layout.js";
import { builtinProfiles, scaledHostProfile } from "./profiles.js";

describe("hostLayout", () => {
  it("puts PFs and their VFs below one root port, on-root-bus devices directly below the root", () => {
    const layout = hostLayout(builtinProfiles.x710);
    const paths = (addresses: string[]) =>
      addresses.map((address) => layout.byAddress.get(address)!.devicePath);
    expect(
      paths(["0000:3a:02.0", "0000:3b:00.0", "0000:3b:00.1", "0000:3b:0a.7", "0000:00:1f.6"]),
    ).toEqual([
      "pci0000:3a/0000:3a:02.0",
      "pci0000:3a/0000:3a:02.0/0000:3b:00.0",
      "pci0000:3a/0000:3a:02.0/0000:3b:00.1",
      "pci0000:3a/0000:3a:02.0/0000:3b:0a.7",
      "pci0000:00/0000:00:1f.6",
    ]);
    expect(layout.fixedDevices.map((device) => [device.address, device.role])).toEqual([
      ["0000:00:00.0", "host-bridge"],
      ["0000:00:1f.6", "other"],
      ["0000:3a:00.0", "host-bridge"],
      ["0000:3a:02.0", "root-port"],
      ["0000:3b:00.0", "pf"],
      ["0000:3b:00.1", "pf"],
    ]);
    expect(layout.drivers).toEqual(["e1000e", "i40e", "iavf", "pcieport", "vfio-pci"]);
  });

  it("puts a driverless host bridge (class 0x060000) at device 00 of every root bus", () => {
    const layout = hostLayout(builtinProfiles.scale);
    const bridges = layout.fixedDevices.filter((device) => device.role === "host-bridge");
    expect(bridges.map((bridge) => [bridge.address, bridge.devicePath])).toEqual(
      ["00", "17", "3a", "85", "ae"].map((bus) => [
        `0000:${bus}:00.0`,
        `pci0000:${bus}/0000:${bus}:00.0`,
      ]),
    );
    for (const bridge of bridges) {
      expect(bridge).toMatchObject({ classCode: "0x060000", nativeDriver: undefined });
    }
  });

  it("gives each downstream bus its own root port from device 02 on, skipping addresses in use", () => {
    const layout = hostLayout(builtinProfiles.scale);
    const rootPorts = layout.fixedDevices.filter((device) => device.role === "root-port");
    expect(rootPorts.map((port) => port.address)).toEqual([
      "0000:17:02.0",
      "0000:17:03.0",
      "0000:3a:02.0",
      "0000:3a:03.0",
      "0000:85:02.0",
      "0000:85:03.0",
      "0000:ae:02.0",
      "0000:ae:03.0",
    ]);
    expect(layout.byAddress.get("0000:1b:00.7")!.devicePath).toBe(
      "pci0000:17/0000:17:03.0/0000:1b:00.7",
    );
    const x540 = hostLayout(builtinProfiles.x540);
    // The onboard NIC at 00:19.0 shares the root bus with the host bridge and the port.
    expect(x540.byAddress.get("0000:03:10.1")!.devicePath).toBe(
      "pci0000:00/0000:00:02.0/0000:03:10.1",
    );
    const taken = {
      pfs: builtinProfiles.x540.pfs,
      otherDevices: [{ ...builtinProfiles.x540.otherDevices[0]!, pciAddress: "0000:00:02.0" }],
    };
    expect(hostLayout(taken).byAddress.get("0000:03:00.0")!.devicePath).toBe(
      "pci0000:00/0000:00:03.0/0000:03:00.0",
    );
  });

  it("numbers IOMMU groups host-wide in probe order: fixed devices by address, then VFs PF by PF", () => {
    const profile = builtinProfiles.x710;
    const boot = bootDevices(profile, hostLayout(profile));
    expect(boot.map((device) => device.iommuGroup)).toEqual(boot.map((_, i) => i));
    expect(boot.slice(6, 8).map((device) => device.spec.address)).toEqual([
      "0000:3b:02.0",
      "0000:3b:02.1",
    ]);
    expect(boot[0]).toMatchObject({ driver: undefined, spec: { role: "host-bridge" } });
    expect(boot[20]).toMatchObject({ driver: "vfio-pci", spec: { address: "0000:3b:0a.6" } });
  });

  it("lets devices of a profile's sharedIommuGroups share one group, numbered at the first", () => {
    const profile = {
      ...builtinProfiles.x710,
      // Port 0 and its first two VFs without ACS between them; port 1 and its VF 7 likewise.
      sharedIommuGroups: [
        ["0000:3b:00.0", "0000:3b:02.0", "0000:3b:02.1"],
        ["0000:3b:0a.7", "0000:3b:00.1"],
      ],
    };
    const groups = new Map(
      bootDevices(profile, hostLayout(profile)).map((d) => [d.spec.address, d.iommuGroup]),
    );
    expect(
      ["0000:3b:00.0", "0000:3b:00.1", "0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2"].map(
        (address) => groups.get(address),
      ),
    ).toEqual([4, 5, 4, 4, 6]);
    expect(groups.get("0000:3b:0a.7")).toBe(5);
    expect(groups.get("0000:3b:0a.6")).toBe(18);
  });
});

describe("hostLayout, addresses", () => {
  it("derives unique locally administered MACs from PCI addresses", () => {
    expect(macAddress("0000:3b:02.3")).toBe("02:ed:00:00:3b:13");
    expect(macAddress("0001:af:1f.7")).toBe("02:ed:00:01:af:ff");
    const vfs = [...hostLayout(builtinProfiles.scale).vfsByPf.values()].flat();
    expect(new Set(vfs.map((vf) => vf.mac)).size).toBe(vfs.length);
  });

  it("addresses host-used VFs from the benchmarking ranges", () => {
    const profile = builtinProfiles.x710;
    expect(hostUsedNetdevs(profile, hostLayout(profile))).toEqual([
      {
        pciAddress: "0000:3b:0a.7",
        netdev: "ens1f1v7",
        mac: "02:ed:00:00:3b:57",
        // lo is 1; eno1, ens1f0, ens1f1, 8 VFs of port 0 and 6 netdev VFs of port 1 come first.
        ifindex: 19,
        ipv4: "198.18.1.1",
        ipv6: "2001:2:0:1::1",
      },
    ]);
  });
});

describe("expectedInventory", () => {
  it("lists what discovery should find on a fresh host", () => {
    const inventory = expectedInventory(builtinProfiles.x710);
    expect(inventory.hostUsedNetdevs).toEqual(["ens1f1v7"]);
    const [port0, port1] = inventory.pfs;
    expect(port0).toMatchObject({
      pciAddress: "0000:3b:00.0",
      netdev: "ens1f0",
      vendor: "8086",
      deviceID: "1572",
      driver: "i40e",
      vfVendor: "8086",
      vfDeviceID: "154c",
      numaNode: 0,
      pcieRoot: "pci0000:3a",
      linkType: "ethernet",
      eswitchMode: "legacy",
      rdmaCapable: false,
      totalVfs: 64,
      numVfs: 8,
    });
    expect(port0!.vfs[0]).toEqual({
      pciAddress: "0000:3b:02.0",
      vfID: 0,
      driver: "iavf",
      iommuGroup: 6,
      netdev: "ens1f0v0",
      rdmaCapable: false,
    });
    expect(port1!.vfs[6]).toEqual({
      pciAddress: "0000:3b:0a.6",
      vfID: 6,
      driver: "vfio-pci",
      iommuGroup: 20,
      netdev: undefined,
      rdmaCapable: false,
    });
  });

  it("scales to 8 PFs × 256 VFs with distinct addresses and groups", () => {
    const inventory = expectedInventory(builtinProfiles.scale);
    const vfs = inventory.pfs.flatMap((pf) => pf.vfs);
    expect(vfs).toHaveLength(2048);
    expect(new Set(vfs.map((vf) => vf.pciAddress)).size).toBe(2048);
    expect(new Set(vfs.map((vf) => vf.iommuGroup)).size).toBe(2048);
  });
});

describe("assignIommuGroups", () => {
  const device = (address: string) => ({ address }) as DeviceSpec;
  it("takes the lowest free numbers and joins a present peer's group", () => {
    const peers = new Map([["0000:3b:02.1", ["0000:3b:00.0"]]]);
    const groups = assignIommuGroups(
      ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2"].map(device),
      peers,
      [0, 1, 3],
      (address) => (address === "0000:3b:00.0" ? 1 : undefined),
    );
    expect([...groups]).toEqual([
      ["0000:3b:02.0", 2],
      ["0000:3b:02.1", 1],
      ["0000:3b:02.2", 4],
    ]);
  });
});

describe("scaledHostProfile", () => {
  it("holds the VFs on as few 256-VF PFs as fit, every PF the same size, each with its own VFs", () => {
    for (const [vfCount, pfs, perPf] of [
      [16, 1, 16],
      [256, 1, 256],
      [2048, 8, 256],
      [10_000, 40, 250],
    ] as const) {
      const inventory = expectedInventory(scaledHostProfile(vfCount));
      expect(inventory.pfs).toHaveLength(pfs);
      expect(inventory.pfs.map((pf) => pf.vfs.length)).toEqual(Array(pfs).fill(perPf));
      expect(new Set(inventory.pfs.flatMap((pf) => pf.vfs.map((vf) => vf.pciAddress))).size).toBe(
        vfCount,
      );
    }
  });

  it("refuses counts that do not split evenly or do not fit the buses", () => {
    expect(() => scaledHostProfile(257)).toThrow(/multiple of 2/);
    expect(() => scaledHostProfile(0)).toThrow(/1 to 24576/);
    expect(() => scaledHostProfile(40_000)).toThrow(/1 to 24576/);
  });
});
