import type { VfOnHost } from "./claim-plan.js";
import type { PreparedVf } from "./prepared-claim.js";

/** A whole PF's VFs when it was prepared and now, by PCI address. */
export interface WholePfVfsChange {
  pciAddress: string;
  prepared: string[];
  now: string[];
}

/** How a prepared whole PF's VFs differ from the host's now; undefined when they do not (or for a VF). */
export function wholePfVfsChange(
  device: Pick<PreparedVf, "pciAddress" | "wholePfVfs">,
  now: VfOnHost,
): WholePfVfsChange | undefined {
  if (device.wholePfVfs === undefined) return undefined;
  const prepared = device.wholePfVfs.map((vf) => vf.pciAddress);
  const current = (now.vfs ?? []).map((vf) => vf.pciAddress);
  return prepared.join() === current.join()
    ? undefined
    : { pciAddress: device.pciAddress, prepared, now: current };
}

/** The operator's message for a whole PF whose VFs changed while a pod held it. */
export function wholePfVfsChangedMessage(change: WholePfVfsChange): string {
  return `whole PF ${change.pciAddress} had ${change.prepared.length} VFs when the claim was prepared and has ${change.now.length} now: its VF count (sriov_numvfs) changed while the pod holds the whole PF, which this driver refuses; delete the pod (unprepare puts ${change.prepared.length} back), and change sriov_numvfs only while the PF is not allocated`;
}
