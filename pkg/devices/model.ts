import type { DiscoveredPf, DiscoveredVf, HostInventory } from "../host/discovery.js";
import type { AttributeValue } from "./attributes.js";

/** One VF as the driver publishes and prepares it, with what it inherits from its PF. */
export interface VfDevice {
  /** DNS-label device name derived from the PCI address (`0000:3b:02.1` → `0000-3b-02-1`). */
  name: string;
  vf: DiscoveredVf;
  pf: Omit<DiscoveredPf, "vfs">;
  /** Set by a SriovResourceFilter config that selects this VF. */
  resourceName?: string;
  /** Set by a SriovResourcePolicy config (its DeviceAttributes): published beside the driver's own. */
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/**
 * A whole PF (the NIC port with every VF it has) as one device: allocating it takes the PF
 * and all its VFs, so the slices make it and its VFs exclusive (see pkg/slices counters).
 */
export interface PfDevice {
  /** `pf-` + the PCI address as a DNS label (`0000:3b:00.0` → `pf-0000-3b-00-0`). */
  name: string;
  pf: Omit<DiscoveredPf, "vfs">;
  /** PCI addresses of the VFs that go with it, by VF index. */
  vfAddresses: string[];
  /** Set by a SriovResourceFilter config that selects this PF. */
  resourceName?: string;
  /** Set by a SriovResourcePolicy config (its DeviceAttributes): published beside the driver's own. */
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/** What a node can publish: a VF, or a whole PF. */
export type Device = VfDevice | PfDevice;

export interface DeviceSelection {
  devices: VfDevice[];
  /** VFs left out because the host uses their netdev; published only when the operator allows. */
  hostUsed: VfDevice[];
  /** Whole PFs, only when asked for (`publishPfs`). */
  pfs: PfDevice[];
  /** PFs never published: the host uses the PF's netdev or one of its VFs'. */
  hostUsedPfs: PfDevice[];
}

export function deviceName(pciAddress: string): string {
  return pciAddress.replace(/[:.]/g, "-");
}

/** What a whole PF's device name starts with. */
export const PF_NAME_PREFIX = "pf-";

/** `0000:3b:00.0` → `pf-0000-3b-00-0`: a PF's name never equals a VF's. */
export function pfDeviceName(pciAddress: string): string {
  return PF_NAME_PREFIX + deviceName(pciAddress);
}

export function isPfDevice(device: Device): device is PfDevice {
  return !isVfDevice(device);
}

/** Whether a published device name is a whole PF's (see pfDeviceName). */
export function isPfDeviceName(name: string): boolean {
  return name.startsWith(PF_NAME_PREFIX);
}

export function isVfDevice(device: Device): device is VfDevice {
  return "vf" in device;
}

/** The device's own PCI function: the VF's, or the PF's. */
export function pciAddressOf(device: Device): string {
  return isPfDevice(device) ? device.pf.pciAddress : device.vf.pciAddress;
}

/**
 * Turns the host inventory into publishable devices. A VF whose netdev the host uses
 * (an address or route in the host namespace) is withheld unless `publishHostUsed`:
 * handing it to a pod would cut the node off that network. With `publishPfs`, every PF is
 * a device too, unless the host uses its netdev or any of its VFs' (never published).
 */
export function selectDevices(
  inventory: HostInventory,
  publishHostUsed: boolean,
  publishPfs = false,
): DeviceSelection {
  const used = new Set(inventory.hostUsedNetdevs);
  const isUsed = (netdev: string | undefined) => netdev !== undefined && used.has(netdev);
  const selection: DeviceSelection = { devices: [], hostUsed: [], pfs: [], hostUsedPfs: [] };
  for (const { vfs, ...pf } of inventory.pfs) {
    for (const vf of vfs) {
      const device: VfDevice = { name: deviceName(vf.pciAddress), vf, pf };
      if (isUsed(vf.netdev) && !publishHostUsed) selection.hostUsed.push(device);
      else selection.devices.push(device);
    }
    if (!publishPfs) continue;
    const device: PfDevice = {
      name: pfDeviceName(pf.pciAddress),
      pf,
      vfAddresses: vfs.map((vf) => vf.pciAddress),
    };
    // Whatever --publish-host-used-vfs says: the PF takes every VF with it, and a pod that
    // got the host's own uplink (or a VF it routes over) would cut the node off.
    if (isUsed(pf.netdev) || vfs.some((vf) => isUsed(vf.netdev))) {
      selection.hostUsedPfs.push(device);
    } else selection.pfs.push(device);
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
