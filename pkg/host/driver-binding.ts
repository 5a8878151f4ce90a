import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostPaths } from "./paths.js";
import { listDirectory, readLinkName } from "./sysfs.js";

export const VFIO_PCI = "vfio-pci";

export interface BindOptions {
  /** How long to wait for the kernel to show the new driver link. */
  timeoutMs: number;
  pollMs?: number;
}

/** The kernel did not do what we asked; the message says what to check. */
export class DriverBindError extends Error {}

/** Driver a PCI device is bound to now, "" when unbound. */
export function currentDriver(paths: HostPaths, pciAddress: string): string {
  return readLinkName(path.join(paths.pciDevice(pciAddress), "driver")) ?? "";
}

/**
 * Moves a PCI device to `target` the way the kernel documents it: set driver_override,
 * unbind from the current driver, ask the bus to probe, wait until the driver link names
 * the target, then clear driver_override (the kernel then shows "(null)"; we never read
 * it). The kernel returns the probe write only after the probe; since an emulated one may
 * not, every step waits for the link (bounded) rather than assuming. `target` "" leaves the
 * device unbound. On failure the device is put back on the driver it had, as far as the
 * kernel lets us, before the error is thrown.
 */
export async function bindDriver(
  paths: HostPaths,
  pciAddress: string,
  target: string,
  options: BindOptions,
): Promise<{ previous: string }> {
  const previous = currentDriver(paths, pciAddress);
  if (previous === target) return { previous };
  try {
    await moveDriver(paths, pciAddress, previous, target, options);
  } catch (error) {
    await moveDriver(paths, pciAddress, currentDriver(paths, pciAddress), previous, options).catch(
      () => undefined,
    );
    // Whatever the rollback managed, leave no override behind to steer a later probe.
    await writeSysfs(path.join(paths.pciDevice(pciAddress), "driver_override"), "\n").catch(
      () => undefined,
    );
    throw error;
  }
  return { previous };
}

/**
 * vfio-pci hands a user the whole IOMMU group (/dev/vfio/<group>), and the kernel lets it be
 * used only when every device of the group is on vfio-pci or unbound: one device of a shared
 * group on vfio-pci is unusable while a peer keeps its driver, and with its peers unbound
 * the pod would reach them too (and a second claim on a peer would get the same group). So
 * only a device alone in its group may be handed out on vfio-pci, whether we bind it or it
 * sits there already; one without a group is left to the kernel's own refusal.
 */
export function refuseSharedIommuGroup(paths: HostPaths, pciAddress: string): void {
  const group = readLinkName(path.join(paths.pciDevice(pciAddress), "iommu_group"));
  if (group === undefined) return;
  const peers = (listDirectory(path.join(paths.iommuGroups, group, "devices")) ?? [])
    .filter((address) => address !== pciAddress)
    .sort();
  if (peers.length === 0) return;
  throw new DriverBindError(
    `${pciAddress} shares IOMMU group ${group} with ${peers.join(", ")}: vfio-pci hands out whole groups, so a pod given /dev/vfio/${group} could reach every device in it; use VFs with a group of their own (ACS on the PCIe path)`,
  );
}

async function moveDriver(
  paths: HostPaths,
  pciAddress: string,
  from: string,
  to: string,
  options: BindOptions,
): Promise<void> {
  const device = paths.pciDevice(pciAddress);
  if (!fs.existsSync(device))
    throw new DriverBindError(`PCI device ${pciAddress} is not present on this host`);
  // An override of "" lets the device's own driver claim it again on probe.
  await writeSysfs(path.join(device, "driver_override"), `${to}\n`);
  if (from !== "") {
    await writeSysfs(path.join(paths.pciDriver(from), "unbind"), pciAddress);
    await waitForDriver(paths, pciAddress, "", options, `unbind ${pciAddress} from ${from}`);
  }
  if (to !== "") {
    if (!fs.existsSync(paths.pciDriver(to))) {
      throw new DriverBindError(
        `driver ${to} is not loaded on this host (${paths.pciDriver(to)} is missing): modprobe ${to}`,
      );
    }
    await writeSysfs(paths.pciDriversProbe, pciAddress);
    await waitForDriver(paths, pciAddress, to, options, `bind ${pciAddress} to ${to}`);
  }
  await writeSysfs(path.join(device, "driver_override"), "\n");
}

async function waitForDriver(
  paths: HostPaths,
  pciAddress: string,
  expected: string,
  options: BindOptions,
  what: string,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const now = currentDriver(paths, pciAddress);
    if (now === expected) return;
    if (Date.now() >= deadline) {
      throw new DriverBindError(
        `${what} did not complete within ${options.timeoutMs} ms (driver is "${now || "none"}"): check dmesg for the driver's error`,
      );
    }
    await sleep(options.pollMs ?? 5);
  }
}

/**
 * Writes a sysfs control file. O_NONBLOCK so a control file that is a pipe without a
 * reader fails at once instead of hanging the daemon; O_TRUNC, which sysfs ignores, so
 * a plain file ends up holding exactly what was written. Never creates the file.
 */
export async function writeSysfs(file: string, value: string): Promise<void> {
  const flags = fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NONBLOCK;
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, flags);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DriverBindError(`cannot open ${file} for writing (${code ?? String(error)})`);
  }
  try {
    await handle.write(value);
  } catch (error) {
    throw new DriverBindError(
      `writing "${value.trim()}" to ${file} failed: ${(error as Error).message}`,
    );
  } finally {
    await handle.close();
  }
}
