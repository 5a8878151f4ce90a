import fs from "node:fs";
import path from "node:path";
import { currentDriver } from "../host/driver-binding.js";
import type { HostPaths } from "../host/paths.js";
import { parseInteger, readLinkName } from "../host/sysfs.js";
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
  return { driver: currentDriver(paths, pciAddress), iommuGroup: group ?? null };
}

/** Device nodes (container paths, the same on the host) that the host lacks. */
export function missingDeviceNodes(paths: HostPaths, nodePaths: readonly string[]): string[] {
  return nodePaths.filter((nodePath) => !fs.existsSync(paths.at(nodePath)));
}
