import type { DiscoveredPf, DiscoveredVf, HostInventory } from "../host/discovery.js";

/** One VF as the driver publishes and prepares it, with what it inherits from its PF. */
export interface VfDevice {
  /** DNS-label device name derived from the PCI address (`0000:3b:02.1` → `0000-3b-02-1`). */
  name: string;
  vf: DiscoveredVf;
  pf: Omit<DiscoveredPf, "vfs">;
  /** Set by a SriovResourceFilter config that selects this VF. */
  resourceName?: string;
}

export interface DeviceSelection {
  devices: VfDevice[];
  /** VFs left out because the host uses their netdev; published only when the operator allows. */
  hostUsed: VfDevice[];
}

export function deviceName(pciAddress: string): string {
  return pciAddress.replace(/[:.]/g, "-");
}

/**
 * Turns the host inventory into publishable devices. A VF whose netdev the host uses
 * (an address or route in the host namespace) is withheld unless `publishHostUsed`:
 * handing it to a pod would cut the node off that network.
 */
export function selectDevices(inventory: HostInventory, publishHostUsed: boolean): DeviceSelection {
  const used = new Set(inventory.hostUsedNetdevs);
  const selection: DeviceSelection = { devices: [], hostUsed: [] };
  for (const { vfs, ...pf } of inventory.pfs) {
    for (const vf of vfs) {
      const device: VfDevice = { name: deviceName(vf.pciAddress), vf, pf };
      const isHostUsed = vf.netdev !== undefined && used.has(vf.netdev);
      if (isHostUsed && !publishHostUsed) selection.hostUsed.push(device);
      else selection.devices.push(device);
    }
  }
  return selection;
}

/**
 * Publishes the driver a VF had before this node rebound it for a pod (vfio-pci), so a
 * device in use keeps the attributes, and the pool, it was allocated with.
 */
export function withOriginalDrivers(
  devices: readonly VfDevice[],
  originalDrivers: ReadonlyMap<string, string>,
): VfDevice[] {
  return devices.map((device) => {
    const original = originalDrivers.get(device.vf.pciAddress);
    return original === undefined ? device : { ...device, vf: { ...device.vf, driver: original } };
  });
}
