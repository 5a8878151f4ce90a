import fs from "node:fs";
import { DeviceNodes } from "./dev-nodes.js";
import type { DeviceSpec, HostLayout } from "./layout.js";
import { VFIO_PCI, assignIommuGroups, hasNetdev } from "./layout.js";
import { VethPairs } from "./netdevs.js";
import { SysfsTree, writeAttributes } from "./sysfs-tree.js";

export interface Binding {
  device: DeviceSpec;
  driver: string;
}

/**
 * The emulated host's devices as a whole: the sysfs tree, the VFIO device nodes that go
 * with vfio-pci bindings and, with `--netdevs`, the veth pairs that go with PF and VF netdevs.
 * Used by the builder for the boot state and by the emulated kernel for every change.
 */
export class EmulatedMachine {
  readonly tree: SysfsTree;
  readonly nodes: DeviceNodes;
  readonly veths: VethPairs | undefined;

  constructor(
    root: string,
    readonly layout: HostLayout,
    netdevs: boolean,
  ) {
    this.tree = new SysfsTree(root);
    this.nodes = new DeviceNodes(root);
    this.veths = netdevs ? new VethPairs(root) : undefined;
  }

  /**
   * Device nodes and veths come first and the `driver` link last (see SysfsTree.bind):
   * whoever waits for the link finds them in place, as a writer of `bind` finds them when
   * its write returns on the kernel.
   */
  async bind(bindings: readonly Binding[]): Promise<void> {
    await this.nodes.create(
      bindings
        .filter(({ driver }) => driver === VFIO_PCI)
        .map(({ device }) => this.nodes.vfioGroup(this.tree.iommuGroupOf(device.address)!)),
    );
    await this.veths?.create(
      bindings
        .filter(({ device, driver }) => hasVeth(device, driver))
        .map(({ device }) => ({ ifname: device.netdev!, mac: device.mac })),
    );
    for (const { device, driver } of bindings) this.tree.bind(device, driver);
  }

  /**
   * The reverse of `bind`: device nodes and veths go before the `driver` link does. A
   * group's VFIO node stays while another device of the group is still on vfio-pci. A PF
   * with VFs loses them first, and sriov_numvfs reads 0: a PF driver's remove disables
   * SR-IOV (pci_disable_sriov), so unbinding a PF tears its VFs down on a real kernel.
   */
  async unbind(devices: readonly DeviceSpec[]): Promise<void> {
    for (const pf of devices.filter((device) => device.role === "pf")) {
      if (this.tree.driverOf(pf.address) === undefined || this.tree.vfCount(pf) === 0) continue;
      await this.removeVfs(pf);
      this.writeNumVfs(pf, 0);
    }
    const bound = devices.map((device) => ({
      device,
      group: this.tree.iommuGroupOf(device.address),
      driver: this.tree.driverOf(device.address),
    }));
    const leaving = new Set(devices.map((device) => device.address));
    const stillOnVfio = (group: number) =>
      this.tree
        .iommuGroupDevices(group)
        .some((address) => !leaving.has(address) && this.tree.driverOf(address) === VFIO_PCI);
    this.nodes.remove(
      bound
        .filter(({ driver, group }) => driver === VFIO_PCI && group !== undefined)
        .filter(({ group }) => !stillOnVfio(group!))
        .map(({ group }) => this.nodes.vfioGroup(group!)),
    );
    await this.veths?.remove(
      bound
        .filter(({ device, driver }) => hasVeth(device, driver))
        .map(({ device }) => device.netdev!),
    );
    for (const device of devices) this.tree.unbind(device);
  }

  /**
   * Adds devices in this (probe) order, unbound, each in the group of a present peer or the
   * lowest free IOMMU group, then binds them by `driverOf`.
   */
  async addDevices(
    devices: readonly DeviceSpec[],
    driverOf: (device: DeviceSpec) => string | undefined,
  ): Promise<void> {
    const groups = assignIommuGroups(
      devices,
      this.layout.iommuPeers,
      this.tree.iommuGroups(),
      (address) => this.tree.iommuGroupOf(address),
    );
    for (const device of devices) this.tree.addDevice(device, groups.get(device.address)!);
    const bindings: Binding[] = [];
    for (const device of devices) {
      const driver = driverOf(device);
      if (driver !== undefined) bindings.push({ device, driver });
    }
    await this.bind(bindings);
  }

  /** Creates a PF's first `count` VFs, bound by `driverOf`. */
  async addVfs(
    pf: DeviceSpec,
    count: number,
    driverOf: (vf: DeviceSpec) => string | undefined,
  ): Promise<void> {
    await this.addDevices(this.vfsOf(pf).slice(0, count), driverOf);
  }

  async removeVfs(pf: DeviceSpec): Promise<void> {
    const vfs = this.vfsOf(pf).filter((vf) => this.tree.isPresent(vf.address));
    await this.unbind(vfs);
    for (const vf of vfs) this.tree.removeDevice(vf);
  }

  /**
   * One VF gone as `echo 1 > /sys/bus/pci/devices/<vf>/remove` takes it: unbound, its
   * directory, bus link, virtfnN link and (if it was the last in it) IOMMU group gone,
   * sriov_numvfs unchanged.
   */
  async removeVf(vf: DeviceSpec): Promise<void> {
    await this.unbind([vf]);
    this.tree.removeDevice(vf);
  }

  /**
   * Moves a device to `driver` as an administrator would behind the driver's back:
   * driver_override names the driver (or is cleared for the device's own), unbind, probe.
   */
  async rebind(device: DeviceSpec, driver: string): Promise<void> {
    this.tree.setDriverOverride(
      device.address,
      driver === device.nativeDriver ? undefined : driver,
    );
    await this.unbind([device]);
    await this.bind([{ device, driver }]);
  }

  /** Shows `count` in sriov_numvfs as the kernel prints it; adding or removing VFs does not. */
  writeNumVfs(pf: DeviceSpec, count: number): void {
    const file = this.tree.numVfsFile(pf);
    // Rewriting an unchanged value would wake the numvfs watcher for nothing.
    if (fs.readFileSync(file, "utf8") !== `${count}\n`) {
      writeAttributes(this.tree.deviceDir(pf), { sriov_numvfs: count });
    }
  }

  private vfsOf(pf: DeviceSpec): readonly DeviceSpec[] {
    return this.layout.vfsByPf.get(pf.address) ?? [];
  }
}

/**
 * SR-IOV functions get a veth for their netdev (a PF too, so a whole PF can move into a pod);
 * the host's other NICs (the onboard one) never do: their names may be the real host's.
 */
function hasVeth(device: DeviceSpec, driver: string | undefined): boolean {
  return (device.role === "vf" || device.role === "pf") && hasNetdev(device, driver);
}
