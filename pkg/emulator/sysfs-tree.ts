import fs from "node:fs";
import path from "node:path";
import type { DeviceSpec } from "./layout.js";
import { hardwareAddress, hasNetdev, rdmaDevicePrefix } from "./layout.js";

const ARPHRD_ETHER = 1;
const ARPHRD_INFINIBAND = 32;
const ARPHRD_LOOPBACK = 772;
/** What sysfs prints for a driver_override that is not set. */
const NO_OVERRIDE = "(null)";

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

  constructor(root: string) {
    this.sys = path.join(root, "sys");
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

  /** Creates an unbound device in its own IOMMU group; a VF also gets physfn and the PF's virtfnN. */
  addDevice(device: DeviceSpec, iommuGroup: number): void {
    const dir = this.deviceDir(device);
    fs.mkdirSync(dir, { recursive: true });
    writeAttributes(dir, {
      vendor: `0x${device.vendor}`,
      device: `0x${device.deviceID}`,
      class: device.classCode,
      numa_node: device.numaNode,
      driver_override: NO_OVERRIDE,
    });
    const pf = device.sriov;
    if (pf !== undefined) {
      writeAttributes(dir, {
        sriov_totalvfs: pf.totalVfs,
        sriov_numvfs: 0,
        sriov_offset: pf.vfOffset,
        sriov_stride: pf.vfStride,
        // The kernel prints the VF device id as bare hex, unlike `device`.
        sriov_vf_device: pf.vfDeviceID,
        sriov_drivers_autoprobe: 1,
      });
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

  /** Removes an unbound device, its IOMMU group and the links to it. */
  removeDevice(device: DeviceSpec): void {
    const dir = this.deviceDir(device);
    const group = this.iommuGroupOf(device.address);
    if (group !== undefined) {
      fs.rmSync(this.at("kernel/iommu_groups", String(group)), { recursive: true, force: true });
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
   * device. The `driver` link comes last, as the driver core adds it after a probe, so
   * whoever sees it sees the rest.
   */
  bind(device: DeviceSpec, driver: string): void {
    const dir = this.deviceDir(device);
    if (hasNetdev(device, driver)) this.createNetdev(device, dir);
    const rdmaPrefix = rdmaDevicePrefix(device, driver);
    if (rdmaPrefix !== undefined) this.createRdmaDevice(device, dir, rdmaPrefix);
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
    fs.rmSync(path.join(this.driverDir(driver), device.address), { force: true });
    fs.rmSync(path.join(dir, "driver"));
  }

  setOperstate(device: DeviceSpec, operstate: "up" | "down"): void {
    writeAttributes(path.join(this.deviceDir(device), "net", device.netdev!), { operstate });
  }

  private createNetdev(device: DeviceSpec, dir: string): void {
    const netDir = path.join(dir, "net", device.netdev!);
    fs.mkdirSync(netDir, { recursive: true });
    const infiniband = device.linkType === "infiniband";
    writeAttributes(netDir, {
      address: hardwareAddress(device),
      type: infiniband ? ARPHRD_INFINIBAND : ARPHRD_ETHER,
      // A PF carries the node's uplink; nothing has configured a fresh VF yet.
      operstate: device.role === "vf" ? "down" : "up",
      mtu: infiniband ? 2044 : 1500,
    });
    // Literal rather than computed: `../..` would resolve alike but not name the device.
    fs.symlinkSync(`../../../${device.address}`, path.join(netDir, "device"));
    if (device.sriov !== undefined) {
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

  /**
   * The driver_override, undefined when not set. A write of "" or "\n" clears it; the file
   * is then put back to "(null)" as the kernel shows a cleared override.
   */
  driverOverride(address: string): string | undefined {
    const file = path.join(this.busLink(address), "driver_override");
    const text = readText(file)?.trim();
    if (text === undefined || text === NO_OVERRIDE) return undefined;
    if (text === "") {
      fs.writeFileSync(file, `${NO_OVERRIDE}\n`);
      return undefined;
    }
    return text;
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

  /** The lowest `count` unused IOMMU group numbers, as the kernel's IDA hands them out. */
  freeIommuGroups(count: number): number[] {
    const taken = new Set(listDirectory(this.at("kernel/iommu_groups")).map(Number));
    const free: number[] = [];
    for (let group = 0; free.length < count; group++) if (!taken.has(group)) free.push(group);
    return free;
  }
}

/** sysfs attributes: one value per file, newline-terminated. */
export function writeAttributes(dir: string, attributes: Record<string, string | number>): void {
  for (const [name, value] of Object.entries(attributes)) {
    fs.writeFileSync(path.join(dir, name), `${value}\n`);
  }
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
