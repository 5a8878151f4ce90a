import { describe, expect, it } from "vitest";
import type { HostInventory } from "../host/discovery.js";
import { deviceName, selectDevices, withOriginalDrivers } from "./model.js";

const inventory: HostInventory = {
  pfs: [
    {
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
      numVfs: 2,
      vfs: [
        { pciAddress: "0000:3b:02.0", vfID: 0, driver: "iavf", iommuGroup: 4, netdev: "ens1f0v0" },
        {
          pciAddress: "0000:3b:02.1",
          vfID: 1,
          driver: "vfio-pci",
          iommuGroup: 5,
          netdev: undefined,
        },
      ],
    },
  ],
  hostUsedNetdevs: ["ens1f0v0"],
  warnings: [],
};

describe("device model", () => {
  it("names devices after their PCI address as DNS labels", () => {
    expect(deviceName("0000:3b:02.1")).toBe("0000-3b-02-1");
  });

  it("withholds VFs the host uses unless told to publish them", () => {
    expect(selectDevices(inventory, false).devices.map((d) => d.name)).toEqual(["0000-3b-02-1"]);
    expect(selectDevices(inventory, false).hostUsed.map((d) => d.name)).toEqual(["0000-3b-02-0"]);
    expect(selectDevices(inventory, true).devices).toHaveLength(2);
  });

  it("publishes the driver a VF had before this node rebound it for a pod", () => {
    const { devices } = selectDevices(inventory, true);
    const published = withOriginalDrivers(devices, new Map([["0000:3b:02.1", "iavf"]]));
    expect(published.map((d) => d.vf.driver)).toEqual(["iavf", "iavf"]);
    expect(devices[1]!.vf.driver).toBe("vfio-pci");
  });
});
