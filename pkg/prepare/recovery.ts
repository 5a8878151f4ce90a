import type { VfOnHost } from "./claim-plan.js";
import type { PreparedClaim } from "./prepared-claim.js";
import { isVfio, rebindsDriver } from "./prepared-claim.js";

/** What the host shows for a claim's VFs and spec right now. */
export interface HostSnapshot {
  /** Each of the claim's VFs by PCI address; undefined when the VF is gone. */
  vfs: ReadonlyMap<string, VfOnHost | undefined>;
  cdiSpecExists: boolean;
}

/** One step towards a claim's intended host state; each is safe to repeat. */
export type HostAction =
  | { kind: "remove-cdi-spec" }
  | { kind: "write-cdi-spec" }
  | { kind: "bind-driver"; pciAddress: string; driver: string }
  | { kind: "update-iommu-group"; pciAddress: string; iommuGroup: number | null }
  | { kind: "missing-vf"; pciAddress: string }
  /** A whole PF's VFs are not the ones it was prepared with: refused, never repaired. */
  | { kind: "pf-vfs-changed"; pciAddress: string; prepared: string[]; now: string[] }
  | { kind: "drop-entry" };

/**
 * Puts the host back as it was before prepare: the spec goes first so no new container
 * gets the VFs, then each VF goes back to its original driver (last bound first), then
 * the claim is forgotten. A VF that is gone has nothing to restore.
 */
export function undoActions(claim: PreparedClaim, host: HostSnapshot): HostAction[] {
  const actions: HostAction[] = [{ kind: "remove-cdi-spec" }];
  for (const vf of [...claim.devices].reverse()) {
    const now = host.vfs.get(vf.pciAddress);
    if (rebindsDriver(vf) && now !== undefined && now.driver !== vf.originalDriver) {
      actions.push({ kind: "bind-driver", pciAddress: vf.pciAddress, driver: vf.originalDriver });
    }
  }
  actions.push({ kind: "drop-entry" });
  return actions;
}

/**
 * Makes a prepared claim true again where the host lost it: VFs back on their target
 * driver, the IOMMU group as the host numbers it now (it may change across reboots),
 * and the spec rewritten when it vanished (the CDI root is often tmpfs) or a group moved.
 */
export function redoActions(claim: PreparedClaim, host: HostSnapshot): HostAction[] {
  const actions: HostAction[] = [];
  let specOutdated = !host.cdiSpecExists;
  for (const vf of claim.devices) {
    const now = host.vfs.get(vf.pciAddress);
    if (now === undefined) {
      actions.push({ kind: "missing-vf", pciAddress: vf.pciAddress });
      continue;
    }
    if (now.driver !== vf.targetDriver) {
      actions.push({ kind: "bind-driver", pciAddress: vf.pciAddress, driver: vf.targetDriver });
    }
    if (vf.wholePfVfs !== undefined) {
      const prepared = vf.wholePfVfs.map((pfVf) => pfVf.pciAddress);
      const current = (now.vfs ?? []).map((pfVf) => pfVf.pciAddress);
      if (prepared.join() !== current.join()) {
        actions.push({ kind: "pf-vfs-changed", pciAddress: vf.pciAddress, prepared, now: current });
      }
    }
    if (isVfio(vf) && now.iommuGroup !== vf.iommuGroup) {
      actions.push({
        kind: "update-iommu-group",
        pciAddress: vf.pciAddress,
        iommuGroup: now.iommuGroup,
      });
      specOutdated = true;
    }
  }
  if (specOutdated) actions.push({ kind: "write-cdi-spec" });
  return actions;
}

export interface RecoveryDecision {
  actions: HostAction[];
  /** Why, for the log. */
  reason: string;
}

/**
 * What start-up does with a checkpoint entry. Half-done work is undone: a prepare that
 * never completed is rolled back (the kubelet was not told it succeeded and will ask
 * again) and an unprepare that started is finished. A completed prepare is redone where
 * the host lost it, after a reboot too: the kubelet still counts the claim as prepared
 * and restarts the pod with the CDI devices it was given, so they must exist again.
 */
export function recoveryDecision(
  claim: PreparedClaim,
  host: HostSnapshot,
  fromPreviousBoot: boolean,
): RecoveryDecision {
  switch (claim.state) {
    case "PrepareStarted":
      return { actions: undoActions(claim, host), reason: "prepare was interrupted: rolling back" };
    case "UnprepareStarted":
      return {
        actions: undoActions(claim, host),
        reason: "unprepare was interrupted: finishing it",
      };
    case "PrepareCompleted":
      return {
        actions: redoActions(claim, host),
        reason: fromPreviousBoot
          ? "prepared before the node rebooted: re-applying drivers and CDI spec"
          : "prepared: repairing what the host lost",
      };
  }
}
