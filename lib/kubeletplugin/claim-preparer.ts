/** A ResourceClaim as the kubelet names it in prepare and unprepare calls. */
export interface ClaimRef {
  namespace: string;
  name: string;
  uid: string;
}

/** One allocated device made ready for the pod's containers. */
export interface PreparedDevice {
  /** Requests of the claim this device satisfies; empty means all of them. */
  requestNames: string[];
  poolName: string;
  deviceName: string;
  /** Fully qualified CDI device names (`vendor/class=name`) the runtime injects. */
  cdiDeviceIds: string[];
}

export type PrepareOutcome = { devices: PreparedDevice[] } | { error: string };

export interface UnprepareOutcome {
  error?: string;
}

/**
 * What the driver implements for the kubelet's DRA node service, independent of the gRPC
 * API version the kubelet speaks.
 *
 * Results are keyed by claim UID. A claim missing from the result is reported to the
 * kubelet as failed (it retries); an exception fails every claim of the call. Calls may
 * overlap: implementations serialize work per claim UID and run different claims in parallel. During a rolling update the kubelet may send a claim
 * prepared by the old pod to the new one, so state must live outside the process
 * (the checkpoint).
 */
export interface ClaimPreparer {
  /** Must be idempotent: the kubelet repeats calls after timeouts and restarts. */
  prepare(claims: readonly ClaimRef[], signal: AbortSignal): Promise<Map<string, PrepareOutcome>>;
  /** Must succeed for claims that were never prepared or are already unprepared. */
  unprepare(
    claims: readonly ClaimRef[],
    signal: AbortSignal,
  ): Promise<Map<string, UnprepareOutcome>>;
}
