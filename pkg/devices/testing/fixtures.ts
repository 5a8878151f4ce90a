import type { DiscoveredPf } from "../../host/discovery.js";
import type { VfDevice } from "../model.js";

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

/**
 * VF `vfID` of X710 PF eth<pfIndex> (PCI bus 0x3b + pfIndex, 4 of 8 VFs enabled), as
 * discovery reports it: a fixture for tests that need a few nodes' worth of devices.
 */
export function x710Vf(pfIndex: number, vfID: number): VfDevice {
  const bus = (0x3b + pfIndex).toString(16);
  const pciAddress = `0000:${bus}:02.${vfID}`;
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: {
      pciAddress,
      vfID,
      driver: "iavf",
      iommuGroup: 40 + vfID,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: x710Pf({ pciAddress: `0000:${bus}:00.0`, netdev: `eth${pfIndex}`, totalVfs: 8, numVfs: 4 }),
  };
}
