import { isPfDevice, type Device, type PfDevice } from "./model.js";

/** A ResourceSlice device attribute value: exactly one member is set. */
export type AttributeValue = { string: string } | { int: number } | { bool: boolean };

/** Standard attribute domains other DRA drivers align on. */
const KUBERNETES = "resource.kubernetes.io";
const MULTUS = "k8s.cni.cncf.io";
const DRANET = "dra.net";

/** API limit on attributes + capacities of one device. */
export const MAX_ATTRIBUTES_PER_DEVICE = 32;
/** API limit on string attribute values. */
export const MAX_ATTRIBUTE_STRING_LENGTH = 64;

/** The `deviceType` attribute's values: a whole PF, or one VF. */
export const DEVICE_TYPE = { pf: "pf", vf: "vf" } as const;

/**
 * The attributes a device is published with; CEL selectors use them, e.g.
 * `device.attributes["sriovnetwork.openshift.io"].PFName == "ens1f0"`, and `deviceType`
 * (`pf` or `vf`) tells a whole PF from a VF.
 * Names under the driver's domain keep the spelling of the upstream driver
 * (`PFName`, `EswitchMode`) so existing manifests keep working.
 */
export function deviceAttributes(
  device: Device,
  driverName: string,
): Record<string, AttributeValue> {
  if (isPfDevice(device)) return pfAttributes(device, driverName);
  const { vf, pf } = device;
  const own = (name: string) => `${driverName}/${name}`;
  const attributes: Record<string, AttributeValue> = {
    [own("deviceType")]: { string: DEVICE_TYPE.vf },
    [own("vendor")]: { string: pf.vfVendor },
    [own("deviceID")]: { string: pf.vfDeviceID },
    [own("pfDeviceID")]: { string: pf.deviceID },
    [own("pciAddress")]: { string: vf.pciAddress },
    [own("pfPciAddress")]: { string: pf.pciAddress },
    [own("vfID")]: { int: vf.vfID },
    [own("EswitchMode")]: { string: pf.eswitchMode },
    [own("linkType")]: { string: pf.linkType },
    [own("rdmaCapable")]: { bool: vf.rdmaCapable },
    [own("driver")]: { string: vf.driver },
    [own("numaNode")]: { int: pf.numaNode },
    [`${KUBERNETES}/pcieRoot`]: { string: pf.pcieRoot },
    [`${KUBERNETES}/pciBusID`]: { string: vf.pciAddress },
    [`${MULTUS}/deviceID`]: { string: vf.pciAddress },
    [`${DRANET}/numaNode`]: { int: pf.numaNode },
  };
  if (pf.netdev !== undefined) attributes[own("PFName")] = { string: pf.netdev };
  if (vf.iommuGroup !== undefined) attributes[own("iommuGroup")] = { int: vf.iommuGroup };
  withResourceName(attributes, device.resourceName, driverName);
  return attributes;
}

/** A whole PF: its own ids, driver and address, and how many VFs it has and can have. */
function pfAttributes(device: PfDevice, driverName: string): Record<string, AttributeValue> {
  const { pf } = device;
  const own = (name: string) => `${driverName}/${name}`;
  const attributes: Record<string, AttributeValue> = {
    [own("deviceType")]: { string: DEVICE_TYPE.pf },
    [own("vendor")]: { string: pf.vendor },
    [own("deviceID")]: { string: pf.deviceID },
    [own("pfDeviceID")]: { string: pf.deviceID },
    [own("pciAddress")]: { string: pf.pciAddress },
    [own("pfPciAddress")]: { string: pf.pciAddress },
    [own("EswitchMode")]: { string: pf.eswitchMode },
    [own("linkType")]: { string: pf.linkType },
    [own("rdmaCapable")]: { bool: pf.rdmaCapable },
    [own("driver")]: { string: pf.driver },
    [own("numaNode")]: { int: pf.numaNode },
    [own("totalVfs")]: { int: pf.totalVfs },
    [own("numVfs")]: { int: pf.numVfs },
    [`${KUBERNETES}/pcieRoot`]: { string: pf.pcieRoot },
    [`${KUBERNETES}/pciBusID`]: { string: pf.pciAddress },
    [`${MULTUS}/deviceID`]: { string: pf.pciAddress },
    [`${DRANET}/numaNode`]: { int: pf.numaNode },
  };
  if (pf.netdev !== undefined) attributes[own("PFName")] = { string: pf.netdev };
  withResourceName(attributes, device.resourceName, driverName);
  return attributes;
}

function withResourceName(
  attributes: Record<string, AttributeValue>,
  resourceName: string | undefined,
  driverName: string,
): void {
  if (resourceName === undefined) return;
  attributes[`${driverName}/resourceName`] = { string: resourceName };
  attributes[`${MULTUS}/resourceName`] = { string: resourceName };
}
