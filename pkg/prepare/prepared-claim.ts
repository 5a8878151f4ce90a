import type { CniConfigList } from "../../lib/cni/index.js";
import { VFIO_PCI } from "../host/driver-binding.js";
import type { NetdevLink } from "../host/netdev-link.js";

export interface NetAttachDefRef {
  namespace: string;
  name: string;
}

/**
 * Where a claim is in its life on this node. Every state is safe to resume from: a
 * claim in PrepareStarted or UnprepareStarted is rolled back, one in PrepareCompleted is
 * re-applied (see recovery.ts).
 */
export type ClaimState = "PrepareStarted" | "PrepareCompleted" | "UnprepareStarted";

/** One allocated VF with everything decided for it, so undo and redo need no API call. */
export interface PreparedVf {
  /** Request name as allocated: `main/sub` for a subrequest of a prioritized list. */
  request: string;
  pool: string;
  /** Device name in the ResourceSlice, e.g. `0000-3b-02-1`. */
  device: string;
  pciAddress: string;
  /** Driver the VF had before prepare ("" = unbound); unprepare puts it back. */
  originalDriver: string;
  /** Driver while prepared: `vfio-pci`, or the original kernel driver left as it was. */
  targetDriver: string;
  /** IOMMU group, for `/dev/vfio/<group>`; null when the host has none for the VF. */
  iommuGroup: number | null;
  /** Interface name inside the pod. */
  ifName: string;
  /**
   * A whole PF's VFs, which go into the pod beside it: with kernel drivers each through the
   * claim's network with its own address as `deviceID`, or on vfio-pci; absent for a VF.
   */
  wholePfVfs?: WholePfVf[];
  /**
   * A whole PF's netdev on the host before prepare (null: it had none), whose link state
   * unprepare puts back after the pod; with `wholePfVfs`, whose count is the `sriov_numvfs`
   * unprepare restores. Absent for a VF.
   */
  pfLink?: NetdevLink | null;
  addVhostMount: boolean;
  /** Device-plugin resource name: the published `resourceName` attribute, else the request. */
  resourceName: string;
  netAttachDef: NetAttachDefRef | null;
  /** The NetworkAttachmentDefinition's CNI configuration with this VF's `deviceID` injected. */
  cniConfig: CniConfigList | null;
  /**
   * CNI capability arguments asked for by the VfConfig (`ips`, `mac`), handed to the
   * network's plugins as `runtimeConfig` when the pod's sandbox starts. Absent: none.
   */
  runtimeConfig?: { ips?: string[]; mac?: string };
  /** Fully qualified CDI device name. */
  cdiDeviceId: string;
}

/** One VF of a whole PF. */
export interface WholePfVf {
  pciAddress: string;
  ifName: string;
  /** Null on vfio-pci, or without a network. */
  cniConfig: CniConfigList | null;
  /** Set when the VF moves to vfio-pci: its driver before, and its IOMMU group. */
  vfio?: { originalDriver: string; iommuGroup: number };
}

/** A PCI function a prepared device binds (or leaves) and the driver it has before and while. */
export type PreparedFunction = Pick<
  PreparedVf,
  "pciAddress" | "originalDriver" | "targetDriver" | "iommuGroup"
>;

/** Checkpoint entry of one claim, keyed by claim UID. */
export interface PreparedClaim {
  namespace: string;
  name: string;
  /** Pods the claim was reserved for when it was prepared. */
  podUids: string[];
  state: ClaimState;
  /**
   * The plugin instance doing the work while the state is PrepareStarted or
   * UnprepareStarted (see LiveInstance): another instance starting meanwhile leaves it be.
   */
  owner?: string;
  devices: PreparedVf[];
  cdiSpecFile: string;
}

export { VFIO_PCI };

export function isVfio(vf: Pick<PreparedVf, "targetDriver">): boolean {
  return vf.targetDriver === VFIO_PCI;
}

/** Drivers that differ between the prepared and the unprepared VF. */
export function rebindsDriver(vf: Pick<PreparedVf, "originalDriver" | "targetDriver">): boolean {
  return vf.originalDriver !== vf.targetDriver;
}

/** The names a prepared device's interfaces have in the pod: its own, and a whole PF's VFs'. */
export function interfaceNamesOf(device: Pick<PreparedVf, "ifName" | "wholePfVfs">): string[] {
  return [device.ifName, ...(device.wholePfVfs ?? []).map((vf) => vf.ifName)];
}

/** The functions a prepared device holds: the device's own, and a whole PF's VFs. */
export function functionsOf(device: PreparedVf): PreparedFunction[] {
  return [
    device,
    ...(device.wholePfVfs ?? []).map(({ pciAddress, vfio }): PreparedFunction =>
      vfio
        ? {
            pciAddress,
            originalDriver: vfio.originalDriver,
            targetDriver: VFIO_PCI,
            iommuGroup: vfio.iommuGroup,
          }
        : // A VF with its kernel driver: prepare leaves it where it is.
          { pciAddress, originalDriver: "", targetDriver: "", iommuGroup: null },
    ),
  ];
}
