import type { VfOnHost } from "./claim-plan.js";
import type { PreparedClaim } from "./prepared-claim.js";
import { functionsOf, isVfio, rebindsDriver, VFIO_PCI } from "./prepared-claim.js";
import { wholePfVfsChange, type WholePfVfsChange } from "./whole-pf.js";

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
  /** A whole PF's VFs are not the ones it was prepared with: refused while prepared. */
  | ({ kind: "pf-vfs-changed" } & WholePfVfsChange)
  /** Unprepare puts a whole PF's VF count back (after it changed while prepared). */
  | ({ kind: "restore-num-vfs"; numVfs: number } & WholePfVfsChange)
  /** Unprepare puts a whole PF's link back up or down, as it was before prepare. */
  | { kind: "set-link"; pciAddress: string; name: string; up: boolean }
  /** A whole PF's netdev is not back in the node's namespace: its link cannot be restored. */
  | { kind: "pf-link-gone"; pciAddress: string; name: string }
  | { kind: "drop-entry" };

/**
 * Puts the host back as it was before prepare: the spec goes first so no new container
 * gets the VFs, then each VF goes back to its original driver (last bound first), a whole
 * PF to the VF count and link state it had, then the claim is forgotten. A VF that is gone
 * has nothing to restore.
 */
export function undoActions(claim: PreparedClaim, host: HostSnapshot): HostAction[] {
  const actions: HostAction[] = [{ kind: "remove-cdi-spec" }];
  for (const vf of [...claim.devices].reverse()) {
    const now = host.vfs.get(vf.pciAddress);
    if (now === undefined) continue;
    if (rebindsDriver(vf) && now.driver !== vf.originalDriver) {
      actions.push({ kind: "bind-driver", pciAddress: vf.pciAddress, driver: vf.originalDriver });
    }
    actions.push(...wholePfVfsUndo(vf, now), ...wholePfUndo(vf, now));
  }
  actions.push({ kind: "drop-entry" });
  return actions;
}

/**
 * A whole PF's VFs on vfio-pci back to their drivers, last first. Not when the VFs changed
 * while prepared: those are new VFs (or go when the count is put back), on the drivers the
 * kernel probed.
 */
function wholePfVfsUndo(pf: PreparedClaim["devices"][number], now: VfOnHost): HostAction[] {
  if (wholePfVfsChange(pf, now) !== undefined) return [];
  const drivers = new Map((now.vfs ?? []).map((vf) => [vf.pciAddress, vf.driver]));
  return functionsOf(pf)
    .slice(1)
    .filter(rebindsDriver)
    .filter((vf) => drivers.has(vf.pciAddress) && drivers.get(vf.pciAddress) !== vf.originalDriver)
    .reverse()
    .map((vf) => ({ kind: "bind-driver", pciAddress: vf.pciAddress, driver: vf.originalDriver }));
}

/** A whole PF's VF count (when it changed while prepared), then its link state. */
function wholePfUndo(pf: PreparedClaim["devices"][number], now: VfOnHost): HostAction[] {
  const actions: HostAction[] = [];
  const change = wholePfVfsChange(pf, now);
  if (change !== undefined && change.prepared.length !== change.now.length) {
    actions.push({ kind: "restore-num-vfs", numVfs: change.prepared.length, ...change });
  }
  const before = pf.pfLink ?? null;
  if (before === null) return actions;
  const link = now.link ?? null;
  if (link === null) {
    actions.push({ kind: "pf-link-gone", pciAddress: pf.pciAddress, name: before.name });
  } else if (link.up !== before.up) {
    actions.push({ kind: "set-link", pciAddress: pf.pciAddress, name: link.name, up: before.up });
  }
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
    const change = wholePfVfsChange(vf, now);
    if (change !== undefined) {
      actions.push({ kind: "pf-vfs-changed", ...change });
    } else {
      const vfsNow = new Map((now.vfs ?? []).map((pfVf) => [pfVf.pciAddress, pfVf]));
      for (const pfVf of functionsOf(vf).slice(1).filter(isVfio)) {
        const current = vfsNow.get(pfVf.pciAddress);
        if (current?.driver !== VFIO_PCI) {
          actions.push({ kind: "bind-driver", pciAddress: pfVf.pciAddress, driver: VFIO_PCI });
        }
        if (current?.iommuGroup !== undefined && current.iommuGroup !== pfVf.iommuGroup) {
          actions.push({
            kind: "update-iommu-group",
            pciAddress: pfVf.pciAddress,
            iommuGroup: current.iommuGroup,
          });
          specOutdated = true;
        }
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
