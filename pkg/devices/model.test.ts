import { describe, expect, it } from "vitest";
import type { HostInventory } from "../host/discovery.js";
import { deviceName, pfDeviceName, selectDevices, withOriginalDrivers } from "./model.js";
import { x710Pf } from "./testing/fixtures.js";

const inventory: HostInventory = {
  pfs: [
    {
      ...x710Pf({ numVfs: 2 }),
      vfs: [
        {
          pciAddress: "0000:3b:02.0",
          vfID: 0,
          driver: "iavf",
          iommuGroup: 4,
          netdev: "ens1f0v0",
          rdmaCapable: false,
        },
        {
          pciAddress: "0000:3b:02.1",
          vfID: 1,
          driver: "vfio-pci",
          iommuGroup: 5,
          netdev: undefined,
          rdmaCapable: false,
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

  it("publishes whole PFs only when asked, named apart from any VF", () => {
    expect(pfDeviceName("0000:3b:00.0")).toBe("pf-0000-3b-00-0");
    expect(selectDevices(inventory, false).pfs).toEqual([]);
    const free = { ...inventory, hostUsedNetdevs: [] };
    const { pfs } = selectDevices(free, false, true);
    expect(pfs.map((d) => [d.name, d.vfAddresses])).toEqual([
      ["pf-0000-3b-00-0", ["0000:3b:02.0", "0000:3b:02.1"]],
    ]);
  });

  it("never publishes a PF the host uses, itself or through one of its VFs, whatever publishHostUsed says", () => {
    for (const used of [["ens1f0"], ["ens1f0v0"]]) {
      const selection = selectDevices({ ...inventory, hostUsedNetdevs: used }, true, true);
      expect(selection.pfs).toEqual([]);
      expect(selection.hostUsedPfs.map((d) => d.name)).toEqual(["pf-0000-3b-00-0"]);
    }
  });

  it("publishes the driver a VF had before this node rebound it for a pod", () => {
    const { devices } = selectDevices(inventory, true);
    const published = withOriginalDrivers(devices, new Map([["0000:3b:02.1", "iavf"]]));
    expect(published.map((d) => d.vf.driver)).toEqual(["iavf", "iavf"]);
    expect(devices[1]!.vf.driver).toBe("vfio-pci");
  });
});
