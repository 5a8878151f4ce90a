/**
 * Device health as the node daemon tells it to the scheduler (a taint on the device in its
 * ResourceSlice), to the kubelet (DRAResourceHealth, shown in the pod's
 * allocatedResourcesStatus) and to operators (metrics, events): one state per published
 * device, with a reason an operator can act on. The shape is the kubelet service's
 * (lib/kubeletplugin/device-health.ts); the reasons are the driver's.
 */
import type {
  DeviceHealth as ServiceDeviceHealth,
  HealthSource as ServiceHealthSource,
} from "../../lib/kubeletplugin/index.js";

export { MAX_HEALTH_MESSAGE_CHARS, type HealthState } from "../../lib/kubeletplugin/index.js";

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

export interface DeviceHealth extends ServiceDeviceHealth {
  /** The device's name in this node's pool (`0000-3b-02-0`). */
  device: string;
  /** Set when state is Unhealthy. */
  reason?: UnhealthyReason;
}

/**
 * Where the node's current device health comes from: the health monitor. Debounced: a
 * flapping link does not call its listeners every second.
 */
export type HealthSource = ServiceHealthSource<DeviceHealth>;
