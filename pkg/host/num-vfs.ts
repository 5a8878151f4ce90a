import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DriverBindError, writeSysfs, type BindOptions } from "./driver-binding.js";
import type { HostPaths } from "./paths.js";
import { listDirectory } from "./sysfs.js";

const VIRTFN = /^virtfn\d{1,5}$/;

/** How many VFs a PF has now: its `virtfnN` links. */
export function vfCountOf(paths: HostPaths, pfAddress: string): number {
  return (listDirectory(paths.pciDevice(pfAddress)) ?? []).filter((entry) => VIRTFN.test(entry))
    .length;
}

/**
 * Gives a PF `count` VFs the way the kernel allows it (sriov_numvfs_store): to 0 first when
 * it has another non-zero count, then the count, each time waiting (bounded) until sysfs
 * shows that many VFs. The kernel probes the new VFs with their default drivers.
 */
export async function setNumVfs(
  paths: HostPaths,
  pfAddress: string,
  count: number,
  options: BindOptions,
): Promise<void> {
  const file = path.join(paths.pciDevice(pfAddress), "sriov_numvfs");
  const current = vfCountOf(paths, pfAddress);
  if (current === count) return;
  if (current > 0 && count > 0) {
    await writeSysfs(file, "0");
    await waitForVfCount(paths, pfAddress, 0, options);
  }
  await writeSysfs(file, String(count));
  await waitForVfCount(paths, pfAddress, count, options);
}

async function waitForVfCount(
  paths: HostPaths,
  pfAddress: string,
  expected: number,
  options: BindOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const now = vfCountOf(paths, pfAddress);
    if (now === expected) return;
    if (Date.now() >= deadline) {
      throw new DriverBindError(
        `setting sriov_numvfs of PF ${pfAddress} to ${expected} did not complete within ${options.timeoutMs} ms (it has ${now} VFs): check dmesg for the PF driver's error, and write the count by hand`,
      );
    }
    await sleep(options.pollMs ?? 5);
  }
}
