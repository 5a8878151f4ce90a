import path from "node:path";

/** Where the node's host-level locations live, as seen by the kubelet and the runtime. */
export interface HostPathOptions {
  /** Directory the host's `/` is visible at (`/` on a real node, a temp dir on an emulated host). */
  root: string;
  /** CDI spec directory on the host. */
  cdiRoot?: string;
  /** The kubelet's root directory on the host. */
  kubeletDir?: string;
}

/**
 * Resolves every host path the driver touches through one root, so the same code runs
 * against a real node (`root` = `/`) and an emulated one (`root` = a generated tree).
 * Paths handed to other programs (CDI specs, CNI) are these resolved paths too: the runtime
 * on the same machine sees the same files.
 */
export class HostPaths {
  readonly root: string;
  readonly cdiRoot: string;
  readonly kubeletDir: string;

  constructor(options: HostPathOptions) {
    this.root = path.resolve(options.root);
    this.cdiRoot = this.at(options.cdiRoot ?? "/var/run/cdi");
    this.kubeletDir = this.at(options.kubeletDir ?? "/var/lib/kubelet");
  }

  /** Resolves an absolute host path under the root. */
  at(hostPath: string): string {
    if (!path.isAbsolute(hostPath)) {
      throw new Error(`host path must be absolute, got "${hostPath}"`);
    }
    return path.join(this.root, hostPath);
  }

  get pciDevices(): string {
    return this.at("/sys/bus/pci/devices");
  }

  get pciDrivers(): string {
    return this.at("/sys/bus/pci/drivers");
  }

  /** Writing a PCI address here asks the kernel to bind the device to a matching driver. */
  get pciDriversProbe(): string {
    return this.at("/sys/bus/pci/drivers_probe");
  }

  get classNet(): string {
    return this.at("/sys/class/net");
  }

  get iommuGroups(): string {
    return this.at("/sys/kernel/iommu_groups");
  }

  get devVfio(): string {
    return this.at("/dev/vfio");
  }

  /** `/proc/net` of the host network namespace (the node plugin runs with hostNetwork). */
  get procNet(): string {
    return this.at("/proc/net");
  }

  /** Changes on every boot: tells the checkpoint whether host state survived. */
  get bootId(): string {
    return this.at("/proc/sys/kernel/random/boot_id");
  }

  get netnsDir(): string {
    return this.at("/var/run/netns");
  }

  get kubeletPluginsDir(): string {
    return path.join(this.kubeletDir, "plugins");
  }

  get kubeletRegistryDir(): string {
    return path.join(this.kubeletDir, "plugins_registry");
  }

  pciDevice(address: string): string {
    return path.join(this.pciDevices, address);
  }

  pciDriver(name: string): string {
    return path.join(this.pciDrivers, name);
  }
}
