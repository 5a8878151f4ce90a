import type { Logger } from "pino";
import type { ClaimRef } from "../../lib/kubeletplugin/index.js";
import { isConflict, KubeApiError, type KubeClient } from "../../lib/kube/client.js";
import { canonical } from "../../lib/util/canonical-json.js";
import { messageOf } from "../../lib/util/errors.js";
import type { PreparedClaim } from "../prepare/index.js";
import { resourceClaimsPath } from "../../lib/kube/api-paths.js";

export type StatusClient = Pick<KubeClient, "request">;

/** `status.devices[].data` of one VF: what was applied, for people and tools reading the claim. */
export interface AppliedVfData {
  pciAddress: string;
  driver: string;
  ifName: string;
  netAttachDefNamespace?: string;
  netAttachDefName?: string;
}

/** One `status.devices[]` entry; fields other writers set (conditions, networkData) pass through. */
export interface DeviceStatus {
  driver: string;
  pool: string;
  device: string;
  shareID?: string;
  data?: unknown;
  [field: string]: unknown;
}

/** A claim as read from the API server: what a status write builds on. */
export interface ClaimWithStatus {
  metadata: { uid: string; resourceVersion: string };
  status?: { devices?: DeviceStatus[] };
}

export function claimPath(ref: Pick<ClaimRef, "namespace" | "name">): string {
  return resourceClaimsPath(ref.namespace, ref.name);
}

/** Our `status.devices` entries for a prepared claim, one per VF. */
export function deviceStatusesOf(claim: PreparedClaim, driverName: string): DeviceStatus[] {
  return claim.devices.map((vf) => {
    const data: AppliedVfData = {
      pciAddress: vf.pciAddress,
      driver: vf.targetDriver,
      ifName: vf.ifName,
    };
    if (vf.netAttachDef) {
      data.netAttachDefNamespace = vf.netAttachDef.namespace;
      data.netAttachDefName = vf.netAttachDef.name;
    }
    return { driver: driverName, pool: vf.pool, device: vf.device, data };
  });
}

/**
 * The claim's device list with our entries in it: an entry for the same device keeps its
 * place and the fields others set (e.g. `networkData` once the pod's network is up) and
 * gets our `data`; new entries go at the end; other devices' entries stay as they are.
 */
export function withDeviceStatuses(
  existing: readonly DeviceStatus[],
  ours: readonly DeviceStatus[],
): DeviceStatus[] {
  const key = (entry: DeviceStatus) =>
    entry.shareID === undefined ? `${entry.driver}/${entry.pool}/${entry.device}` : undefined;
  const byKey = new Map(ours.map((entry) => [key(entry), entry]));
  const merged = existing.map((entry) => {
    const mine = byKey.get(key(entry));
    if (mine === undefined) return entry;
    byKey.delete(key(entry));
    return { ...entry, ...mine };
  });
  return [...merged, ...byKey.values()];
}

export interface ClaimStatusWriterOptions {
  driverName: string;
  logger: Logger;
  /** Waits before each retry after a failed write; default 1, 2, 4, 8, 16 s. */
  retryDelaysMs?: readonly number[];
  /** Bound on each request, so a slow API server does not hold up the kubelet's call. */
  requestTimeoutMs?: number;
}

const DEFAULT_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000];
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** Conflicting writers (the scheduler, other drivers) make us re-read at once this often. */
const CONFLICT_RETRIES = 3;

/**
 * Writes our entries of a claim's `status.devices`: what prepare applied, and the pod's
 * network once it is up. A failed write never fails the caller: the VFs work either way. It is logged and retried in the
 * background; a newer write for the claim replaces a pending retry.
 *
 * The write is read-modify-write: a JSON merge patch of the whole device list with the
 * resourceVersion it was computed from (a conflict re-reads). Server-side apply would
 * merge by key on its own, but on Kubernetes 1.37 it fails for claims whose opaque
 * config parameters are not written with sorted keys: apply re-encodes the allocation's
 * raw parameters, and the API server then refuses the "changed" allocation as immutable.
 */
export class ClaimStatusWriter {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  /** First attempts in flight, so callers and shutdown can wait for them. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly client: StatusClient,
    private readonly options: ClaimStatusWriterOptions,
  ) {}

  /**
   * Starts writing our entries of the claim's `status.devices` in the background: the
   * caller (the kubelet's prepare, the runtime's sandbox start) does not wait for it.
   * Retries on failure; never rejects. A newer write for the claim replaces a pending retry,
   * so each write carries every field we own (see deviceStatusesOf).
   */
  write(ref: ClaimRef, devices: DeviceStatus[], read?: ClaimWithStatus): void {
    this.cancel(ref.uid);
    const attempt = this.attempt(ref, devices, 0, read);
    this.inFlight.add(attempt);
    void attempt.finally(() => this.inFlight.delete(attempt));
  }

  /** Resolves when every first attempt started so far has finished (retries aside). */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Drops pending retries (on shutdown). */
  stop(): void {
    for (const uid of [...this.pending.keys()]) this.cancel(uid);
  }

  private cancel(uid: string): void {
    clearTimeout(this.pending.get(uid));
    this.pending.delete(uid);
  }

  private async attempt(
    ref: ClaimRef,
    ours: DeviceStatus[],
    failures: number,
    read?: ClaimWithStatus,
  ): Promise<void> {
    const log = this.options.logger.child({
      claim: `${ref.namespace}/${ref.name}`,
      claimUid: ref.uid,
    });
    try {
      const written = await this.readModifyWrite(ref, ours, read);
      if (!written) {
        log.info("the claim was re-created; not writing status.devices of the old one");
      } else if (failures > 0) {
        log.info({ attempts: failures + 1 }, "wrote status.devices of the claim");
      }
    } catch (error) {
      const delay = (this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS)[failures];
      if (!isRetryable(error) || delay === undefined) {
        log.warn(
          { err: messageOf(error), attempts: failures + 1 },
          "giving up writing status.devices of the claim; the VFs are prepared regardless",
        );
        return;
      }
      log.warn(
        { err: messageOf(error), retryInMs: delay },
        "cannot write status.devices of the claim; retrying",
      );
      const timer = setTimeout(() => {
        this.pending.delete(ref.uid);
        void this.attempt(ref, ours, failures + 1);
      }, delay);
      timer.unref();
      this.pending.set(ref.uid, timer);
    }
  }

  /**
   * False when the claim is not the one prepared (re-created under its name). `read` (the
   * claim as the caller just read it) saves the first GET; the write is conditional on its
   * resourceVersion, so a claim changed since costs a conflict and a fresh read.
   */
  private async readModifyWrite(
    ref: ClaimRef,
    ours: DeviceStatus[],
    read: ClaimWithStatus | undefined,
  ): Promise<boolean> {
    const timeout = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    for (let conflicts = 0; ; conflicts++) {
      const current =
        (conflicts === 0 ? read : undefined) ??
        (await this.client.request<ClaimWithStatus>({
          method: "GET",
          path: claimPath(ref),
          signal: AbortSignal.timeout(timeout),
        }));
      if (current.metadata.uid !== ref.uid) return false;
      const existing = current.status?.devices ?? [];
      const devices = withDeviceStatuses(existing, ours);
      if (canonical(devices) === canonical(existing)) return true;
      try {
        await this.client.request({
          method: "PATCH",
          path: `${claimPath(ref)}/status`,
          contentType: "application/merge-patch+json",
          body: {
            metadata: { resourceVersion: current.metadata.resourceVersion },
            status: { devices },
          },
          signal: AbortSignal.timeout(timeout),
        });
        return true;
      } catch (error) {
        if (!isConflict(error) || conflicts >= CONFLICT_RETRIES) throw error;
      }
    }
  }
}

/**
 * Gone (404) and invalid (422: e.g. the device is no longer allocated) stay so; anything
 * else (network, throttling, RBAC being fixed) may pass on a retry.
 */
function isRetryable(error: unknown): boolean {
  return !(error instanceof KubeApiError && (error.status === 404 || error.status === 422));
}
