import type { VfDevice } from "../devices/model.js";
import { VFIO_PCI } from "../host/driver-binding.js";
import {
  MAX_HEALTH_MESSAGE_CHARS,
  type DeviceHealth,
  type HealthState,
  type UnhealthyReason,
} from "./model.js";

/** What the monitor read of a PF: its PCI function and its netdev's link files. */
export interface PfObservation {
  present: boolean;
  /** The PF's netdev now; undefined when it has none. */
  netdev: string | undefined;
  /** `carrier` ("1"/"0"); undefined when unreadable (the kernel refuses it while the netdev is down). */
  carrier: string | undefined;
  operstate: string | undefined;
}

/** What the monitor read of a VF. */
export interface VfObservation {
  present: boolean;
  /** "" when unbound. */
  driver: string;
  hasIommuGroup: boolean;
}

/** A device's health without its timing: the monitor adds when it began. */
export type Assessment = Pick<DeviceHealth, "state" | "reason" | "message">;

/** operstate values (RFC 2863, as the kernel spells them) that mean no traffic passes. */
const LINK_DOWN_OPERSTATES = new Set(["down", "lowerlayerdown", "notpresent"]);

/**
 * Whether the PF's link is down: carrier 0, or (carrier unreadable, as for a netdev that is
 * administratively down) an operstate that says so. "unknown" and "dormant" count as up:
 * drivers report them for links they cannot judge, and a taint must be certain.
 */
export function pfLinkDown(pf: PfObservation): boolean {
  if (pf.carrier !== undefined) return pf.carrier === "0";
  return pf.operstate !== undefined && LINK_DOWN_OPERSTATES.has(pf.operstate);
}

/**
 * One device's health from what the host shows now. `expectedDrivers`: the drivers the VF
 * may be on (its own, and vfio-pci while a claim has it there). The first problem wins, in
 * the order an operator would fix them: the PF, the VF, its link, its driver, its group.
 */
export function assessDevice(
  device: VfDevice,
  pf: PfObservation,
  vf: VfObservation,
  expectedDrivers: readonly string[],
): Assessment {
  const vfAddress = device.vf.pciAddress;
  const pfName = pf.netdev ?? device.pf.netdev ?? device.pf.pciAddress;
  if (!pf.present) {
    return unhealthy(
      "PFMissing",
      `PF ${device.pf.pciAddress} of VF ${vfAddress} is gone from sysfs (removed, or in a reset that did not finish): look for the PF's driver in the kernel log`,
    );
  }
  if (!vf.present) {
    return unhealthy(
      "VFMissing",
      `VF ${vfAddress} (VF ${device.vf.vfID} of PF ${pfName}) is gone from sysfs: the PF's sriov_numvfs was lowered; raise it again (through 0) or let the pods holding it go`,
    );
  }
  if (pf.netdev === undefined) {
    return unhealthy(
      "PFMissing",
      `PF ${device.pf.pciAddress} of VF ${vfAddress} has no network interface (its driver was unbound or it is being reset): bind it to its driver again`,
    );
  }
  if (pfLinkDown(pf)) {
    return unhealthy(
      "PFLinkDown",
      `PF ${pfName} (${device.pf.pciAddress}) has no link (carrier ${pf.carrier ?? "unreadable"}, operstate ${pf.operstate ?? "unreadable"}), so VF ${vfAddress} passes no traffic: check the cable and switch port, or bring it up (ip link set ${pfName} up)`,
    );
  }
  if (!expectedDrivers.includes(vf.driver)) {
    return unhealthy(
      "UnexpectedDriver",
      `VF ${vfAddress} is ${vf.driver === "" ? "bound to no driver" : `bound to ${vf.driver}`}, expected ${expectedDrivers.join(" or ")}: something rebound it behind the driver's back; bind it back or restart the pod holding it`,
    );
  }
  if (vf.driver === VFIO_PCI && !vf.hasIommuGroup) {
    return unhealthy(
      "IOMMUGroupMissing",
      `VF ${vfAddress} is on vfio-pci but has no IOMMU group, so its /dev/vfio node is gone: check that the IOMMU is on (intel_iommu=on or amd_iommu=on)`,
    );
  }
  return { state: "Healthy", message: "" };
}

function unhealthy(reason: UnhealthyReason, message: string): Assessment {
  return { state: "Unhealthy", reason, message: boundMessage(message) };
}

/** Cut to the kubelet's limit, marking the cut. */
export function boundMessage(message: string): string {
  if (message.length <= MAX_HEALTH_MESSAGE_CHARS) return message;
  return `${message.slice(0, MAX_HEALTH_MESSAGE_CHARS - 1)}…`;
}

/** How long a new state must hold before it counts (hysteresis against flapping links). */
export interface Debounce {
  /** Healthy → Unhealthy, or one reason to another: a glitch shorter than this is no news. */
  unhealthyAfterMs: number;
  /** Unhealthy → Healthy: longer, so a flapping link stays tainted instead of rewriting the pool. */
  healthyAfterMs: number;
}

/** Problems that start this often within `healthyAfterMs` make a flapping device unhealthy at once. */
export const FLAPS_TO_UNHEALTHY = 3;

/** A device's committed health and the different state seen since, if any. */
export interface HealthTracker {
  committed: DeviceHealth;
  pending?: { assessment: Assessment; sinceMs: number };
  /** When problems began while the device was committed healthy (within healthyAfterMs). */
  problemStartsMs?: number[];
}

const sameAssessment = (a: Assessment, b: Assessment) =>
  a.state === b.state && a.reason === b.reason;

/**
 * One observation folded into a tracker at `nowMs`: a state that differs from the committed
 * one becomes committed once it has been seen without interruption for the debounce time
 * (its `sinceMs` is when it was first seen). A healthy device whose problems keep coming
 * back (FLAPS_TO_UNHEALTHY starts within healthyAfterMs) turns unhealthy at the last one,
 * however short each was: a flapping link is tainted once and stays so until it is steady.
 * A first observation commits at once: a daemon that just started must not call a broken VF
 * healthy for seconds. Returns the new tracker and whether the committed health changed.
 */
export function track(
  tracker: HealthTracker | undefined,
  device: string,
  assessment: Assessment,
  nowMs: number,
  debounce: Debounce,
): { tracker: HealthTracker; changed: boolean } {
  if (tracker === undefined) {
    return { tracker: { committed: { device, ...assessment, sinceMs: nowMs } }, changed: true };
  }
  if (sameAssessment(tracker.committed, assessment)) {
    // Same state; keep a newer message (the operstate in it may have changed).
    const committed =
      tracker.committed.message === assessment.message
        ? tracker.committed
        : { ...tracker.committed, message: assessment.message };
    // The problems that began recently are kept: they count toward flapping.
    const problemStartsMs = tracker.problemStartsMs?.filter(
      (start) => nowMs - start < debounce.healthyAfterMs,
    );
    return {
      tracker: { committed, ...(problemStartsMs?.length ? { problemStartsMs } : {}) },
      changed: false,
    };
  }
  const continues = tracker.pending && sameAssessment(tracker.pending.assessment, assessment);
  const pending = continues
    ? { assessment, sinceMs: tracker.pending!.sinceMs }
    : { assessment, sinceMs: nowMs };
  let problemStartsMs = (tracker.problemStartsMs ?? []).filter(
    (start) => nowMs - start < debounce.healthyAfterMs,
  );
  const problemBegins =
    !continues && tracker.committed.state === "Healthy" && assessment.state === "Unhealthy";
  if (problemBegins) problemStartsMs = [...problemStartsMs, nowMs];
  const flapping = problemBegins && problemStartsMs.length >= FLAPS_TO_UNHEALTHY;
  const wait = assessment.state === "Healthy" ? debounce.healthyAfterMs : debounce.unhealthyAfterMs;
  if (nowMs - pending.sinceMs < wait && !flapping) {
    return { tracker: { committed: tracker.committed, pending, problemStartsMs }, changed: false };
  }
  return {
    tracker: { committed: { device, ...assessment, sinceMs: pending.sinceMs } },
    changed: true,
  };
}

/** Devices per health state, for the metrics. */
export function countByState(health: readonly DeviceHealth[]): Record<HealthState, number> {
  const counts: Record<HealthState, number> = { Healthy: 0, Unhealthy: 0, Unknown: 0 };
  for (const device of health) counts[device.state]++;
  return counts;
}
