import type { ClaimRef } from "../../lib/kubeletplugin/index.js";
import type { DeviceStatus } from "../claimstatus/claim-status.js";
import { ClaimError } from "./claim-error.js";

/** One allocated device (`status.allocation.devices.results[]`). */
export interface DeviceResult {
  request: string;
  driver: string;
  pool: string;
  device: string;
}

/** One configuration the allocation carries (`status.allocation.devices.config[]`). */
export interface AllocationConfig {
  source: "FromClass" | "FromClaim";
  requests?: string[];
  opaque?: { driver: string; parameters: unknown };
}

export interface ConsumerRef {
  apiGroup?: string;
  resource: string;
  name: string;
  uid: string;
}

/** The parts of a `resource.k8s.io/v1` ResourceClaim this driver reads. */
export interface ResourceClaim {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  status?: {
    allocation?: { devices?: { results?: DeviceResult[]; config?: AllocationConfig[] } };
    reservedFor?: ConsumerRef[];
    devices?: DeviceStatus[];
  };
}

export interface NodeAllocation {
  /** Our driver's devices, in allocation order. */
  results: DeviceResult[];
  configs: AllocationConfig[];
  podUids: string[];
}

/**
 * Our driver's part of a claim's allocation on this node. Refuses a claim that is not the
 * one the kubelet means (re-created under the same name), not allocated, allocated to
 * another node's pool, or not reserved for any pod.
 */
export function nodeAllocationOf(
  claim: ResourceClaim,
  ref: ClaimRef,
  options: { driverName: string; nodeName: string },
): NodeAllocation {
  const name = `ResourceClaim ${ref.namespace}/${ref.name}`;
  if (claim.metadata.uid !== ref.uid) {
    throw new ClaimError(
      `${name} has UID ${claim.metadata.uid}, not ${ref.uid} as the kubelet asked: the claim was deleted and re-created; the kubelet retries with the new one once the pod is updated`,
    );
  }
  const devices = claim.status?.allocation?.devices;
  if (devices === undefined) {
    throw new ClaimError(
      `${name} is not allocated: the scheduler allocates it before the pod starts; check the pod's scheduling events`,
    );
  }
  const results = (devices.results ?? []).filter((result) => result.driver === options.driverName);
  if (results.length === 0) {
    throw new ClaimError(`${name} has no device of driver ${options.driverName} allocated`);
  }
  const elsewhere = results.find((result) => result.pool !== options.nodeName);
  if (elsewhere !== undefined) {
    throw new ClaimError(
      `${name}: device ${elsewhere.device} is allocated from pool ${elsewhere.pool}, but this is node ${options.nodeName}: the pod belongs on the node that publishes pool ${elsewhere.pool}`,
    );
  }
  const podUids = (claim.status?.reservedFor ?? [])
    .filter((consumer) => (consumer.apiGroup ?? "") === "" && consumer.resource === "pods")
    .map((consumer) => consumer.uid);
  if (podUids.length === 0) {
    throw new ClaimError(
      `${name} is not reserved for any pod: the scheduler reserves it for the pod it schedules; check status.reservedFor`,
    );
  }
  return { results, configs: devices.config ?? [], podUids };
}

/**
 * A device allocated for a subrequest (`main/sub`) belongs to request `main`: that is the
 * name containers and configs reference.
 */
export function baseRequestName(request: string): string {
  return request.split("/", 1)[0]!;
}
