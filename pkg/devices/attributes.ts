import type { EswitchMode, LinkType } from "../host/discovery.js";
import { isPfDevice, type Device, type PfDevice, type VfDevice } from "./model.js";

/** A ResourceSlice device attribute value: exactly one member is set. */
export type AttributeValue =
  { string: string } | { int: number } | { bool: boolean } | { version: string };

/** Standard attribute domains other DRA drivers align on. */
const KUBERNETES = "resource.kubernetes.io";
const MULTUS = "k8s.cni.cncf.io";
const DRANET = "dra.net";

/** API limit on attributes + capacities of one device. */
export const MAX_ATTRIBUTES_PER_DEVICE = 32;
/** API limit on string attribute values. */
export const MAX_ATTRIBUTE_STRING_LENGTH = 64;

/**
 * The names of the attributes under the driver's domain, spelled once for both directions
 * (publishing and reading back). Some keep the upstream driver's spelling (`PFName`,
 * `EswitchMode`) so existing manifests keep working.
 */
export const ATTRIBUTE = {
  deviceType: "deviceType",
  vendor: "vendor",
  deviceID: "deviceID",
  pfDeviceID: "pfDeviceID",
  pciAddress: "pciAddress",
  pfPciAddress: "pfPciAddress",
  vfID: "vfID",
  EswitchMode: "EswitchMode",
  linkType: "linkType",
  rdmaCapable: "rdmaCapable",
  driver: "driver",
  numaNode: "numaNode",
  totalVfs: "totalVfs",
  numVfs: "numVfs",
  PFName: "PFName",
  iommuGroup: "iommuGroup",
  resourceName: "resourceName",
} as const;

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
    [own(ATTRIBUTE.deviceType)]: { string: DEVICE_TYPE.vf },
    [own(ATTRIBUTE.vendor)]: { string: pf.vfVendor },
    [own(ATTRIBUTE.deviceID)]: { string: pf.vfDeviceID },
    [own(ATTRIBUTE.pfDeviceID)]: { string: pf.deviceID },
    [own(ATTRIBUTE.pciAddress)]: { string: vf.pciAddress },
    [own(ATTRIBUTE.pfPciAddress)]: { string: pf.pciAddress },
    [own(ATTRIBUTE.vfID)]: { int: vf.vfID },
    [own(ATTRIBUTE.EswitchMode)]: { string: pf.eswitchMode },
    [own(ATTRIBUTE.linkType)]: { string: pf.linkType },
    [own(ATTRIBUTE.rdmaCapable)]: { bool: vf.rdmaCapable },
    [own(ATTRIBUTE.driver)]: { string: vf.driver },
    [own(ATTRIBUTE.numaNode)]: { int: pf.numaNode },
    [`${KUBERNETES}/pcieRoot`]: { string: pf.pcieRoot },
    [`${KUBERNETES}/pciBusID`]: { string: vf.pciAddress },
    [`${MULTUS}/deviceID`]: { string: vf.pciAddress },
    [`${DRANET}/numaNode`]: { int: pf.numaNode },
  };
  if (pf.netdev !== undefined) attributes[own(ATTRIBUTE.PFName)] = { string: pf.netdev };
  if (vf.iommuGroup !== undefined) attributes[own(ATTRIBUTE.iommuGroup)] = { int: vf.iommuGroup };
  return withPolicyAttributes(attributes, device, driverName);
}

/** A whole PF: its own ids, driver and address, and how many VFs it has and can have. */
function pfAttributes(device: PfDevice, driverName: string): Record<string, AttributeValue> {
  const { pf } = device;
  const own = (name: string) => `${driverName}/${name}`;
  const attributes: Record<string, AttributeValue> = {
    [own(ATTRIBUTE.deviceType)]: { string: DEVICE_TYPE.pf },
    [own(ATTRIBUTE.vendor)]: { string: pf.vendor },
    [own(ATTRIBUTE.deviceID)]: { string: pf.deviceID },
    [own(ATTRIBUTE.pfDeviceID)]: { string: pf.deviceID },
    [own(ATTRIBUTE.pciAddress)]: { string: pf.pciAddress },
    [own(ATTRIBUTE.pfPciAddress)]: { string: pf.pciAddress },
    [own(ATTRIBUTE.EswitchMode)]: { string: pf.eswitchMode },
    [own(ATTRIBUTE.linkType)]: { string: pf.linkType },
    [own(ATTRIBUTE.rdmaCapable)]: { bool: pf.rdmaCapable },
    [own(ATTRIBUTE.driver)]: { string: pf.driver },
    [own(ATTRIBUTE.numaNode)]: { int: pf.numaNode },
    [own(ATTRIBUTE.totalVfs)]: { int: pf.totalVfs },
    [own(ATTRIBUTE.numVfs)]: { int: pf.numVfs },
    [`${KUBERNETES}/pcieRoot`]: { string: pf.pcieRoot },
    [`${KUBERNETES}/pciBusID`]: { string: pf.pciAddress },
    [`${MULTUS}/deviceID`]: { string: pf.pciAddress },
    [`${DRANET}/numaNode`]: { int: pf.numaNode },
  };
  if (pf.netdev !== undefined) attributes[own(ATTRIBUTE.PFName)] = { string: pf.netdev };
  return withPolicyAttributes(attributes, device, driverName);
}

/**
 * Adds the resourceName attributes, then a SriovResourcePolicy's (its DeviceAttributes') in
 * name order: never over an attribute discovery set (as upstream, which keeps those
 * reserved), and only while the device stays within the API's attribute limit.
 */
function withPolicyAttributes(
  discovered: Record<string, AttributeValue>,
  device: Device,
  driverName: string,
): Record<string, AttributeValue> {
  const reserved = new Set(Object.keys(discovered));
  const attributes = { ...discovered };
  withResourceName(attributes, device.resourceName, driverName);
  const extra = Object.entries(device.attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [name, value] of extra) {
    if (reserved.has(name)) continue;
    if (!(name in attributes) && Object.keys(attributes).length >= MAX_ATTRIBUTES_PER_DEVICE) {
      continue;
    }
    attributes[name] = value;
  }
  return attributes;
}

function withResourceName(
  attributes: Record<string, AttributeValue>,
  resourceName: string | undefined,
  driverName: string,
): void {
  if (resourceName === undefined) return;
  attributes[`${driverName}/${ATTRIBUTE.resourceName}`] = { string: resourceName };
  attributes[`${MULTUS}/resourceName`] = { string: resourceName };
}

const LINK_TYPES: readonly LinkType[] = ["ethernet", "infiniband", "unknown"];
const ESWITCH_MODES: readonly EswitchMode[] = ["legacy", "switchdev"];

/**
 * Turns published attributes (see `deviceAttributes`) back into a VfDevice. Every field
 * filter matching reads is required; the rest default when absent. PF fields a slice does
 * not carry (vendor and driver of the PF, VF counts, VF netdev) are left empty: matching
 * never reads them. Returns what is wrong as a string.
 */
export function vfDeviceFromAttributes(
  name: string,
  attributes: Readonly<Record<string, unknown>>,
  driverName: string,
): VfDevice | string {
  const read = readRequired(
    attributes,
    driverName,
    [
      ATTRIBUTE.vendor,
      ATTRIBUTE.deviceID,
      ATTRIBUTE.pciAddress,
      ATTRIBUTE.pfPciAddress,
      ATTRIBUTE.driver,
    ],
    [ATTRIBUTE.vfID, ATTRIBUTE.numaNode],
  );
  if (typeof read === "string") return read;
  const { strings, ints, own } = read;
  const rdmaCapable = boolAttribute(attributes, own(ATTRIBUTE.rdmaCapable)) ?? false;
  return withResourceNameOf(read, {
    name,
    vf: {
      pciAddress: strings.pciAddress,
      vfID: ints.vfID,
      driver: strings.driver,
      iommuGroup: intAttribute(attributes, own(ATTRIBUTE.iommuGroup)),
      netdev: undefined,
      rdmaCapable,
    },
    pf: {
      ...sharedPfFields(read),
      pciAddress: strings.pfPciAddress,
      vendor: "",
      deviceID: read.text(own(ATTRIBUTE.pfDeviceID)) ?? "",
      driver: "",
      vfVendor: strings.vendor,
      vfDeviceID: strings.deviceID,
      numaNode: ints.numaNode,
      rdmaCapable,
      totalVfs: 0,
      numVfs: 0,
    },
  });
}

/**
 * Turns a whole PF's published attributes back into a PfDevice, as `vfDeviceFromAttributes`
 * does for a VF. What a slice does not carry (its VFs' ids and addresses) is left empty.
 * Returns what is wrong as a string.
 */
export function pfDeviceFromAttributes(
  name: string,
  attributes: Readonly<Record<string, unknown>>,
  driverName: string,
): PfDevice | string {
  const read = readRequired(
    attributes,
    driverName,
    [ATTRIBUTE.vendor, ATTRIBUTE.deviceID, ATTRIBUTE.pciAddress, ATTRIBUTE.driver],
    [ATTRIBUTE.numaNode, ATTRIBUTE.totalVfs, ATTRIBUTE.numVfs],
  );
  if (typeof read === "string") return read;
  const { strings, ints, own } = read;
  return withResourceNameOf(read, {
    name,
    pf: {
      ...sharedPfFields(read),
      pciAddress: strings.pciAddress,
      vendor: strings.vendor,
      deviceID: strings.deviceID,
      driver: strings.driver,
      vfVendor: "",
      vfDeviceID: "",
      numaNode: ints.numaNode,
      rdmaCapable: boolAttribute(attributes, own(ATTRIBUTE.rdmaCapable)) ?? false,
      totalVfs: ints.totalVfs,
      numVfs: ints.numVfs,
    },
    vfAddresses: [],
  });
}

/** Attributes under the driver's domain with the required ones read. */
interface RequiredRead<S extends string, I extends string> {
  strings: Record<S, string>;
  ints: Record<I, number>;
  own: (attribute: string) => string;
  text: (key: string) => string | undefined;
}

/** Reads the required string and int attributes, or names those missing or mistyped. */
function readRequired<S extends string, I extends string>(
  attributes: Readonly<Record<string, unknown>>,
  driverName: string,
  stringKeys: readonly S[],
  intKeys: readonly I[],
): RequiredRead<S, I> | string {
  const own = (attribute: string) => `${driverName}/${attribute}`;
  const text = (key: string) => stringAttribute(attributes, key);
  const missing: string[] = [];
  const strings = readAll(stringKeys, (attribute) => text(own(attribute)), missing);
  const ints = readAll(intKeys, (attribute) => intAttribute(attributes, own(attribute)), missing);
  if (strings === undefined || ints === undefined) {
    return `missing or mistyped attributes: ${missing.map(own).join(", ")}`;
  }
  return { strings, ints, own, text };
}

/** What a VF and its PF publish alike of the PF: its netdev, PCIe root, link and e-switch. */
function sharedPfFields(
  read: Pick<RequiredRead<string, string>, "own" | "text">,
): Pick<VfDevice["pf"], "netdev" | "pcieRoot" | "linkType" | "eswitchMode"> {
  const linkType = read.text(read.own(ATTRIBUTE.linkType));
  const eswitchMode = read.text(read.own(ATTRIBUTE.EswitchMode));
  return {
    netdev: read.text(read.own(ATTRIBUTE.PFName)),
    pcieRoot: read.text(`${KUBERNETES}/pcieRoot`) ?? "",
    linkType: LINK_TYPES.find((known) => known === linkType) ?? "unknown",
    eswitchMode: ESWITCH_MODES.find((known) => known === eswitchMode) ?? "legacy",
  };
}

function withResourceNameOf<T extends Device>(
  read: Pick<RequiredRead<string, string>, "own" | "text">,
  device: T,
): T {
  const resourceName = read.text(read.own(ATTRIBUTE.resourceName));
  if (resourceName !== undefined) device.resourceName = resourceName;
  return device;
}

/**
 * A published device read back: a whole PF when its `deviceType` says so, else a VF (nodes
 * older than `deviceType` published VFs only).
 */
export function deviceFromAttributes(
  name: string,
  attributes: Readonly<Record<string, unknown>>,
  driverName: string,
): Device | string {
  return stringAttribute(attributes, `${driverName}/${ATTRIBUTE.deviceType}`) === DEVICE_TYPE.pf
    ? pfDeviceFromAttributes(name, attributes, driverName)
    : vfDeviceFromAttributes(name, attributes, driverName);
}

/** Every key read, or undefined with the missing ones appended to `missing`. */
function readAll<K extends string, T>(
  keys: readonly K[],
  read: (key: K) => T | undefined,
  missing: string[],
): Record<K, T> | undefined {
  const values = {} as Record<K, T>;
  let complete = true;
  for (const key of keys) {
    const value = read(key);
    if (value === undefined) {
      missing.push(key);
      complete = false;
    } else values[key] = value;
  }
  return complete ? values : undefined;
}

/** The member of a typed attribute value (`{string: ...}`, `{int: ...}`, `{bool: ...}`). */
function attributeMember(
  attributes: Readonly<Record<string, unknown>>,
  key: string,
  type: "string" | "int" | "bool",
): unknown {
  const attribute = Object.hasOwn(attributes, key) ? attributes[key] : undefined;
  return isRecord(attribute) ? attribute[type] : undefined;
}

export function stringAttribute(
  attributes: Readonly<Record<string, unknown>>,
  key: string,
): string | undefined {
  const value = attributeMember(attributes, key, "string");
  return typeof value === "string" ? value : undefined;
}

function intAttribute(
  attributes: Readonly<Record<string, unknown>>,
  key: string,
): number | undefined {
  const value = attributeMember(attributes, key, "int");
  return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
}

function boolAttribute(
  attributes: Readonly<Record<string, unknown>>,
  key: string,
): boolean | undefined {
  const value = attributeMember(attributes, key, "bool");
  return typeof value === "boolean" ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
