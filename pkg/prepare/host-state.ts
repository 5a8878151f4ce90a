import fs from "node:fs";
import path from "node:path";
import { currentDriver } from "../host/driver-binding.js";
import type { HostPaths } from "../host/paths.js";
import { isPciAddress } from "../host/pci-address.js";
import { listDirectory, parseInteger, readLinkName } from "../host/sysfs.js";
import type { VfOnHost } from "./claim-plan.js";

/**
 * A function's driver and IOMMU group as sysfs shows them; undefined when there is no such
 * VF (a `physfn` link), or for a whole PF (`wholePf`) no such SR-IOV PF (`sriov_totalvfs`).
 */
export function readFunctionOnHost(
  paths: HostPaths,
  pciAddress: string,
  wholePf: boolean,
): VfOnHost | undefined {
  const dir = paths.pciDevice(pciAddress);
  if (!fs.existsSync(path.join(dir, wholePf ? "sriov_totalvfs" : "physfn"))) return undefined;
  const group = parseInteger(readLinkName(path.join(dir, "iommu_group")));
  const found = { driver: currentDriver(paths, pciAddress), iommuGroup: group ?? null };
  return wholePf ? { ...found, vfs: vfsOf(dir) } : found;
}

const VIRTFN = /^virtfn(\d{1,5})$/;

/** A PF's VFs now, by index: its `virtfnN` links that name a PCI address. */
function vfsOf(pfDir: string): { vfID: number; pciAddress: string }[] {
  return (listDirectory(pfDir) ?? [])
    .flatMap((entry) => {
      const match = VIRTFN.exec(entry);
      const pciAddress = match ? readLinkName(path.join(pfDir, entry)) : undefined;
      return match && pciAddress !== undefined && isPciAddress(pciAddress)
        ? [{ vfID: Number(match[1]), pciAddress }]
        : [];
    })
    .sort((a, b) => a.vfID - b.vfID);
}

/** Device nodes (container paths, the same on the host) that the host lacks. */
export function missingDeviceNodes(paths: HostPaths, nodePaths: readonly string[]): string[] {
  return nodePaths.filter((nodePath) => !fs.existsSync(paths.at(nodePath)));
}
