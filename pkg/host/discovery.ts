import fs from "node:fs";
import path from "node:path";
import { interfaceNameRule } from "../../api/v1alpha1/formats.js";
import {
  pciDevlinkHandle,
  type EswitchAnswer,
  type EswitchMode,
  type EswitchReader,
} from "./devlink.js";
import type { HostPaths } from "./paths.js";
import { isPciAddress } from "./pci-address.js";
import {
  isMissing,
  listDirectory,
  parseHexId,
  parseInteger,
  readAttribute,
  readLinkName,
} from "./sysfs.js";
import { messageOf } from "../../lib/util/errors.js";

export type LinkType = "ethernet" | "infiniband" | "unknown";
export type { EswitchMode } from "./devlink.js";

export interface DiscoveredVf {
  pciAddress: string;
  /** Index N of the PF's `virtfnN` link. */
  vfID: number;
  /** Driver the VF is bound to now; "" when unbound. */
  driver: string;
  iommuGroup: number | undefined;
  /** Kernel netdev name while bound to a network driver. */
  netdev: string | undefined;
  /** The VF has an RDMA device of its own now (none while it sits on vfio-pci). */
  rdmaCapable: boolean;
}

export interface DiscoveredPf {
  pciAddress: string;
  netdev: string | undefined;
  vendor: string;
  deviceID: string;
  driver: string;
  /** Vendor and device id of the PF's VFs (the same for every VF of a PF). */
  vfVendor: string;
  vfDeviceID: string;
  /** -1 when the platform has no NUMA information. */
  numaNode: number;
  /** Root complex the PF hangs off, e.g. `pci0000:3a`. */
  pcieRoot: string;
  linkType: LinkType;
  eswitchMode: EswitchMode;
  rdmaCapable: boolean;
  totalVfs: number;
  numVfs: number;
  vfs: DiscoveredVf[];
}

export interface DiscoveryWarning {
  path: string;
  message: string;
}

export interface HostInventory {
  pfs: DiscoveredPf[];
  /** Netdevs holding an address or route in the host network namespace. */
  hostUsedNetdevs: string[];
  warnings: DiscoveryWarning[];
}

/** Thrown for bad host data; discovery turns it into a warning and skips the device. */
class HostDataError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const NETWORK_CLASS = /^0x02[0-9a-f]{4}$/i;
const VIRTFN = /^virtfn(\d{1,5})$/;
const PCI_ROOT = /^pci[0-9a-f]{4,8}:[0-9a-f]{2}$/;
/** A kernel driver's name, as the link under /sys/bus/pci/drivers/ names it. */
const DRIVER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** SR-IOV counts are 16-bit (TotalVFs, NumVFs); NUMA nodes are -1 (none) up to 1023. */
const MAX_VF_COUNT = 65535;
const NUMA_NODES = { min: -1, max: 1023 };
const ARPHRD_INFINIBAND = "32";

/**
 * Every SR-IOV capable network PF and its VFs: sysfs under the host root (scanHostSysfs),
 * and each PF's e-switch mode as the kernel's devlink reports it. Where devlink has no
 * answer for a PF (no devlink instance, no devlink here, or a failure, which is a warning)
 * the mode stays what sysfs shows: MOFED's compat/devlink/mode, else legacy.
 */
export async function discoverHost(
  paths: HostPaths,
  readEswitch: EswitchReader,
): Promise<HostInventory> {
  const inventory = scanHostSysfs(paths);
  const answers = new Map<string, EswitchAnswer>();
  // One at a time: a host has a handful of PFs, and each is one short devlink run.
  for (const pf of inventory.pfs) {
    answers.set(pf.pciAddress, await readEswitch(pciDevlinkHandle(pf.pciAddress)));
  }
  return withEswitchAnswers(inventory, answers);
}

/**
 * The inventory with devlink's answers applied: a PF's reported mode replaces what sysfs
 * showed; a failure keeps it and adds a warning.
 */
export function withEswitchAnswers(
  inventory: HostInventory,
  answers: ReadonlyMap<string, EswitchAnswer>,
): HostInventory {
  const warnings = [...inventory.warnings];
  const pfs = inventory.pfs.map((pf) => {
    const answer = answers.get(pf.pciAddress);
    if (answer?.kind === "mode") return { ...pf, eswitchMode: answer.mode };
    if (answer?.kind === "failed") {
      warnings.push({
        path: `devlink dev eswitch show ${pciDevlinkHandle(pf.pciAddress)}`,
        message: `${answer.reason}; e-switch mode ${pf.eswitchMode} from sysfs`,
      });
    }
    return pf;
  });
  return { ...inventory, pfs, warnings };
}

/**
 * Reads every SR-IOV capable network PF and its VFs from sysfs under the host root; the
 * e-switch mode only as sysfs shows it (MOFED's compat/devlink/mode, else legacy):
 * discoverHost adds devlink's. Bad data for one PF or VF skips it with a warning naming
 * the path; only a host root without a PCI bus at all is an error.
 */
export function scanHostSysfs(paths: HostPaths): HostInventory {
  const addresses = listDirectory(paths.pciDevices);
  if (addresses === undefined) {
    throw new Error(
      `no PCI devices directory at ${paths.pciDevices}: is --host-root (${paths.root}) the host's root with /sys mounted?`,
    );
  }
  const warnings: DiscoveryWarning[] = [];
  const pfs: DiscoveredPf[] = [];
  for (const address of addresses.sort()) {
    const dir = path.join(paths.pciDevices, address);
    try {
      // Most PCI devices (VFs included) are no PF: test with access(2) rather than a read
      // that fails, since each failed read builds an exception and discovery visits every device.
      const totalVfsFile = path.join(dir, "sriov_totalvfs");
      if (!fs.existsSync(totalVfsFile)) continue;
      const totalVfs = readAttribute(totalVfsFile);
      if (totalVfs === undefined) continue;
      if (!NETWORK_CLASS.test(readAttribute(path.join(dir, "class")) ?? "")) continue;
      pfs.push(readPf(paths, address, dir, totalVfs, warnings));
    } catch (error) {
      warnings.push(toWarning(error, dir));
    }
  }
  const hostUsedNetdevs = readHostUsedNetdevs(paths, warnings);
  return { pfs, hostUsedNetdevs, warnings };
}

function readPf(
  paths: HostPaths,
  address: string,
  dir: string,
  totalVfsText: string,
  warnings: DiscoveryWarning[],
): DiscoveredPf {
  const netdev = pfNetdevOf(path.join(dir, "net"));
  if (netdev !== undefined && interfaceNameRule.check(netdev) !== undefined) {
    throw new HostDataError(
      path.join(dir, "net"),
      `${JSON.stringify(netdev)} is not an interface name`,
    );
  }
  const netDir = netdev === undefined ? undefined : path.join(dir, "net", netdev);
  const vfs = readVfs(paths, address, dir, warnings);
  // What all VFs of a PF share is read once per PF: the kernel reports the same values.
  const firstVfDir = vfs[0] && path.join(paths.pciDevices, vfs[0].pciAddress);
  const vfVendorFile = firstVfDir ? path.join(firstVfDir, "vendor") : path.join(dir, "vendor");
  const pf: DiscoveredPf = {
    pciAddress: address,
    netdev,
    vendor: requiredHex(path.join(dir, "vendor")),
    deviceID: requiredHex(path.join(dir, "device")),
    driver: readDriverName(path.join(dir, "driver")),
    vfVendor: requiredHex(vfVendorFile),
    vfDeviceID:
      parseHexId(readAttribute(path.join(dir, "sriov_vf_device"))) ??
      (firstVfDir ? requiredHex(path.join(firstVfDir, "device")) : ""),
    numaNode: requiredInteger(path.join(dir, "numa_node"), NUMA_NODES),
    pcieRoot: pcieRootOf(paths, dir),
    linkType: netDir ? linkTypeOf(readAttribute(path.join(netDir, "type"))) : "unknown",
    eswitchMode:
      netDir && readAttribute(path.join(netDir, "compat/devlink/mode")) === "switchdev"
        ? "switchdev"
        : "legacy",
    rdmaCapable: listDirectory(path.join(dir, "infiniband")) !== undefined,
    totalVfs: parseCount(path.join(dir, "sriov_totalvfs"), totalVfsText, VF_COUNTS),
    numVfs: requiredInteger(path.join(dir, "sriov_numvfs"), VF_COUNTS),
    vfs,
  };
  return pf;
}

function readVfs(
  paths: HostPaths,
  pfAddress: string,
  pfDir: string,
  warnings: DiscoveryWarning[],
): DiscoveredVf[] {
  const entries = listDirectory(pfDir);
  if (entries === undefined) throw new HostDataError(pfDir, "cannot list the PF directory");
  const vfs: DiscoveredVf[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const match = VIRTFN.exec(entry);
    if (!match) continue;
    const link = path.join(pfDir, entry);
    try {
      const vf = readVf(paths, pfAddress, link, Number(match[1]));
      if (seen.has(vf.pciAddress)) {
        throw new HostDataError(link, `${vf.pciAddress} is listed twice`);
      }
      seen.add(vf.pciAddress);
      vfs.push(vf);
    } catch (error) {
      warnings.push(toWarning(error, link));
    }
  }
  return vfs.sort((a, b) => a.vfID - b.vfID);
}

function readVf(
  paths: HostPaths,
  pfAddress: string,
  virtfnLink: string,
  vfID: number,
): DiscoveredVf {
  const pciAddress = readLinkName(virtfnLink);
  if (pciAddress === undefined || !isPciAddress(pciAddress)) {
    throw new HostDataError(virtfnLink, "link does not name a VF PCI address");
  }
  const dir = path.join(paths.pciDevices, pciAddress);
  if (!fs.existsSync(dir)) throw new HostDataError(virtfnLink, `dangling link: ${dir} is missing`);
  // The kernel links both ways: a VF's physfn names its PF. Anything else (a PF, another
  // PF's VF) must never be published, let alone prepared, as this PF's VF.
  const physfn = readLinkName(path.join(dir, "physfn"));
  if (physfn !== pfAddress) {
    throw new HostDataError(
      virtfnLink,
      `${pciAddress} is not a VF of ${pfAddress} (${physfn === undefined ? "it has no physfn" : `its physfn names ${physfn}`})`,
    );
  }
  const group = readLinkName(path.join(dir, "iommu_group"));
  const iommuGroup = parseInteger(group);
  if (group !== undefined && (iommuGroup === undefined || iommuGroup < 0)) {
    throw new HostDataError(path.join(dir, "iommu_group"), `"${group}" is not a group number`);
  }
  return {
    pciAddress,
    vfID,
    driver: readDriverName(path.join(dir, "driver")),
    iommuGroup,
    netdev: firstEntry(path.join(dir, "net")),
    rdmaCapable: listDirectory(path.join(dir, "infiniband")) !== undefined,
  };
}

/** The root complex is the first directory below /sys/devices on the device's real path. */
function pcieRootOf(paths: HostPaths, deviceDir: string): string {
  const devicesDir = fs.realpathSync(paths.at("/sys/devices"));
  const relative = path.relative(devicesDir, fs.realpathSync(deviceDir));
  const root = relative.split(path.sep)[0];
  // The kernel names a root complex pci<domain>:<bus> (pci0000:3a).
  if (root === undefined || !PCI_ROOT.test(root) || relative.startsWith("..")) {
    throw new HostDataError(deviceDir, `device path ${relative} is not below a PCI root complex`);
  }
  return root;
}

function linkTypeOf(arphrd: string | undefined): LinkType {
  if (arphrd === "1") return "ethernet";
  if (arphrd === ARPHRD_INFINIBAND) return "infiniband";
  return "unknown";
}

function firstEntry(dir: string): string | undefined {
  return listDirectory(dir)?.sort()[0];
}

/** The physical port name of an uplink (a PF's own port): p0, p1, ... */
const UPLINK_PORT_NAME = /^p\d+$/;

/**
 * The PF's own netdev. A PF can list several under net/: in switchdev mode the VF
 * representors (phys_port_name pf0vf3, ...) sit beside the uplink (p0). The uplink by its
 * physical port name, else (drivers without port names, one netdev) the first entry.
 */
function pfNetdevOf(netDir: string): string | undefined {
  const entries = listDirectory(netDir)?.sort();
  if (entries === undefined || entries.length <= 1) return entries?.[0];
  const uplink = entries.find((entry) =>
    UPLINK_PORT_NAME.test(readAttribute(path.join(netDir, entry, "phys_port_name")) ?? ""),
  );
  return uplink ?? entries[0];
}

/**
 * The driver a device is bound to: "" when unbound. The kernel's link points into
 * /sys/bus/pci/drivers/; any other target is corrupt data, never a name to publish.
 */
function readDriverName(link: string): string {
  let target: string;
  try {
    target = fs.readlinkSync(link);
  } catch (error) {
    if (isMissing(error)) return "";
    throw error;
  }
  const name = path.basename(target);
  if (path.basename(path.dirname(target)) !== "drivers" || !DRIVER_NAME.test(name)) {
    throw new HostDataError(link, `link ${JSON.stringify(target)} does not name a driver`);
  }
  return name;
}

function requiredHex(file: string): string {
  const text = readAttribute(file);
  const id = parseHexId(text);
  if (id === undefined) {
    throw new HostDataError(
      file,
      text === undefined ? "file is missing" : `"${text}" is not a 16-bit PCI id`,
    );
  }
  return id;
}

interface Range {
  min: number;
  max: number;
}

const VF_COUNTS: Range = { min: 0, max: MAX_VF_COUNT };

function requiredInteger(file: string, range: Range): number {
  const text = readAttribute(file);
  return parseCount(file, text, range);
}

function parseCount(file: string, text: string | undefined, range: Range): number {
  const value = parseInteger(text);
  if (value === undefined) {
    throw new HostDataError(
      file,
      text === undefined ? "file is missing" : `"${text}" is not a number`,
    );
  }
  if (value < range.min || value > range.max) {
    throw new HostDataError(file, `${value} is out of range (${range.min} to ${range.max})`);
  }
  return value;
}

function toWarning(error: unknown, fallbackPath: string): DiscoveryWarning {
  if (error instanceof HostDataError) return { path: error.path, message: error.message };
  const message = messageOf(error);
  return { path: fallbackPath, message };
}

/**
 * Netdevs the host itself uses: any with an IPv4 route, a non-link-local IPv6 address,
 * or a non-link-local IPv6 route in the host namespace. Link-local and multicast entries
 * exist on every interface that is up and say nothing about use. An IPv4 /32 address
 * without any route is not visible in procfs and is not detected.
 */
export function readHostUsedNetdevs(paths: HostPaths, warnings: DiscoveryWarning[]): string[] {
  const used = new Set<string>();
  const read = (name: string) => {
    const file = path.join(paths.procNet, name);
    try {
      const text = readAttribute(file);
      if (text === undefined)
        warnings.push({ path: file, message: "missing: cannot tell which VFs the host uses" });
      return text ?? "";
    } catch (error) {
      const message = messageOf(error);
      warnings.push({ path: file, message: `${message}: cannot tell which VFs the host uses` });
      return "";
    }
  };
  for (const ifname of ipv4RouteDevices(read("route"))) used.add(ifname);
  for (const ifname of ipv6AddressDevices(read("if_inet6"))) used.add(ifname);
  for (const ifname of ipv6RouteDevices(read("ipv6_route"))) used.add(ifname);
  return [...used].sort();
}

/** `/proc/net/route`: a header line, then `Iface Destination Gateway ...` rows. */
export function ipv4RouteDevices(text: string): string[] {
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((ifname) => ifname !== "");
}

/** `/proc/net/if_inet6`: `address ifindex prefixlen scope flags ifname`; scope 0x20 is link-local. */
export function ipv6AddressDevices(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length === 6 && fields[3] !== "20" && fields[3] !== "10")
    .map((fields) => fields[5]!);
}

/** `/proc/net/ipv6_route`: destination first, device name last. */
export function ipv6RouteDevices(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length === 10)
    .filter(([destination]) => !/^(fe80|ff|0{31}1$)/.test(destination!))
    .map((fields) => fields[9]!)
    .filter((ifname) => ifname !== "lo");
}
