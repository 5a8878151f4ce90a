import { describe, expect, it } from "vitest";
import type { ResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import type { VfDevice } from "../devices/model.js";
import type { LinkType } from "../host/discovery.js";
import { compileConfig, compileResourceFilter, type MatchFilter } from "./match.js";

interface VfTraits {
  pciAddress?: string;
  vfID?: number;
  driver?: string;
  pfName?: string | undefined;
  pfPciAddress?: string;
  vendor?: string;
  deviceID?: string;
  numaNode?: number;
  linkType?: LinkType;
}

function vf(traits: VfTraits = {}): VfDevice {
  const pciAddress = traits.pciAddress ?? "0000:3b:02.0";
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: {
      pciAddress,
      vfID: traits.vfID ?? 0,
      driver: traits.driver ?? "iavf",
      iommuGroup: 1,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: {
      pciAddress: traits.pfPciAddress ?? "0000:3b:00.0",
      netdev: "pfName" in traits ? traits.pfName : "eth0",
      vendor: "8086",
      deviceID: "1572",
      driver: "i40e",
      vfVendor: traits.vendor ?? "8086",
      vfDeviceID: traits.deviceID ?? "154c",
      numaNode: traits.numaNode ?? 0,
      pcieRoot: "pci0000:3a",
      linkType: traits.linkType ?? "ethernet",
      eswitchMode: "legacy",
      rdmaCapable: false,
      totalVfs: 64,
      numVfs: 8,
    },
  };
}

const matches = (filter: MatchFilter, device: VfDevice) => compileResourceFilter(filter)(device);

describe("compileResourceFilter", () => {
  it.each<[keyof ResourceFilter, string[], VfTraits, VfTraits]>([
    ["vendors", ["15b3", "8086"], { vendor: "8086" }, { vendor: "14e4" }],
    ["devices", ["154c"], { deviceID: "154c" }, { deviceID: "1889" }],
    ["pfNames", ["eth1", "eth0"], { pfName: "eth0" }, { pfName: "eth2" }],
    [
      "pciAddresses",
      ["0000:3b:02.1"],
      { pciAddress: "0000:3b:02.1" },
      { pciAddress: "0000:3b:02.2" },
    ],
    [
      "rootDevices",
      ["0000:5e:00.0"],
      { pfPciAddress: "0000:5e:00.0" },
      { pfPciAddress: "0000:3b:00.0" },
    ],
    ["numaNodes", ["1"], { numaNode: 1 }, { numaNode: 0 }],
    ["drivers", ["vfio-pci"], { driver: "vfio-pci" }, { driver: "iavf" }],
  ])("matches %s against any of its values", (field, values, matching, other) => {
    expect(matches({ [field]: values }, vf(matching))).toBe(true);
    expect(matches({ [field]: values }, vf(other))).toBe(false);
  });

  it("matches hex ids and PCI addresses in any case", () => {
    const device = vf({ vendor: "15b3", deviceID: "101e", pciAddress: "0000:af:00.2" });
    expect(matches({ vendors: ["15B3"], devices: ["101E"] }, device)).toBe(true);
    expect(matches({ pciAddresses: ["0000:AF:00.2"] }, device)).toBe(true);
    expect(matches({ rootDevices: ["0000:3B:00.0"] }, device)).toBe(true);
  });

  it("requires every set field to match (AND)", () => {
    const filter = { vendors: ["8086"], drivers: ["vfio-pci"] };
    expect(matches(filter, vf({ driver: "vfio-pci" }))).toBe(true);
    expect(matches(filter, vf({ driver: "iavf" }))).toBe(false);
    expect(matches(filter, vf({ vendor: "15b3", driver: "vfio-pci" }))).toBe(false);
  });

  it("matches every VF when no field is set, and ignores empty lists", () => {
    expect(matches({}, vf())).toBe(true);
    expect(matches({ vendors: [], pfNames: [] }, vf({ pfName: undefined }))).toBe(true);
  });

  it("selects VF index ranges of a PF", () => {
    const filter = { pfNames: ["eth0#0-1,5"] };
    const picked = [0, 1, 2, 5, 6].filter((vfID) => matches(filter, vf({ vfID })));
    expect(picked).toEqual([0, 1, 5]);
    expect(matches(filter, vf({ vfID: 0, pfName: "eth1" }))).toBe(false);
  });

  it("selects VF index ranges of a PF by its address", () => {
    const filter = { rootDevices: ["0000:3B:00.0#0-1,5"] };
    const picked = [0, 1, 2, 5, 6].filter((vfID) => matches(filter, vf({ vfID })));
    expect(picked).toEqual([0, 1, 5]);
    expect(matches(filter, vf({ vfID: 0, pfPciAddress: "0000:3b:00.1" }))).toBe(false);
    expect(matches({ rootDevices: ["0000:3b:00.0#3-1", "0000:3b:00.0#2"] }, vf({ vfID: 2 }))).toBe(
      true,
    );
  });

  it("never matches by PF name a PF without a netdev", () => {
    expect(matches({ pfNames: ["eth0"] }, vf({ pfName: undefined }))).toBe(false);
  });

  it("lets malformed pfNames match nothing, and the well-formed ones still match", () => {
    expect(matches({ pfNames: ["eth0#3-1"] }, vf({ vfID: 2 }))).toBe(false);
    expect(matches({ pfNames: ["eth0#3-1", "eth0#2"] }, vf({ vfID: 2 }))).toBe(true);
  });

  it('matches PFs without NUMA information with "-1" only', () => {
    expect(matches({ numaNodes: ["-1"] }, vf({ numaNode: -1 }))).toBe(true);
    expect(matches({ numaNodes: ["0"] }, vf({ numaNode: -1 }))).toBe(false);
  });
});

describe("linkTypes (from SriovResourcePolicy linkType)", () => {
  it("matches the PF's link type, any of the values", () => {
    expect(matches({ linkTypes: ["infiniband"] }, vf({ linkType: "infiniband" }))).toBe(true);
    expect(matches({ linkTypes: ["infiniband"] }, vf({ linkType: "ethernet" }))).toBe(false);
    expect(matches({ linkTypes: ["ethernet", "infiniband"] }, vf())).toBe(true);
  });
});

describe("compileConfig", () => {
  it("matches when any of its resource filters matches (OR)", () => {
    const config = compileConfig({
      resourceFilters: [{ pfNames: ["eth0"] }, { drivers: ["vfio-pci"] }],
    });
    expect(config(vf({ pfName: "eth0" }))).toBe(true);
    expect(config(vf({ pfName: "eth1", driver: "vfio-pci" }))).toBe(true);
    expect(config(vf({ pfName: "eth1" }))).toBe(false);
  });
});
