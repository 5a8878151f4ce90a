import fs from "node:fs";
import path from "node:path";
import { readHostUsedNetdevs } from "../host/discovery.js";
import { currentDriver } from "../host/driver-binding.js";
import { readNetdevLink } from "../host/netdev-link.js";
import type { HostPaths } from "../host/paths.js";
import { isPciAddress } from "../host/pci-address.js";
import { listDirectory, parseInteger, readLinkName } from "../host/sysfs.js";
import type { VfOnHost } from "./claim-plan.js";
import type { PreparedClaim } from "./prepared-claim.js";
import { wholePfVfsChange, wholePfVfsChangedMessage } from "./whole-pf.js";

/**
 * A function's driver and IOMMU group as sysfs shows them; undefined when there is no such
 * VF (a `physfn` link), or for a whole PF (`wholePf`) no such SR-IOV PF (`sriov_totalvfs`).
 * A whole PF's VFs and netdev too, and whether the host uses the netdev (procfs).
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
  if (!wholePf) return found;
  const link = readNetdevLink(paths, pciAddress);
  return {
    ...found,
    vfs: vfsOf(paths, dir),
    link: link ?? null,
    hostUsesLink: link !== undefined && readHostUsedNetdevs(paths, []).includes(link.name),
  };
}

const VIRTFN = /^virtfn(\d{1,5})$/;

/** A PF's VFs now, by index: its `virtfnN` links that name a PCI address, with each VF's driver and group. */
function vfsOf(paths: HostPaths, pfDir: string): NonNullable<VfOnHost["vfs"]> {
  return (listDirectory(pfDir) ?? [])
    .flatMap((entry) => {
      const match = VIRTFN.exec(entry);
      const pciAddress = match ? readLinkName(path.join(pfDir, entry)) : undefined;
      if (!match || pciAddress === undefined || !isPciAddress(pciAddress)) return [];
      const group = parseInteger(readLinkName(path.join(pfDir, entry, "iommu_group")));
      return [
        {
          vfID: Number(match[1]),
          pciAddress,
          driver: currentDriver(paths, pciAddress),
          iommuGroup: group ?? null,
        },
      ];
    })
    .sort((a, b) => a.vfID - b.vfID);
}

/** Device nodes (container paths, the same on the host) that the host lacks. */
export function missingDeviceNodes(paths: HostPaths, nodePaths: readonly string[]): string[] {
  return nodePaths.filter((nodePath) => !fs.existsSync(paths.at(nodePath)));
}

/**
 * What keeps prepared claims' devices from going into a pod now: whole PFs whose VFs are not
 * the ones they were prepared with (sriov_numvfs written meanwhile), each as the operator's
 * message. Gone PFs are the CNI's to report.
 */
export function wholePfProblems(paths: HostPaths, claims: readonly PreparedClaim[]): string[] {
  return claims.flatMap((claim) =>
    claim.devices.flatMap((device) => {
      if (device.wholePfVfs === undefined) return [];
      const now = readFunctionOnHost(paths, device.pciAddress, true);
      const change = now && wholePfVfsChange(device, now);
      return change ? [wholePfVfsChangedMessage(change)] : [];
    }),
  );
}
