import { describe, expect, it } from "vitest";
import {
  bootDevices,
  expectedInventory,
  hostLayout,
  hostUsedNetdevs,
  macAddress,
} from "./layout.js";
import { builtinProfiles } from "./profiles.js";

describe("hostLayout", () => {
  it("puts PFs and their VFs below one root port, on-root-bus devices directly below the root", () => {
    const layout = hostLayout(builtinProfiles.x710);
    const paths = (addresses: string[]) =>
      addresses.map((address) => layout.byAddress.get(address)!.devicePath);
    expect(
      paths(["0000:3a:00.0", "0000:3b:00.0", "0000:3b:00.1", "0000:3b:0a.7", "0000:00:1f.6"]),
    ).toEqual([
      "pci0000:3a/0000:3a:00.0",
      "pci0000:3a/0000:3a:00.0/0000:3b:00.0",
      "pci0000:3a/0000:3a:00.0/0000:3b:00.1",
      "pci0000:3a/0000:3a:00.0/0000:3b:0a.7",
      "pci0000:00/0000:00:1f.6",
    ]);
    expect(layout.fixedDevices.map((device) => [device.address, device.role])).toEqual([
      ["0000:00:1f.6", "other"],
      ["0000:3a:00.0", "root-port"],
      ["0000:3b:00.0", "pf"],
      ["0000:3b:00.1", "pf"],
    ]);
    expect(layout.drivers).toEqual(["e1000e", "i40e", "iavf", "pcieport", "vfio-pci"]);
  });

  it("gives each downstream bus its own root port, skipping addresses in use", () => {
    const layout = hostLayout(builtinProfiles.scale);
    const rootPorts = layout.fixedDevices.filter((device) => device.role === "root-port");
    expect(rootPorts.map((port) => port.address)).toEqual([
      "0000:17:00.0",
      "0000:17:01.0",
      "0000:3a:00.0",
      "0000:3a:01.0",
      "0000:85:00.0",
      "0000:85:01.0",
      "0000:ae:00.0",
      "0000:ae:01.0",
    ]);
    expect(layout.byAddress.get("0000:1b:00.7")!.devicePath).toBe(
      "pci0000:17/0000:17:01.0/0000:1b:00.7",
    );
    const x540 = hostLayout(builtinProfiles.x540);
    // 00:00.0 is free although 00:19.0 (the onboard NIC) sits on the root bus too.
    expect(x540.byAddress.get("0000:03:10.1")!.devicePath).toBe(
      "pci0000:00/0000:00:00.0/0000:03:10.1",
    );
  });

  it("numbers IOMMU groups host-wide: fixed devices by address, then VFs PF by PF", () => {
    const profile = builtinProfiles.x710;
    const boot = bootDevices(profile, hostLayout(profile));
    expect(boot.map((device) => device.iommuGroup)).toEqual(boot.map((_, i) => i));
    expect(boot.slice(4, 6).map((device) => device.spec.address)).toEqual([
      "0000:3b:02.0",
      "0000:3b:02.1",
    ]);
    expect(boot[18]).toMatchObject({ driver: "vfio-pci", spec: { address: "0000:3b:0a.6" } });
  });

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
      iommuGroup: 4,
      netdev: "ens1f0v0",
    });
    expect(port1!.vfs[6]).toEqual({
      pciAddress: "0000:3b:0a.6",
      vfID: 6,
      driver: "vfio-pci",
      iommuGroup: 18,
      netdev: undefined,
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
