import { formatPciAddress, parsePciAddress } from "../host/pci-address.js";
import type { HostProfile, LinkType, OtherDeviceProfile, PfProfile } from "./profile.js";
import { vfDriverOf, vfNetdevName, vfPciAddress } from "./profile.js";

/*
 * Pure: where every device of a profile sits in sysfs, what it is called, and the state the
 * host boots into. The tree builder and the emulated kernel act on this; tests of other
 * modules compare discovery against `expectedInventory`.
 */

export const VFIO_PCI = "vfio-pci";
const PCIEPORT = "pcieport";
const MLX5_CORE = "mlx5_core";
/** Root ports are numbered from here; device 00 of a root bus is its host bridge. */
const FIRST_ROOT_PORT_DEVICE = 2;

export type DeviceRole = "host-bridge" | "root-port" | "pf" | "vf" | "other";

export interface DeviceSpec {
  address: string;
  role: DeviceRole;
  vendor: string;
  deviceID: string;
  /** PCI class code as sysfs prints it, e.g. `0x020000`. */
  classCode: string;
  numaNode: number;
  /** Root complex the device hangs off, e.g. `pci0000:3a`. */
  pcieRoot: string;
  /** Real directory below `sys/devices`, e.g. `pci0000:3a/0000:3a:00.0/0000:3b:02.0`. */
  devicePath: string;
  /** Driver a probe binds when no driver_override says otherwise; none for a host bridge. */
  nativeDriver: string | undefined;
  /** Interface name while bound to a network driver; undefined for devices without one. */
  netdev: string | undefined;
  /** Ethernet MAC of the netdev (and of its veth with --netdevs). */
  mac: string;
  linkType: LinkType;
  /** Has an RDMA device while bound to its native driver. */
  rdma: boolean;
  /** The SR-IOV capability, for PFs. */
  sriov: PfProfile | undefined;
  /** The PF and VF index, for VFs. */
  physfn: { address: string; index: number } | undefined;
}

export interface HostLayout {
  /** Host bridges, root ports, other devices and PFs in PCI address order: present from boot. */
  fixedDevices: readonly DeviceSpec[];
  /** Every VF each PF can have (up to totalVfs), by PF address, in VF index order. */
  vfsByPf: ReadonlyMap<string, readonly DeviceSpec[]>;
  byAddress: ReadonlyMap<string, DeviceSpec>;
  /** Every driver a device can bind to, each with a `sys/bus/pci/drivers/<name>` directory. */
  drivers: readonly string[];
  /** For a device in one of the profile's sharedIommuGroups: the other devices of that group. */
  iommuPeers: ReadonlyMap<string, readonly string[]>;
}

/** A device present at boot with the IOMMU group and driver the build gives it. */
export interface BootDevice {
  spec: DeviceSpec;
  iommuGroup: number;
  /** Undefined: no driver binds it (a host bridge). */
  driver: string | undefined;
}

export function hostLayout(profile: HostProfile): HostLayout {
  const pfs = profile.pfs.map(pfSpec);
  const endpoints = [...pfs, ...profile.otherDevices.map(otherDeviceSpec)];
  const vfsByPf = new Map(
    profile.pfs.map((pf, i) => [pf.pciAddress, vfSpecs(pf, pfs[i]!)] as const),
  );
  const allVfs = [...vfsByPf.values()].flat();
  const occupied = new Set([...endpoints, ...allVfs].map((device) => device.address));
  const hostBridges = [
    ...new Map(endpoints.map((device) => [device.pcieRoot, device])).values(),
  ].map(hostBridge);
  const rootPorts = placeEndpoints(endpoints, occupied);
  for (const [i, pf] of pfs.entries()) {
    const parent = pf.devicePath.slice(0, pf.devicePath.lastIndexOf("/"));
    for (const vf of vfsByPf.get(profile.pfs[i]!.pciAddress)!) {
      vf.devicePath = `${parent}/${vf.address}`;
    }
  }
  const fixedDevices = [...hostBridges, ...rootPorts, ...endpoints].sort(byAddress);
  const all = [...fixedDevices, ...allVfs];
  const drivers = new Set([PCIEPORT, VFIO_PCI]);
  for (const device of all) if (device.nativeDriver !== undefined) drivers.add(device.nativeDriver);
  for (const pf of profile.pfs) {
    for (const driver of Object.values(pf.vfDrivers)) drivers.add(driver);
  }
  const iommuPeers = new Map<string, readonly string[]>();
  for (const group of profile.sharedIommuGroups ?? []) {
    for (const address of group)
      iommuPeers.set(
        address,
        group.filter((peer) => peer !== address),
      );
  }
  return {
    fixedDevices,
    vfsByPf,
    byAddress: new Map(all.map((device) => [device.address, device])),
    drivers: [...drivers].sort(),
    iommuPeers,
  };
}

/**
 * IOMMU groups for devices as they are added in this order, the way the kernel numbers
 * them: a device joins the group of a peer already present (no ACS isolates them), else it
 * takes the lowest number not `taken` (the kernel's IDA). `groupOf` gives the group of a
 * device present before these.
 */
export function assignIommuGroups(
  devices: readonly DeviceSpec[],
  peers: ReadonlyMap<string, readonly string[]>,
  taken: Iterable<number>,
  groupOf: (address: string) => number | undefined = () => undefined,
): Map<string, number> {
  const groups = new Map<string, number>();
  const used = new Set(taken);
  let next = 0;
  for (const device of devices) {
    let group: number | undefined;
    for (const peer of peers.get(device.address) ?? []) {
      group ??= groups.get(peer) ?? groupOf(peer);
    }
    if (group === undefined) {
      while (used.has(next)) next++;
      group = next;
      used.add(group);
    }
    groups.set(device.address, group);
  }
  return groups;
}

function otherDeviceSpec(device: OtherDeviceProfile): DeviceSpec {
  return {
    address: device.pciAddress,
    role: "other",
    vendor: device.vendor,
    deviceID: device.deviceID,
    classCode: device.class,
    numaNode: device.numaNode,
    pcieRoot: device.pcieRoot,
    devicePath: "",
    nativeDriver: device.driver,
    netdev: device.netdev,
    mac: macAddress(device.pciAddress),
    linkType: "ethernet",
    rdma: false,
    sriov: undefined,
    physfn: undefined,
  };
}

function pfSpec(pf: PfProfile): DeviceSpec {
  return {
    address: pf.pciAddress,
    role: "pf",
    vendor: pf.vendor,
    deviceID: pf.deviceID,
    classCode: pf.linkType === "infiniband" ? "0x020700" : "0x020000",
    numaNode: pf.numaNode,
    pcieRoot: pf.pcieRoot,
    devicePath: "",
    nativeDriver: pf.driver,
    netdev: pf.netdev,
    mac: macAddress(pf.pciAddress),
    linkType: pf.linkType,
    rdma: pf.rdma,
    sriov: pf,
    physfn: undefined,
  };
}

function vfSpecs(pf: PfProfile, pfDevice: DeviceSpec): DeviceSpec[] {
  return Array.from({ length: pf.totalVfs }, (_, index) => {
    const address = vfPciAddress(pf, index);
    return {
      ...pfDevice,
      address,
      role: "vf",
      deviceID: pf.vfDeviceID,
      nativeDriver: pf.vfDriver,
      netdev: vfNetdevName(pf.netdev, index),
      mac: macAddress(address),
      sriov: undefined,
      physfn: { address: pf.pciAddress, index },
    };
  });
}

/**
 * Sets each endpoint's devicePath: directly below its root complex when it sits on the
 * root bus, else below a root port on the root bus, one port per downstream bus. Returns
 * the root ports, numbered from device 02 on (device 00 is the host bridge; Xeons put
 * their first root port at 02), skipping addresses in use.
 */
function placeEndpoints(endpoints: readonly DeviceSpec[], occupied: Set<string>): DeviceSpec[] {
  const ports = new Map<string, DeviceSpec>();
  for (const device of [...endpoints].sort(byAddress)) {
    const { pcieRoot } = device;
    const rootBus = parseInt(pcieRoot.slice(8), 16);
    const address = parsePciAddress(device.address);
    if (address.bus === rootBus) {
      device.devicePath = `${pcieRoot}/${device.address}`;
      continue;
    }
    const key = `${pcieRoot}/${address.bus}`;
    let port = ports.get(key);
    if (port === undefined) {
      port = rootPort(freeRootPortAddress(address.domain, rootBus, occupied), device);
      occupied.add(port.address);
      ports.set(key, port);
    }
    device.devicePath = `${port.devicePath}/${device.address}`;
  }
  return [...ports.values()];
}

function freeRootPortAddress(domain: number, bus: number, occupied: ReadonlySet<string>): string {
  for (let device = FIRST_ROOT_PORT_DEVICE; device <= 0x1f; device++) {
    const address = formatPciAddress({ domain, bus, device, function: 0 });
    if (!occupied.has(address)) return address;
  }
  throw new Error(`no free device number on root bus ${bus.toString(16)} for another root port`);
}

/**
 * The host bridge at device 00 of a root bus (8086:2020, Xeon Scalable's DMI3 registers):
 * every root bus has one, no driver binds it.
 */
function hostBridge(firstChild: DeviceSpec): DeviceSpec {
  const { pcieRoot } = firstChild;
  const address = `${pcieRoot.slice(3)}:00.0`;
  return {
    ...bridgeFields(address, firstChild),
    role: "host-bridge",
    deviceID: "2020",
    classCode: "0x060000",
    devicePath: `${pcieRoot}/${address}`,
    nativeDriver: undefined,
  };
}

/** An Intel Xeon PCIe root port (8086:2030), as sits above every add-in card. */
function rootPort(address: string, firstChild: DeviceSpec): DeviceSpec {
  return {
    ...bridgeFields(address, firstChild),
    role: "root-port",
    deviceID: "2030",
    classCode: "0x060400",
    devicePath: `${firstChild.pcieRoot}/${address}`,
    nativeDriver: PCIEPORT,
  };
}

/** What host bridges and root ports share: Intel, no netdev, the NUMA node of what they hold. */
function bridgeFields(
  address: string,
  firstChild: DeviceSpec,
): Omit<DeviceSpec, "role" | "deviceID" | "classCode" | "devicePath" | "nativeDriver"> {
  return {
    address,
    vendor: "8086",
    numaNode: firstChild.numaNode,
    pcieRoot: firstChild.pcieRoot,
    netdev: undefined,
    mac: macAddress(address),
    linkType: "ethernet",
    rdma: false,
    sriov: undefined,
    physfn: undefined,
  };
}

function byAddress(a: DeviceSpec, b: DeviceSpec): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

/**
 * A locally administered unicast MAC unique per PCI address:
 * 02:ed:<domain>:<bus>:<devfn>, e.g. 0000:3b:02.3 → 02:ed:00:00:3b:13.
 */
export function macAddress(pciAddress: string): string {
  const address = parsePciAddress(pciAddress);
  const bytes = [
    0x02,
    0xed,
    address.domain >> 8,
    address.domain & 0xff,
    address.bus,
    (address.device << 3) | address.function,
  ];
  return bytes.map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

/** What `net/<ifname>/address` shows: the MAC, or a 20-byte IPoIB address for InfiniBand. */
export function hardwareAddress(device: DeviceSpec): string {
  if (device.linkType === "ethernet") return device.mac;
  return `80:00:00:48:fe:80:00:00:00:00:00:00:${device.mac}:00:01`;
}

/** The driver under which a device shows an RDMA device, and that device's name prefix. */
export function rdmaDevicePrefix(device: DeviceSpec, driver: string): string | undefined {
  if (!device.rdma || driver !== device.nativeDriver) return undefined;
  return driver === MLX5_CORE ? "mlx5" : driver;
}

/** A driver that gives the device a netdev (every driver but vfio-pci, for devices with one). */
export function hasNetdev(device: DeviceSpec, driver: string | undefined): boolean {
  return device.netdev !== undefined && driver !== undefined && driver !== VFIO_PCI;
}

/**
 * The devices present at boot in creation (probe) order: fixed devices by PCI address, then
 * each PF's first numVfs VFs. IOMMU groups are numbered in that order from 0, one per device
 * unless the profile has devices share one.
 */
export function bootDevices(profile: HostProfile, layout: HostLayout): BootDevice[] {
  const specs = [
    ...layout.fixedDevices,
    ...profile.pfs.flatMap((pf) => layout.vfsByPf.get(pf.pciAddress)!.slice(0, pf.numVfs)),
  ];
  const groups = assignIommuGroups(specs, layout.iommuPeers, []);
  const pfs = new Map(profile.pfs.map((pf) => [pf.pciAddress, pf]));
  return specs.map((spec) => ({
    spec,
    iommuGroup: groups.get(spec.address)!,
    driver:
      spec.physfn === undefined
        ? spec.nativeDriver
        : vfDriverOf(pfs.get(spec.physfn.address)!, spec.physfn.index),
  }));
}

/** A VF netdev the host uses, with the addresses that show it (RFC 2544/5180 benchmarking ranges). */
export interface HostUsedNetdev {
  pciAddress: string;
  netdev: string;
  mac: string;
  /** Interface index for `/proc/net/if_inet6`; lo is 1. */
  ifindex: number;
  /** e.g. 198.18.1.1 in 198.18.1.0/24. */
  ipv4: string;
  /** e.g. 2001:2:0:1::1 in 2001:2:0:1::/64. */
  ipv6: string;
}

export function hostUsedNetdevs(profile: HostProfile, layout: HostLayout): HostUsedNetdev[] {
  const boot = bootDevices(profile, layout);
  const withNetdev = boot.filter((device) => hasNetdev(device.spec, device.driver));
  const used = new Set(
    profile.pfs.flatMap((pf) => pf.hostUsedVfs.map((index) => vfNetdevName(pf.netdev, index))),
  );
  const result: HostUsedNetdev[] = [];
  withNetdev.forEach(({ spec }, position) => {
    if (!used.has(spec.netdev!)) return;
    const subnet = result.length + 1;
    result.push({
      pciAddress: spec.address,
      netdev: spec.netdev!,
      mac: spec.mac,
      ifindex: position + 2,
      ipv4: `198.18.${subnet}.1`,
      ipv6: `2001:2:0:${subnet.toString(16)}::1`,
    });
  });
  return result;
}

export interface ExpectedVf {
  pciAddress: string;
  vfID: number;
  driver: string;
  iommuGroup: number;
  netdev: string | undefined;
  /** An RDMA device of its own: on its native driver of an RDMA-capable card. */
  rdmaCapable: boolean;
}

/** Field for field what discovery should find for a PF on a freshly built host. */
export interface ExpectedPf {
  pciAddress: string;
  netdev: string;
  vendor: string;
  deviceID: string;
  driver: string;
  vfVendor: string;
  vfDeviceID: string;
  numaNode: number;
  pcieRoot: string;
  linkType: LinkType;
  eswitchMode: "legacy" | "switchdev";
  rdmaCapable: boolean;
  totalVfs: number;
  numVfs: number;
  vfs: ExpectedVf[];
}

export interface ExpectedInventory {
  pfs: ExpectedPf[];
  /** VF netdevs with an address or route in the host namespace, sorted. */
  hostUsedNetdevs: string[];
}

/** The inventory a freshly built host from `profile` shows, PFs in profile order. */
export function expectedInventory(profile: HostProfile): ExpectedInventory {
  const layout = hostLayout(profile);
  const boot = bootDevices(profile, layout);
  const pfs = profile.pfs.map((pf): ExpectedPf => {
    const vfs = boot
      .filter((device) => device.spec.physfn?.address === pf.pciAddress)
      .map(({ spec, driver, iommuGroup }) => ({
        pciAddress: spec.address,
        vfID: spec.physfn!.index,
        driver: driver!,
        iommuGroup,
        netdev: hasNetdev(spec, driver) ? spec.netdev : undefined,
        rdmaCapable: rdmaDevicePrefix(spec, driver!) !== undefined,
      }));
    return {
      pciAddress: pf.pciAddress,
      netdev: pf.netdev,
      vendor: pf.vendor,
      deviceID: pf.deviceID,
      driver: pf.driver,
      vfVendor: pf.vendor,
      vfDeviceID: pf.vfDeviceID,
      numaNode: pf.numaNode,
      pcieRoot: pf.pcieRoot,
      linkType: pf.linkType,
      eswitchMode: pf.eswitchMode,
      rdmaCapable: pf.rdma,
      totalVfs: pf.totalVfs,
      numVfs: pf.numVfs,
      vfs,
    };
  });
  const hostUsed = hostUsedNetdevs(profile, layout).map((netdev) => netdev.netdev);
  return { pfs, hostUsedNetdevs: hostUsed.sort() };
}
