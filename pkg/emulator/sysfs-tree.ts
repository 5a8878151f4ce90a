import fs from "node:fs";
import path from "node:path";
import { parsePciAddress, routingId } from "../host/pci-address.js";
import type { DeviceSpec } from "./layout.js";
import { COMPAT_DEVLINK_DRIVER } from "./profile.js";
import { hardwareAddress, hasNetdev, rdmaDevicePrefix } from "./layout.js";

const ARPHRD_ETHER = 1;
const ARPHRD_INFINIBAND = 32;
const ARPHRD_LOOPBACK = 772;
/** What sysfs prints for a driver_override that is not set. */
const NO_OVERRIDE = "(null)";
/** sysfs file modes as the kernel sets them: read-only attributes, and ones root may write. */
const READ_ONLY = 0o444;
const READ_WRITE = 0o644;
/** A netdev's `flags`: IFF_UP | IFF_BROADCAST | IFF_MULTICAST, and without IFF_UP. */
const FLAGS_UP = "0x1003";
const FLAGS_DOWN = "0x1002";
/** Where the emulated host keeps which PFs' cables are unplugged (PCI addresses, one a line). */
export const UNPLUGGED_CABLES_FILE = ".dra-sriov-emulated-unplugged";

/**
 * A netdev's link: administratively up (`ip link set up`, IFF_UP) and with a cable that
 * carries a link. What sysfs shows for each, as the igb PF on a real kernel showed it
 * (test/real-kernel/link.test.ts):
 *
 * | state                       | carrier                | operstate | flags    |
 * | --------------------------- | ---------------------- | --------- | -------- |
 * | administratively down       | read fails with EINVAL | `down`    | `0x1002` |
 * | up, link                    | `1`                    | `up`      | `0x1003` |
 * | up, cable unplugged         | `0`                    | `down`    | `0x1003` |
 *
 * A regular file cannot fail a read with EINVAL: here `carrier` is absent while the netdev
 * is down, so a reader gets no value either way and goes by operstate.
 */
export interface LinkState {
  adminUp: boolean;
  cablePlugged: boolean;
}

/** A write the kernel answers: each driver's bind and unbind, and the bus's drivers_probe. */
export interface ControlFile {
  path: string;
  action: "bind" | "unbind" | "probe";
  /** The driver a bind/unbind file belongs to. */
  driver: string | undefined;
}

/**
 * Synchronous edits of the emulated `/sys` as the kernel would make them: device
 * directories with their attributes, and every link between them RELATIVE, so the tree
 * means the same under any root. Everything here is a few syscalls; the synchronous calls
 * keep each change atomic with respect to the event loop.
 */
export class SysfsTree {
  private readonly sys: string;

  private readonly unpluggedFile: string;

  constructor(root: string) {
    this.sys = path.join(root, "sys");
    this.unpluggedFile = path.join(root, UNPLUGGED_CABLES_FILE);
  }

  private at(...parts: string[]): string {
    return path.join(this.sys, ...parts);
  }

  deviceDir(device: DeviceSpec): string {
    return this.at("devices", device.devicePath);
  }

  private busLink(address: string): string {
    return this.at("bus/pci/devices", address);
  }

  private driverDir(driver: string): string {
    return this.at("bus/pci/drivers", driver);
  }

  controlFiles(drivers: readonly string[]): ControlFile[] {
    return [
      ...drivers.flatMap((driver): ControlFile[] => [
        { path: path.join(this.driverDir(driver), "bind"), action: "bind", driver },
        { path: path.join(this.driverDir(driver), "unbind"), action: "unbind", driver },
      ]),
      { path: this.at("bus/pci/drivers_probe"), action: "probe", driver: undefined },
    ];
  }

  /** Bus, class and IOMMU directories, one directory per driver, and the loopback netdev. */
  createSkeleton(drivers: readonly string[]): void {
    for (const dir of ["bus/pci/devices", "class/net", "class/infiniband", "kernel/iommu_groups"]) {
      fs.mkdirSync(this.at(dir), { recursive: true });
    }
    for (const driver of drivers) fs.mkdirSync(this.driverDir(driver), { recursive: true });
    for (const control of this.controlFiles(drivers)) fs.writeFileSync(control.path, "");
    fs.writeFileSync(this.at("bus/pci/drivers_autoprobe"), "1\n");
    const lo = this.at("devices/virtual/net/lo");
    fs.mkdirSync(lo, { recursive: true });
    writeAttributes(lo, {
      address: "00:00:00:00:00:00",
      type: ARPHRD_LOOPBACK,
      operstate: "unknown",
      mtu: 65536,
    });
    relativeLink(lo, this.at("class/net/lo"));
  }

  /**
   * Creates an unbound device in IOMMU group `iommuGroup` (made if new); a VF also gets
   * physfn and the PF's virtfnN. Attributes carry the kernel's modes.
   */
  addDevice(device: DeviceSpec, iommuGroup: number): void {
    const dir = this.deviceDir(device);
    fs.mkdirSync(dir, { recursive: true });
    writeAttributes(dir, pciIdentity(device), READ_ONLY);
    writeAttributes(dir, { numa_node: device.numaNode, driver_override: NO_OVERRIDE, enable: 0 });
    fs.writeFileSync(path.join(dir, "config"), configSpace(device), { mode: READ_WRITE });
    this.writeUevent(device, undefined);
    const pf = device.sriov;
    if (pf !== undefined) {
      writeAttributes(
        dir,
        {
          sriov_totalvfs: pf.totalVfs,
          sriov_offset: pf.vfOffset,
          sriov_stride: pf.vfStride,
          // The kernel prints the VF device id as bare hex, unlike `device`.
          sriov_vf_device: pf.vfDeviceID,
        },
        READ_ONLY,
      );
      writeAttributes(dir, { sriov_numvfs: 0, sriov_drivers_autoprobe: 1 });
    }
    relativeLink(this.at("bus/pci"), path.join(dir, "subsystem"));
    relativeLink(dir, this.busLink(device.address));
    const group = this.at("kernel/iommu_groups", String(iommuGroup));
    fs.mkdirSync(path.join(group, "devices"), { recursive: true });
    relativeLink(dir, path.join(group, "devices", device.address));
    relativeLink(group, path.join(dir, "iommu_group"));
    if (device.physfn !== undefined) {
      const pfDir = path.join(path.dirname(dir), device.physfn.address);
      relativeLink(pfDir, path.join(dir, "physfn"));
      relativeLink(dir, path.join(pfDir, `virtfn${device.physfn.index}`));
    }
  }

  /** Removes an unbound device and the links to it, and its IOMMU group if it was the last in it. */
  removeDevice(device: DeviceSpec): void {
    const dir = this.deviceDir(device);
    const group = this.iommuGroupOf(device.address);
    if (group !== undefined) {
      const groupDir = this.at("kernel/iommu_groups", String(group));
      fs.rmSync(path.join(groupDir, "devices", device.address), { force: true });
      if (listDirectory(path.join(groupDir, "devices")).length === 0) {
        fs.rmSync(groupDir, { recursive: true, force: true });
      }
    }
    fs.rmSync(this.busLink(device.address), { force: true });
    if (device.physfn !== undefined) {
      const pfDir = path.join(path.dirname(dir), device.physfn.address);
      fs.rmSync(path.join(pfDir, `virtfn${device.physfn.index}`), { force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }

  /**
   * Links device and driver; a network driver brings the netdev, the native one an RDMA
   * device. The `driver` link comes last: the kernel adds it before the driver's probe runs
   * but returns the writer's write() after the probe, which a FIFO cannot do, so here
   * whoever sees the link sees what a writer sees once its write returned.
   */
  bind(device: DeviceSpec, driver: string): void {
    const dir = this.deviceDir(device);
    if (hasNetdev(device, driver)) this.createNetdev(device, dir);
    const rdmaPrefix = rdmaDevicePrefix(device, driver);
    if (rdmaPrefix !== undefined) this.createRdmaDevice(device, dir, rdmaPrefix);
    writeAttributes(dir, { enable: 1 });
    this.writeUevent(device, driver);
    relativeLink(dir, path.join(this.driverDir(driver), device.address));
    relativeLink(this.driverDir(driver), path.join(dir, "driver"));
  }

  /** Undoes `bind`, the `driver` link last; an unbound device is left as it is. */
  unbind(device: DeviceSpec): void {
    const driver = this.driverOf(device.address);
    if (driver === undefined) return;
    const dir = this.deviceDir(device);
    for (const [subdir, classDir] of [
      ["net", "class/net"],
      ["infiniband", "class/infiniband"],
    ] as const) {
      for (const name of listDirectory(path.join(dir, subdir))) {
        fs.rmSync(this.at(classDir, name), { force: true });
      }
      fs.rmSync(path.join(dir, subdir), { recursive: true, force: true });
    }
    writeAttributes(dir, { enable: 0 });
    this.writeUevent(device, undefined);
    fs.rmSync(path.join(this.driverDir(driver), device.address), { force: true });
    fs.rmSync(path.join(dir, "driver"));
  }

  /** `uevent` as the kernel generates it on read: DRIVER= only while bound. */
  private writeUevent(device: DeviceSpec, driver: string | undefined): void {
    const { vendor, deviceID, subsystemVendor, subsystemDevice } = pciIds(device);
    const lines = [
      ...(driver === undefined ? [] : [`DRIVER=${driver}`]),
      `PCI_CLASS=${parseInt(device.classCode, 16).toString(16).toUpperCase()}`,
      `PCI_ID=${vendor}:${deviceID}`,
      `PCI_SUBSYS_ID=${subsystemVendor}:${subsystemDevice}`,
      `PCI_SLOT_NAME=${device.address}`,
      `MODALIAS=${modalias(device)}`,
    ];
    fs.writeFileSync(path.join(this.deviceDir(device), "uevent"), `${lines.join("\n")}\n`, {
      mode: READ_WRITE,
    });
  }

  private netdevDir(device: DeviceSpec): string {
    return path.join(this.deviceDir(device), "net", device.netdev!);
  }

  /** Whether the device has its netdev now (bound to a network driver). */
  hasNetdev(device: DeviceSpec): boolean {
    return device.netdev !== undefined && fs.existsSync(this.netdevDir(device));
  }

  /** Shows a netdev's link state in its carrier, operstate and flags. */
  writeLink(device: DeviceSpec, state: LinkState): void {
    const netDir = this.netdevDir(device);
    writeAttributes(netDir, {
      operstate: state.adminUp && state.cablePlugged ? "up" : "down",
      flags: state.adminUp ? FLAGS_UP : FLAGS_DOWN,
    });
    if (state.adminUp) writeAttributes(netDir, { carrier: state.cablePlugged ? 1 : 0 });
    else fs.rmSync(path.join(netDir, "carrier"), { force: true });
  }

  /** A netdev's link state as its files show it (the cable from the unplugged list). */
  linkOf(device: DeviceSpec): LinkState {
    const netDir = this.netdevDir(device);
    const flags = readText(path.join(netDir, "flags"));
    return {
      adminUp:
        flags === undefined
          ? readText(path.join(netDir, "operstate"))?.trim() === "up"
          : (parseInt(flags, 16) & 1) === 1,
      cablePlugged: !this.unpluggedCables().has(device.address),
    };
  }

  /** PCI addresses of the PFs whose cable is unplugged; it stays so across unbind and bind. */
  unpluggedCables(): Set<string> {
    return new Set(
      readText(this.unpluggedFile)
        ?.split("\n")
        .filter((line) => line !== ""),
    );
  }

  setCablePlugged(device: DeviceSpec, plugged: boolean): void {
    const unplugged = this.unpluggedCables();
    if (plugged) unplugged.delete(device.address);
    else unplugged.add(device.address);
    fs.writeFileSync(this.unpluggedFile, [...unplugged].map((address) => `${address}\n`).join(""));
  }

  private createNetdev(device: DeviceSpec, dir: string): void {
    const netDir = path.join(dir, "net", device.netdev!);
    fs.mkdirSync(netDir, { recursive: true });
    const infiniband = device.linkType === "infiniband";
    writeAttributes(netDir, {
      address: hardwareAddress(device),
      type: infiniband ? ARPHRD_INFINIBAND : ARPHRD_ETHER,
      mtu: infiniband ? 2044 : 1500,
    });
    // A PF carries the node's uplink; nothing has configured a fresh VF yet.
    this.writeLink(device, {
      adminUp: device.role !== "vf",
      cablePlugged: !this.unpluggedCables().has(device.address),
    });
    // Literal rather than computed: `../..` would resolve alike but not name the device.
    fs.symlinkSync(`../../../${device.address}`, path.join(netDir, "device"));
    if (device.sriov !== undefined && device.nativeDriver === COMPAT_DEVLINK_DRIVER) {
      fs.mkdirSync(path.join(netDir, "compat/devlink"), { recursive: true });
      writeAttributes(path.join(netDir, "compat/devlink"), { mode: device.sriov.eswitchMode });
    }
    relativeLink(netDir, this.at("class/net", device.netdev!));
  }

  /** RDMA devices are named `<prefix>_<n>` with the lowest n free host-wide, as ib_core does. */
  private createRdmaDevice(device: DeviceSpec, dir: string, prefix: string): void {
    const taken = new Set(listDirectory(this.at("class/infiniband")));
    let index = 0;
    while (taken.has(`${prefix}_${index}`)) index++;
    const name = `${prefix}_${index}`;
    const ibDir = path.join(dir, "infiniband", name);
    fs.mkdirSync(path.join(ibDir, "ports/1"), { recursive: true });
    writeAttributes(ibDir, {
      node_type: "1: CA",
      node_guid: device.mac
        .split(":")
        .join("")
        .padEnd(16, "0")
        .replace(/(.{4})(?!$)/g, "$1:"),
    });
    writeAttributes(path.join(ibDir, "ports/1"), {
      link_layer: device.linkType === "infiniband" ? "InfiniBand" : "Ethernet",
    });
    relativeLink(ibDir, this.at("class/infiniband", name));
  }

  isPresent(address: string): boolean {
    return fs.existsSync(this.busLink(address));
  }

  driverOf(address: string): string | undefined {
    return readLinkName(path.join(this.busLink(address), "driver"));
  }

  iommuGroupOf(address: string): number | undefined {
    const group = readLinkName(path.join(this.busLink(address), "iommu_group"));
    return group === undefined ? undefined : Number(group);
  }

  /** The driver_override, undefined when not set ("(null)", or cleared with "" or "\n"). */
  driverOverride(address: string): string | undefined {
    this.showClearedOverride(address);
    const text = readText(this.overrideFile(address))?.trim();
    return text === undefined || text === "" || text === NO_OVERRIDE ? undefined : text;
  }

  /** Writes driver_override as the kernel prints it; undefined clears it. */
  setDriverOverride(address: string, driver: string | undefined): void {
    fs.writeFileSync(this.overrideFile(address), `${driver ?? NO_OVERRIDE}\n`);
  }

  /**
   * Puts a cleared driver_override ("\n") back to "(null)", as the kernel prints no
   * override. An empty file is left: it is a writer's O_TRUNC with its write still to come,
   * which a rewrite now would garble.
   */
  showClearedOverride(address: string): void {
    const file = this.overrideFile(address);
    const text = readText(file);
    if (text !== undefined && text !== "" && text.trim() === "") {
      fs.writeFileSync(file, `${NO_OVERRIDE}\n`);
    }
  }

  private overrideFile(address: string): string {
    return path.join(this.busLink(address), "driver_override");
  }

  /** VFs a PF has, counted by its virtfnN links. */
  vfCount(pf: DeviceSpec): number {
    return listDirectory(this.deviceDir(pf)).filter((name) => name.startsWith("virtfn")).length;
  }

  numVfsFile(pf: DeviceSpec): string {
    return path.join(this.deviceDir(pf), "sriov_numvfs");
  }

  /** Whether new VFs are bound to a driver: the PF's sriov_drivers_autoprobe. */
  autoprobesVfs(pf: DeviceSpec): boolean {
    return readText(path.join(this.deviceDir(pf), "sriov_drivers_autoprobe"))?.trim() !== "0";
  }

  /** IOMMU group numbers in use. */
  iommuGroups(): number[] {
    return listDirectory(this.at("kernel/iommu_groups")).map(Number);
  }

  /** The PCI addresses in an IOMMU group. */
  iommuGroupDevices(group: number): string[] {
    return listDirectory(this.at("kernel/iommu_groups", String(group), "devices"));
  }
}

/**
 * sysfs attributes: one value per file, newline-terminated, with the file's mode (set
 * explicitly: a umask must not make the tree unreadable to an unprivileged driver).
 */
export function writeAttributes(
  dir: string,
  attributes: Record<string, string | number>,
  mode = READ_WRITE,
): void {
  for (const [name, value] of Object.entries(attributes)) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${value}\n`, { mode });
    fs.chmodSync(file, mode);
  }
}

interface PciIds {
  vendor: string;
  deviceID: string;
  subsystemVendor: string;
  subsystemDevice: string;
}

/** Upper-case ids as uevent and modalias spell them; the subsystem is the vendor's, device 0000. */
function pciIds(device: DeviceSpec): PciIds {
  const vendor = device.vendor.toUpperCase();
  return {
    vendor,
    deviceID: device.deviceID.toUpperCase(),
    subsystemVendor: vendor,
    subsystemDevice: "0000",
  };
}

const REVISION = 0x01;

/** The read-only identity files every PCI function has. */
function pciIdentity(device: DeviceSpec): Record<string, string> {
  const ids = pciIds(device);
  return {
    vendor: `0x${device.vendor}`,
    device: `0x${device.deviceID}`,
    subsystem_vendor: `0x${ids.subsystemVendor.toLowerCase()}`,
    subsystem_device: `0x${ids.subsystemDevice.toLowerCase()}`,
    class: device.classCode,
    revision: `0x${hex(REVISION, 2)}`,
    modalias: modalias(device),
    resource: resources(device),
    local_cpulist: localCpuList(device.numaNode),
  };
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, "0");
}

/** `pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X`, what udev loads modules by. */
export function modalias(device: DeviceSpec): string {
  const { vendor, deviceID, subsystemVendor, subsystemDevice } = pciIds(device);
  const [base, sub, progIf] = device.classCode.slice(2).toUpperCase().match(/../g)!;
  return `pci:v0000${vendor}d0000${deviceID}sv0000${subsystemVendor}sd0000${subsystemDevice}bc${base}sc${sub}i${progIf}`;
}

/**
 * `resource`: start, end and flags of each region, 13 lines for endpoints (6 BARs, the ROM,
 * 6 SR-IOV BARs) and 17 for bridges (plus 4 windows). Endpoints have a 128 KiB 64-bit BAR 0
 * at an address unique per function; the rest is unused (zeros).
 */
function resources(device: DeviceSpec): string {
  const bridge = device.role === "root-port" || device.role === "host-bridge";
  const unused = `0x${hex(0, 16)} 0x${hex(0, 16)} 0x${hex(0, 16)}`;
  const lines = Array.from({ length: bridge ? 17 : 13 }, () => unused);
  if (!bridge) {
    const start = 0x380000000000 + routingId(parsePciAddress(device.address)) * 0x100000;
    const MEM_64 = 0x140204;
    lines[0] = `0x${hex(start, 16)} 0x${hex(start + 0x1ffff, 16)} 0x${hex(MEM_64, 16)}`;
  }
  return lines.join("\n");
}

/** The emulated host has 16 CPUs per NUMA node; a device without one is local to all 32 of nodes 0-1. */
function localCpuList(numaNode: number): string {
  return numaNode < 0 ? "0-31" : `${numaNode * 16}-${numaNode * 16 + 15}`;
}

/**
 * The first bytes of the configuration space (vendor, device, revision, class, header type,
 * subsystem ids, little-endian as the hardware has them) in the 4096 bytes of a PCIe function.
 */
export function configSpace(device: DeviceSpec): Buffer {
  const config = Buffer.alloc(4096);
  const classCode = parseInt(device.classCode, 16);
  config.writeUInt16LE(parseInt(device.vendor, 16), 0x00);
  config.writeUInt16LE(parseInt(device.deviceID, 16), 0x02);
  config.writeUInt8(REVISION, 0x08);
  config.writeUIntLE(classCode, 0x09, 3);
  const bridge = device.role === "root-port";
  config.writeUInt8(bridge ? 0x01 : 0x00, 0x0e);
  if (!bridge) {
    const ids = pciIds(device);
    config.writeUInt16LE(parseInt(ids.subsystemVendor, 16), 0x2c);
    config.writeUInt16LE(parseInt(ids.subsystemDevice, 16), 0x2e);
  }
  return config;
}

/** A symlink at `link` to `target` spelled relative to the link's directory. */
function relativeLink(target: string, link: string): void {
  fs.symlinkSync(path.relative(path.dirname(link), target), link);
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function readLinkName(link: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}
