import { parse } from "yaml";
import {
  formatPciAddress,
  isPciAddress,
  parsePciAddress,
  routingId,
  vfAddress,
} from "../host/pci-address.js";
import { messageOf } from "../../lib/util/errors.js";

export type LinkType = "ethernet" | "infiniband";
export type EswitchMode = "legacy" | "switchdev";

/**
 * One SR-IOV physical function and its VFs. After parsing every field is present; the
 * optional ones default to: `numaNode` -1 (no NUMA information), `pcieRoot`
 * `pci<domain>:00`, `linkType` ethernet, `eswitchMode` legacy, `numVfs` 0 (as after boot),
 * `vfStride` 1, `rdma` false, `vfDrivers` {} (every VF on `vfDriver`), `hostUsedVfs` [].
 */
export interface PfProfile {
  pciAddress: string;
  netdev: string;
  /** PF vendor and device id, 4 lower-case hex digits without 0x. VFs share the vendor. */
  vendor: string;
  deviceID: string;
  vfDeviceID: string;
  /** Driver bound to the PF. */
  driver: string;
  /** Driver the VFs bind to by default. */
  vfDriver: string;
  numaNode: number;
  /** Root complex the PF hangs off, e.g. `pci0000:3a`. */
  pcieRoot: string;
  linkType: LinkType;
  eswitchMode: EswitchMode;
  totalVfs: number;
  numVfs: number;
  /** PCI routing-id offset of VF 0 from the PF, and between VFs (SR-IOV capability). */
  vfOffset: number;
  vfStride: number;
  /** VFs expose an RDMA device (`infiniband/mlx5_<n>`) while bound to mlx5_core. */
  rdma: boolean;
  /** VF index → driver, for VFs bound elsewhere than `vfDriver` when the host is built. */
  vfDrivers: Readonly<Record<number, string>>;
  /** VF indexes whose netdev the host itself uses (an address and route in the host namespace). */
  hostUsedVfs: readonly number[];
}

/**
 * A PCI device that is not an SR-IOV PF; discovery must ignore it. Defaults: `numaNode`
 * -1, `pcieRoot` `pci<domain>:00`, `netdev` none (no network interface).
 */
export interface OtherDeviceProfile {
  pciAddress: string;
  vendor: string;
  deviceID: string;
  /** PCI class code, e.g. `0x020000` (Ethernet controller). */
  class: string;
  driver: string;
  netdev: string | undefined;
  numaNode: number;
  pcieRoot: string;
}

export interface HostProfile {
  pfs: readonly PfProfile[];
  otherDevices: readonly OtherDeviceProfile[];
  /**
   * Sets of PCI addresses (PFs, VFs up to totalVfs, other devices) that share one IOMMU
   * group, as functions without ACS or devices behind a bridge without ACS do. Every other
   * device has a group of its own. Optional; none by default.
   */
  sharedIommuGroups?: readonly (readonly string[])[];
}

/** Thrown for a profile that does not validate; the message lists every problem with its path. */
export class ProfileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(
      `invalid emulator profile ${source}:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`,
    );
  }
}

/**
 * The only driver with `net/<pf>/compat/devlink/mode`, MOFED's mlx5_core: the file through
 * which the emulator shows an eswitch mode. Discovery asks devlink first and reads the file
 * where the kernel has no devlink instance for the PF, as for every emulated PF.
 */
export const COMPAT_DEVLINK_DRIVER = "mlx5_core";

/** Largest Linux interface name: IFNAMSIZ (16) minus the terminating NUL. */
const MAX_NETDEV_BYTES = 15;

/** Name of the netdev of VF `index` of a PF, as systemd's naming scheme gives it. */
export function vfNetdevName(pfNetdev: string, index: number): string {
  return `${pfNetdev}v${index}`;
}

/** PCI address of VF `index` of a PF. */
export function vfPciAddress(pf: PfProfile, index: number): string {
  return formatPciAddress(
    vfAddress(parsePciAddress(pf.pciAddress), pf.vfOffset, pf.vfStride, index),
  );
}

/** Parses and validates a YAML profile; `source` (a file name) prefixes every error. */
export function parseProfile(text: string, source: string): HostProfile {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    const reason = messageOf(error);
    throw new ProfileError(source, [`not valid YAML: ${reason}`]);
  }
  return validateProfile(document, source);
}

type Check<T> = (value: unknown) => { value: T } | { error: string };

const PF_FIELDS = [
  "pciAddress",
  "netdev",
  "vendor",
  "deviceID",
  "vfDeviceID",
  "driver",
  "vfDriver",
  "numaNode",
  "pcieRoot",
  "linkType",
  "eswitchMode",
  "totalVfs",
  "numVfs",
  "vfOffset",
  "vfStride",
  "rdma",
  "vfDrivers",
  "hostUsedVfs",
] as const satisfies readonly (keyof PfProfile)[];

const OTHER_DEVICE_FIELDS = [
  "pciAddress",
  "vendor",
  "deviceID",
  "class",
  "driver",
  "netdev",
  "numaNode",
  "pcieRoot",
] as const satisfies readonly (keyof OtherDeviceProfile)[];

/** Validates an already parsed profile document (YAML or a TypeScript literal). */
export function validateProfile(document: unknown, source: string): HostProfile {
  const reader = new FieldReader();
  const top = reader.object(document, "", ["pfs", "otherDevices", "sharedIommuGroups"]);
  const pfs = reader
    .list(top, "pfs", true)
    .map(([value, at]) => readPf(reader, value, at))
    .filter((pf) => pf !== undefined);
  const otherDevices = reader
    .list(top, "otherDevices", false)
    .map(([value, at]) => readOtherDevice(reader, value, at))
    .filter((device) => device !== undefined);
  const sharedIommuGroups = reader.list(top, "sharedIommuGroups", false).map(([value, at]) => {
    const group = addressSet(value);
    if ("value" in group) return group.value;
    reader.problem(at, group.error);
    return [];
  });
  if (reader.problems.length === 0) {
    const owners = checkHostWide(reader, pfs, otherDevices);
    checkSharedIommuGroups(reader, sharedIommuGroups, owners);
  }
  if (reader.problems.length > 0) throw new ProfileError(source, reader.problems);
  return { pfs, otherDevices, ...(sharedIommuGroups.length > 0 ? { sharedIommuGroups } : {}) };
}

function readPf(reader: FieldReader, value: unknown, at: string): PfProfile | undefined {
  const object = reader.object(value, at, PF_FIELDS);
  if (object === undefined) return undefined;
  const field = <T>(name: (typeof PF_FIELDS)[number], check: Check<T>, fallback?: T) =>
    reader.field(object, at, name, check, fallback);
  const pciAddress = field("pciAddress", pciAddressText);
  const pf = {
    pciAddress,
    netdev: field("netdev", netdevName),
    vendor: field("vendor", hexId),
    deviceID: field("deviceID", hexId),
    vfDeviceID: field("vfDeviceID", hexId),
    driver: field("driver", driverName),
    vfDriver: field("vfDriver", driverName),
    numaNode: field("numaNode", integer(-1, 1023), -1),
    pcieRoot: field("pcieRoot", pcieRootText, defaultPcieRoot(pciAddress)),
    linkType: field("linkType", oneOf(["ethernet", "infiniband"] as const), "ethernet"),
    eswitchMode: field("eswitchMode", oneOf(["legacy", "switchdev"] as const), "legacy"),
    totalVfs: field("totalVfs", integer(1, 2048)),
    numVfs: field("numVfs", integer(0, 2048), 0),
    vfOffset: field("vfOffset", integer(1, 0xffff)),
    vfStride: field("vfStride", integer(1, 0xffff), 1),
    rdma: field("rdma", boolean, false),
    vfDrivers: field("vfDrivers", vfDriverMap, {}),
    hostUsedVfs: field("hostUsedVfs", indexList, []),
  };
  if (!isComplete(pf)) return undefined;
  checkPf(reader, pf, at);
  return pf;
}

function readOtherDevice(
  reader: FieldReader,
  value: unknown,
  at: string,
): OtherDeviceProfile | undefined {
  const object = reader.object(value, at, OTHER_DEVICE_FIELDS);
  if (object === undefined) return undefined;
  const field = <T>(name: (typeof OTHER_DEVICE_FIELDS)[number], check: Check<T>, fallback?: T) =>
    reader.field(object, at, name, check, fallback);
  const pciAddress = field("pciAddress", pciAddressText);
  const device = {
    pciAddress,
    vendor: field("vendor", hexId),
    deviceID: field("deviceID", hexId),
    class: field("class", classCode),
    driver: field("driver", driverName),
    numaNode: field("numaNode", integer(-1, 1023), -1),
    pcieRoot: field("pcieRoot", pcieRootText, defaultPcieRoot(pciAddress)),
  };
  const netdev = object["netdev"] === undefined ? undefined : field("netdev", netdevName);
  if (!isComplete(device) || (object["netdev"] !== undefined && netdev === undefined)) {
    return undefined;
  }
  checkPcieRoot(reader, device, at);
  return { ...device, netdev };
}

function checkPf(reader: FieldReader, pf: PfProfile, at: string): void {
  checkPcieRoot(reader, pf, at);
  if (pf.eswitchMode === "switchdev" && pf.driver !== COMPAT_DEVLINK_DRIVER) {
    reader.problem(
      `${at}.eswitchMode`,
      `switchdev shows only in compat/devlink/mode, which only ${COMPAT_DEVLINK_DRIVER} has, not ${pf.driver}`,
    );
  }
  if (pf.numVfs > pf.totalVfs) {
    reader.problem(`${at}.numVfs`, `${pf.numVfs} is above totalVfs ${pf.totalVfs}`);
  }
  const lastVfName = vfNetdevName(pf.netdev, pf.totalVfs - 1);
  if (Buffer.byteLength(lastVfName) > MAX_NETDEV_BYTES) {
    reader.problem(
      `${at}.netdev`,
      `VF netdev names like "${lastVfName}" would exceed ${MAX_NETDEV_BYTES} bytes: use a shorter PF name`,
    );
  }
  for (const [index, driver] of Object.entries(pf.vfDrivers)) {
    if (Number(index) >= pf.numVfs) {
      reader.problem(
        `${at}.vfDrivers.${index}`,
        `VF ${index} does not exist with numVfs ${pf.numVfs}`,
      );
    }
    if (driver === pf.vfDriver) {
      reader.problem(`${at}.vfDrivers.${index}`, `"${driver}" is already the vfDriver: drop it`);
    }
  }
  pf.hostUsedVfs.forEach((index, position) => {
    const path = `${at}.hostUsedVfs[${position}]`;
    if (index >= pf.numVfs) {
      reader.problem(path, `VF ${index} does not exist with numVfs ${pf.numVfs}`);
    } else if (vfDriverOf(pf, index) === "vfio-pci") {
      reader.problem(path, `VF ${index} is bound to vfio-pci and has no netdev the host could use`);
    }
    if (pf.hostUsedVfs.indexOf(index) !== position)
      reader.problem(path, `VF ${index} is listed twice`);
  });
  const lastRoutingId =
    routingId(parsePciAddress(pf.pciAddress)) + pf.vfOffset + (pf.totalVfs - 1) * pf.vfStride;
  if (lastRoutingId > 0xffff) {
    reader.problem(
      `${at}.totalVfs`,
      `VF ${pf.totalVfs - 1} would be past bus ff with vfOffset ${pf.vfOffset} and vfStride ${pf.vfStride}`,
    );
  }
}

/** Driver VF `index` is bound to when the host is built. */
export function vfDriverOf(pf: PfProfile, index: number): string {
  return pf.vfDrivers[index] ?? pf.vfDriver;
}

function checkPcieRoot(
  reader: FieldReader,
  device: { pciAddress: string; pcieRoot: string },
  at: string,
): void {
  const address = parsePciAddress(device.pciAddress);
  const rootDomain = parseInt(device.pcieRoot.slice(3, 7), 16);
  const rootBus = parseInt(device.pcieRoot.slice(8, 10), 16);
  if (rootDomain !== address.domain || rootBus > address.bus) {
    reader.problem(
      `${at}.pcieRoot`,
      `${device.pcieRoot} cannot hold ${device.pciAddress}: the root's domain must match and its bus be at or below the device's`,
    );
  }
}

/**
 * Addresses and netdev names must be unique host-wide, counting every VF up to totalVfs, and
 * device 00 of a root bus is its host bridge. Returns every device address with its owner.
 */
function checkHostWide(
  reader: FieldReader,
  pfs: readonly PfProfile[],
  otherDevices: readonly OtherDeviceProfile[],
): ReadonlyMap<string, string> {
  const addressOwners = new Map<string, string>();
  const claimAddress = (address: string, owner: string) => {
    const previous = addressOwners.get(address);
    if (previous === undefined) addressOwners.set(address, owner);
    else reader.problem(owner, `PCI address ${address} collides with ${previous}`);
  };
  const netdevOwners = new Map<string, string>();
  const claimNetdev = (name: string, owner: string) => {
    const previous = netdevOwners.get(name);
    if (previous === undefined) netdevOwners.set(name, owner);
    else reader.problem(owner, `netdev name ${name} collides with ${previous}`);
  };
  pfs.forEach((pf, i) => {
    claimAddress(pf.pciAddress, `pfs[${i}].pciAddress`);
    claimNetdev(pf.netdev, `pfs[${i}].netdev`);
    checkNotHostBridge(reader, pf, `pfs[${i}].pciAddress`);
  });
  otherDevices.forEach((device, i) => {
    claimAddress(device.pciAddress, `otherDevices[${i}].pciAddress`);
    if (device.netdev !== undefined) claimNetdev(device.netdev, `otherDevices[${i}].netdev`);
    checkNotHostBridge(reader, device, `otherDevices[${i}].pciAddress`);
  });
  pfs.forEach((pf, i) => {
    for (let index = 0; index < pf.totalVfs; index++) {
      const owner = `pfs[${i}] VF ${index}`;
      claimAddress(vfPciAddress(pf, index), owner);
      claimNetdev(vfNetdevName(pf.netdev, index), owner);
    }
  });
  return addressOwners;
}

function checkNotHostBridge(
  reader: FieldReader,
  device: { pciAddress: string; pcieRoot: string },
  at: string,
): void {
  const address = parsePciAddress(device.pciAddress);
  if (address.device === 0 && address.bus === parseInt(device.pcieRoot.slice(8, 10), 16)) {
    reader.problem(
      at,
      `${device.pciAddress} is device 00 of root bus ${device.pcieRoot}, where its host bridge sits: use another device number`,
    );
  }
}

/** Each shared group names devices of the profile, two or more, each in one group only. */
function checkSharedIommuGroups(
  reader: FieldReader,
  groups: readonly (readonly string[])[],
  owners: ReadonlyMap<string, string>,
): void {
  const groupOf = new Map<string, number>();
  groups.forEach((group, i) => {
    const at = `sharedIommuGroups[${i}]`;
    if (new Set(group).size < 2) reader.problem(at, "a shared group needs two or more devices");
    for (const address of group) {
      if (!owners.has(address)) {
        reader.problem(at, `${address} is no PF, VF or other device of this profile`);
      }
      const other = groupOf.get(address);
      if (other !== undefined && other !== i) {
        reader.problem(at, `${address} is already in sharedIommuGroups[${other}]`);
      }
      groupOf.set(address, i);
    }
  });
}

/** Bus 00 of the device's domain; a device without a valid address is reported anyway. */
function defaultPcieRoot(pciAddress: string | undefined): string {
  return `pci${pciAddress?.slice(0, 4) ?? "0000"}:00`;
}

function isComplete<T extends object>(
  record: T,
): record is { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.values(record).every((value) => value !== undefined);
}

/** Collects problems with their field paths while reading a document of unknown shape. */
class FieldReader {
  readonly problems: string[] = [];

  problem(path: string, message: string): void {
    this.problems.push(`${path || "(top level)"}: ${message}`);
  }

  /** A mapping with only `known` keys, or undefined (with the problem noted). */
  object(
    value: unknown,
    path: string,
    known: readonly string[],
  ): Record<string, unknown> | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.problem(path, `must be a mapping, got ${describe(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) {
        this.problem(join(path, key), `unknown field (known fields: ${known.join(", ")})`);
      }
    }
    return value as Record<string, unknown>;
  }

  list(
    object: Record<string, unknown> | undefined,
    key: string,
    required: boolean,
  ): [unknown, string][] {
    const value = object?.[key];
    if (object === undefined || (value === undefined && !required)) return [];
    if (!Array.isArray(value)) {
      this.problem(key, `must be a list, got ${describe(value)}`);
      return [];
    }
    return value.map((item, i): [unknown, string] => [item, `${key}[${i}]`]);
  }

  field<T>(
    object: Record<string, unknown>,
    path: string,
    key: string,
    check: Check<T>,
    fallback?: T,
  ): T | undefined {
    const value = object[key];
    if (value === undefined || value === null) {
      if (fallback === undefined) this.problem(join(path, key), "required field is missing");
      return fallback;
    }
    const result = check(value);
    if ("error" in result) {
      this.problem(join(path, key), result.error);
      return undefined;
    }
    return result.value;
  }
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

const matching =
  (pattern: RegExp, expected: string): Check<string> =>
  (value) =>
    typeof value === "string" && pattern.test(value)
      ? { value }
      : { error: `must be ${expected}, got ${describe(value)}` };

const hexId = matching(/^[0-9a-f]{4}$/, 'a quoted 4-digit lower-case hex id like "8086"');
const driverName = matching(/^[A-Za-z0-9_.-]{1,64}$/, "a kernel driver name like iavf");
const pcieRootText = matching(/^pci[0-9a-f]{4}:[0-9a-f]{2}$/, 'a root complex like "pci0000:3a"');
const classCode = matching(/^0x[0-9a-f]{6}$/, 'a PCI class code like "0x020000"');

const pciAddressText: Check<string> = (value) =>
  typeof value === "string" && isPciAddress(value)
    ? { value }
    : { error: `must be a quoted PCI address like "0000:3b:00.0", got ${describe(value)}` };

const netdevName: Check<string> = (value) => {
  if (typeof value !== "string" || !/^[^\s/:]+$/.test(value) || value === "." || value === "..") {
    return { error: `must be an interface name (no spaces, "/" or ":"), got ${describe(value)}` };
  }
  if (Buffer.byteLength(value) > MAX_NETDEV_BYTES) {
    return { error: `"${value}" is longer than the kernel's ${MAX_NETDEV_BYTES}-byte limit` };
  }
  return { value };
};

const boolean: Check<boolean> = (value) =>
  typeof value === "boolean"
    ? { value }
    : { error: `must be true or false, got ${describe(value)}` };

const integer =
  (min: number, max: number): Check<number> =>
  (value) =>
    typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
      ? { value }
      : { error: `must be an integer from ${min} to ${max}, got ${describe(value)}` };

const oneOf =
  <T extends string>(choices: readonly T[]): Check<T> =>
  (value) =>
    choices.includes(value as T)
      ? { value: value as T }
      : { error: `must be one of ${choices.join(", ")}, got ${describe(value)}` };

const vfIndex = integer(0, 2047);

const addressSet: Check<string[]> = (value) =>
  Array.isArray(value) && value.every((item) => "value" in pciAddressText(item))
    ? { value: value as string[] }
    : { error: `must be a list of quoted PCI addresses, got ${describe(value)}` };

const indexList: Check<number[]> = (value) => {
  if (!Array.isArray(value))
    return { error: `must be a list of VF indexes, got ${describe(value)}` };
  const indexes: number[] = [];
  for (const item of value) {
    const result = vfIndex(item);
    if ("error" in result) return { error: `every entry ${result.error}` };
    indexes.push(result.value);
  }
  return { value: indexes };
};

const vfDriverMap: Check<Record<number, string>> = (value) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { error: `must map VF indexes to drivers, like {3: vfio-pci}; got ${describe(value)}` };
  }
  const drivers: Record<number, string> = {};
  for (const [key, driver] of Object.entries(value)) {
    const index = /^\d+$/.test(key) ? Number(key) : NaN;
    const name = driverName(driver);
    if (!Number.isInteger(index)) return { error: `key "${key}" is not a VF index` };
    if ("error" in name) return { error: `VF ${key}: ${name.error}` };
    drivers[index] = name.value;
  }
  return { value: drivers };
};
