import { isPfDevice, isVfDevice, type Device } from "../devices/model.js";
import type { DeviceTaint } from "../slices/render.js";

/**
 * Taint values (health reasons) that are about the PF itself, so every VF of the PF carries
 * them at once: a whole PF with such a VF taint has the same problem.
 */
const PF_WIDE_REASONS: ReadonlySet<string> = new Set(["PFLinkDown", "PFMissing"]);

/**
 * The taints to publish with whole PFs among the devices: the health monitor judges VFs, and
 * a PF-wide problem (no link, PF gone) one of its VFs is tainted for taints the whole PF too,
 * so the scheduler keeps claims for the whole NIC off a dead port as it does for its VFs.
 * Pure: the VF taints are returned unchanged, with the PF devices' added.
 */
export function withWholePfTaints(
  taints: ReadonlyMap<string, readonly DeviceTaint[]>,
  devices: readonly Device[],
): ReadonlyMap<string, readonly DeviceTaint[]> {
  const pfs = devices.filter(isPfDevice);
  if (pfs.length === 0) return taints;
  const pfWide = new Map<string, DeviceTaint[]>();
  for (const device of devices.filter(isVfDevice)) {
    const found = (taints.get(device.name) ?? []).filter((t) => PF_WIDE_REASONS.has(t.value));
    if (found.length > 0 && !pfWide.has(device.pf.pciAddress)) {
      pfWide.set(device.pf.pciAddress, [...found]);
    }
  }
  const result = new Map(taints);
  for (const pf of pfs) {
    const found = pfWide.get(pf.pf.pciAddress);
    if (found !== undefined) result.set(pf.name, found);
  }
  return result;
}
