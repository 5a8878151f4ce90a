import type { DiscoveredPf } from "../../host/discovery.js";

/** Port 0 of an Intel X710 as discovery reports it, without its VFs: a fixture for tests. */
export function x710Pf(overrides: Partial<DiscoveredPf> = {}): Omit<DiscoveredPf, "vfs"> {
  return {
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
    ...overrides,
  };
}
