import type { VfDevice } from "./model.js";

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

/**
 * The attributes a VF is published with; CEL selectors use them, e.g.
 * `device.attributes["sriovnetwork.openshift.io"].PFName == "ens1f0"`.
 * Names under the driver's domain keep the spelling of the upstream driver
 * (`PFName`, `EswitchMode`) so existing manifests keep working.
 */
export function deviceAttributes(
  device: VfDevice,
  driverName: string,
): Record<string, AttributeValue> {
  const { vf, pf } = device;
  const own = (name: string) => `${driverName}/${name}`;
  const attributes: Record<string, AttributeValue> = {
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
  if (device.resourceName !== undefined) {
    attributes[own("resourceName")] = { string: device.resourceName };
    attributes[`${MULTUS}/resourceName`] = { string: device.resourceName };
  }
  return attributes;
}
