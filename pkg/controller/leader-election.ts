import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import { isConflict, isNotFound, type KubeClient, type ObjectMeta } from "../../lib/kube/client.js";
import { leasesPath } from "../../lib/kube/api-paths.js";

/** `coordination.k8s.io/v1` LeaseSpec, the fields leader election uses. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: ObjectMeta;
  spec?: LeaseRecord;
}

/** A lease record and when this process first saw it, by its own monotonic clock. */
export interface ObservedLease {
  record: LeaseRecord;
  observedAtMs: number;
}

export type LeaseDecision =
  | { action: "create" }
  | { action: "renew" }
  | { action: "acquire"; because: "released" | "expired" }
  | { action: "follow"; holder: string; expiresInMs: number };

/**
 * What to do with the lease. A lease expires when its record has not changed for its
 * duration *as this process measured it*: comparing the holder's renewTime with our own
 * wall clock would make clock skew between nodes decide who leads.
 */
export function decideLease(
  observed: ObservedLease | undefined,
  identity: string,
  nowMs: number,
  defaultDurationSeconds: number,
): LeaseDecision {
  if (observed === undefined) return { action: "create" };
  const { holderIdentity, leaseDurationSeconds } = observed.record;
  if (holderIdentity === identity) return { action: "renew" };
  if (holderIdentity === undefined || holderIdentity === "") {
    return { action: "acquire", because: "released" };
  }
  const durationMs = (leaseDurationSeconds ?? defaultDurationSeconds) * 1000;
  const expiresInMs = observed.observedAtMs + durationMs - nowMs;
  if (expiresInMs <= 0) return { action: "acquire", because: "expired" };
  return { action: "follow", holder: holderIdentity, expiresInMs };
}

/** The record to write for a create, renew or acquire. */
export function nextLeaseRecord(
  current: LeaseRecord | undefined,
  action: "create" | "renew" | "acquire",
  identity: string,
  leaseDurationSeconds: number,
  now: Date,
): LeaseRecord {
  const stamp = formatMicroTime(now);
  if (action === "renew" && current !== undefined) {
    return { ...current, holderIdentity: identity, leaseDurationSeconds, renewTime: stamp };
  }
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: stamp,
    renewTime: stamp,
    leaseTransitions: action === "create" ? 0 : (current?.leaseTransitions ?? 0) + 1,
  };
}

/** Given back on a clean stop, so a follower takes over at its next try instead of after expiry. */
export function releasedLeaseRecord(current: LeaseRecord, now: Date): LeaseRecord {
  const released: LeaseRecord = {
    ...current,
    leaseDurationSeconds: 1,
    renewTime: formatMicroTime(now),
  };
  delete released.holderIdentity;
  return released;
}

/** Whether a leader that last renewed at `lastRenewMs` may still act as one. */
export function stillLeading(lastRenewMs: number, nowMs: number, renewDeadlineMs: number): boolean {
  return nowMs - lastRenewMs < renewDeadlineMs;
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits, as the API server parses it. */
export function formatMicroTime(time: Date): string {
  return time.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  /** Who holds the lease: the pod name. Must differ between replicas. */
  identity: string;
  logger: Logger;
  leaseDurationSeconds?: number;
  /** How often the leader renews and followers retry. */
  retryPeriodMs?: number;
  /** A leader that could not renew for this long steps down; below the lease duration. */
  renewDeadlineMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

export const DEFAULT_LEASE_DURATION_SECONDS = 15;
export const DEFAULT_RETRY_PERIOD_MS = 5_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;

/**
 * Leader election on a `coordination.k8s.io/v1` Lease, like client-go's: every write is
 * conditional on the resourceVersion read (two candidates cannot both win), the leader
 * renews every retry period, and steps down when it has not managed to for the renew
 * deadline, which is shorter than the lease, so it stops before anyone may take over.
 */
export class LeaderElector {
  private readonly path: string;
  private readonly leaseDurationSeconds: number;
  private readonly retryPeriodMs: number;
  private readonly renewDeadlineMs: number;
  private observed: ObservedLease | undefined;
  private lastRenewMs = Number.NEGATIVE_INFINITY;
  private leading = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectorOptions,
  ) {
    this.path = leasesPath(options.namespace);
    this.leaseDurationSeconds = options.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS;
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    if (this.renewDeadlineMs >= this.leaseDurationSeconds * 1000) {
      throw new Error(
        `renew deadline (${this.renewDeadlineMs} ms) must be shorter than the lease ` +
          `(${this.leaseDurationSeconds} s), or two leaders could overlap`,
      );
    }
  }

  /** True while this process holds a lease it renewed within the renew deadline. */
  get isLeader(): boolean {
    return this.leading && stillLeading(this.lastRenewMs, performance.now(), this.renewDeadlineMs);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops trying and, when leading, gives the lease back. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release();
    }
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    while (!this.abort.signal.aborted) {
      let waitMs = this.retryPeriodMs;
      try {
        const decision = await this.tryAcquireOrRenew();
        if (decision.action === "follow") {
          // Retry early enough to take an expiring lease promptly; jitter spreads followers.
          waitMs = Math.min(this.retryPeriodMs, decision.expiresInMs) * (1 + Math.random() * 0.2);
        }
      } catch (error) {
        if (this.abort.signal.aborted) break;
        logger.warn(
          { lease: this.leaseName(), err: error, retryInMs: waitMs },
          "leader election: cannot read or write the lease; retrying",
        );
      }
      if (this.leading && !this.isLeader) {
        logger.error(
          { lease: this.leaseName(), renewDeadlineMs: this.renewDeadlineMs },
          "leader election: could not renew the lease in time; stepping down",
        );
        this.setLeading(false);
      }
      await delay(waitMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }

  private async tryAcquireOrRenew(): Promise<LeaseDecision> {
    const lease = await this.read();
    const nowMs = performance.now();
    this.observe(lease?.spec ?? {}, lease === undefined, nowMs);
    const decision = decideLease(
      lease === undefined ? undefined : this.observed,
      this.options.identity,
      nowMs,
      this.leaseDurationSeconds,
    );
    if (decision.action === "follow") {
      if (this.leading) {
        this.options.logger.warn(
          { lease: this.leaseName(), holder: decision.holder },
          "leader election: another replica holds the lease; stepping down",
        );
        this.setLeading(false);
      }
      return decision;
    }
    const record = nextLeaseRecord(
      lease?.spec,
      decision.action,
      this.options.identity,
      this.leaseDurationSeconds,
      new Date(),
    );
    try {
      await this.write(lease, record);
    } catch (error) {
      // Someone else wrote first: we did not get (or keep) the lease this round.
      if (!isConflict(error)) throw error;
      if (this.leading) this.setLeading(false);
      return decision;
    }
    this.lastRenewMs = nowMs;
    if (!this.leading) {
      this.options.logger.info(
        {
          lease: this.leaseName(),
          identity: this.options.identity,
          ...(decision.action === "acquire" ? { because: decision.because } : {}),
        },
        "leader election: acquired the lease; leading",
      );
      this.setLeading(true);
    }
    return decision;
  }

  /** Restarts the expiry clock whenever the record changes (a renewal, a new holder). */
  private observe(record: LeaseRecord, absent: boolean, nowMs: number): void {
    if (absent) {
      this.observed = undefined;
      return;
    }
    const same =
      this.observed !== undefined &&
      this.observed.record.holderIdentity === record.holderIdentity &&
      this.observed.record.renewTime === record.renewTime;
    if (!same) this.observed = { record, observedAtMs: nowMs };
  }

  private async read(): Promise<Lease | undefined> {
    try {
      return await this.client.request<Lease>({
        method: "GET",
        path: `${this.path}/${this.options.name}`,
        signal: this.abort.signal,
      });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Create when absent, else replace conditionally on the resourceVersion read. */
  private async write(current: Lease | undefined, spec: LeaseRecord): Promise<void> {
    const body: Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: this.options.name,
        namespace: this.options.namespace,
        ...(current?.metadata.resourceVersion === undefined
          ? {}
          : { resourceVersion: current.metadata.resourceVersion }),
      },
      spec,
    };
    await this.client.request<Lease>(
      current === undefined
        ? { method: "POST", path: this.path, body }
        : { method: "PUT", path: `${this.path}/${this.options.name}`, body },
    );
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.client.request<Lease>({
        method: "GET",
        path: `${this.path}/${this.options.name}`,
      });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.write(lease, releasedLeaseRecord(lease.spec, new Date()));
      this.options.logger.info({ lease: this.leaseName() }, "leader election: released the lease");
    } catch (error) {
      this.options.logger.warn(
        { lease: this.leaseName(), err: error },
        "leader election: could not release the lease; another replica takes over when it expires",
      );
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }
}
