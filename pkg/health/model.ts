/**
 * Device health as the node daemon tells it to the scheduler (a taint on the device in its
 * ResourceSlice), to the kubelet (DRAResourceHealth, shown in the pod's
 * allocatedResourcesStatus) and to operators (metrics, events): one state per published
 * device, with a reason an operator can act on.
 */

export type HealthState = "Healthy" | "Unhealthy" | "Unknown";

/** Why a device is unhealthy. Each is also the value of its taint (a label value). */
export type UnhealthyReason =
  /** The PF's netdev has no carrier (cable, switch port, or the PF is down). */
  | "PFLinkDown"
  /** The PF is gone from sysfs (removed, in reset) or has no netdev any more. */
  | "PFMissing"
  /** The VF's PCI function is gone (sriov_numvfs lowered) while published or prepared. */
  | "VFMissing"
  /** The VF is on a driver that is neither its own nor the vfio-pci a claim asked for. */
  | "UnexpectedDriver"
  /** A VF a claim put on vfio-pci has no IOMMU group any more. */
  | "IOMMUGroupMissing";

export interface DeviceHealth {
  /** The device's name in this node's pool (`0000-3b-02-0`). */
  device: string;
  state: HealthState;
  /** Set when state is Unhealthy. */
  reason?: UnhealthyReason;
  /**
   * What is wrong and what to do, ≤ 1,024 characters; the kubelet's limit is 1,024 bytes,
   * which the health service enforces when it sends (pkg/kubeletplugin).
   */
  message: string;
  /** When the device entered this state, ms since the epoch. */
  sinceMs: number;
}

/** The kubelet's limit on a device health message. */
export const MAX_HEALTH_MESSAGE_CHARS = 1024;

/**
 * Where the node's current device health comes from: the health monitor. Consumers read
 * the whole picture and are called after every change (debounced: a flapping link does not
 * call them every second).
 */
export interface HealthSource {
  /** Every published device's health now. */
  current(): readonly DeviceHealth[];
  /**
   * Calls `listener` with the devices whose health changed (an empty list when devices only
   * left the node's pool); returns the unsubscribe.
   */
  subscribe(listener: (changed: readonly DeviceHealth[]) => void): () => void;
}
