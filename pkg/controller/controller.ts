import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import {
  CONDITION_CONFLICTING,
  SRIOV_RESOURCE_FILTER_KIND,
  type SriovResourceFilterStatus,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { formatFilterRef } from "../filters/apply.js";
import { isConflict, isNotFound, KubeApiError, type KubeClient } from "../../lib/kube/client.js";
import { ListWatch } from "../../lib/kube/list-watch.js";
import {
  statusWrite,
  statusWrites,
  type FilterResource,
  type StatusWrite,
} from "./filter-status.js";
import { LeaderElector } from "./leader-election.js";
import {
  allDevicesByNode,
  publishedDevicesByNode,
  type UnreadableDevice,
} from "./slice-devices.js";
import { CoalescingRunner } from "../../lib/util/coalescing-runner.js";
import { sriovResourceFiltersPath } from "../../api/v1alpha1/group.js";
import { nodesPath, resourceSlicesPath } from "../../lib/kube/api-paths.js";

export interface FilterStatusControllerOptions {
  /** Namespace of the SriovResourceFilters the node plugins apply. */
  namespace: string;
  /** DRA driver name: whose ResourceSlices to read, and the attribute domain. */
  driverName: string;
  /** This replica's name (the pod name); the lease holder identity. */
  identity: string;
  logger: Logger;
  /** Elect one leader through a Lease; needed when more than one replica runs. */
  leaderElection: boolean;
  /** Namespace of the Lease; defaults to `namespace`. */
  leaseNamespace?: string;
  leaseName?: string;
  leaseDurationSeconds?: number;
  leaseRetryPeriodMs?: number;
  leaseRenewDeadlineMs?: number;
  /** Changes within this window after the first one cost a single pass. */
  debounceMs?: number;
  /** Upper bound of the retry backoff after a failed pass. */
  maxBackoffMs?: number;
  /** Called after every pass that ran to the end, for metrics and benchmarks. */
  onPass?: (pass: PassStats) => void;
}

/** One pass: filters looked at, statuses written, and the time spent computing and writing. */
export interface PassStats {
  filters: number;
  writes: number;
  computeMs: number;
  writeMs: number;
}

/** What the controller has done so far. */
export interface ControllerStats {
  passes: number;
  statusWrites: number;
}

export const DEFAULT_LEASE_NAME = "dra-driver-sriov-controller";
const DEFAULT_DEBOUNCE_MS = 150;
/** Status writes in flight at once: fast on a first pass over many filters, gentle on the API server. */
const WRITE_CONCURRENCY = 8;
/** Re-reads after a 409 before the write is left to the next pass. */
const MAX_CONFLICT_RETRIES = 3;

/**
 * Writes the status of every SriovResourceFilter in one namespace: `Accepted` (the spec is
 * valid), `Conflicting` (on some node, VFs it matches went to a filter that takes
 * precedence), `matchedNodes` and `devicesExposed`. It watches filters, Nodes and the
 * driver's ResourceSlices, and after any change (debounced) recomputes all statuses from
 * those caches and writes only the ones that differ. Never in the data path: the node
 * plugins apply filters on their own; this only reports.
 */
export class FilterStatusController {
  private readonly filters: ListWatch;
  private readonly nodes: ListWatch;
  private readonly slices: ListWatch;
  private readonly elector: LeaderElector | undefined;
  private readonly filtersPath: string;
  private debounceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly runner = new CoalescingRunner(() => this.reconcileOnce());
  private backoffMs = 200;
  private stopped = false;
  private lastUnreadable = "";
  /**
   * Our status writes the filter watch has not shown yet: filter key → the object the write
   * returned, and the resourceVersion it replaced. A pass in between would otherwise see
   * the old status, write it again and earn a 409.
   */
  private readonly unseenWrites = new Map<
    string,
    { replaced: string | undefined; written: FilterResource }
  >();
  readonly stats: ControllerStats = { passes: 0, statusWrites: 0 };

  constructor(
    private readonly client: KubeClient,
    private readonly options: FilterStatusControllerOptions,
  ) {
    const { logger, namespace, driverName } = options;
    const onChange = () => this.trigger();
    this.filtersPath = sriovResourceFiltersPath(namespace);
    this.filters = new ListWatch(client, { path: this.filtersPath, logger, onChange });
    this.nodes = new ListWatch(client, { path: nodesPath(), logger, onChange });
    this.slices = new ListWatch(client, {
      path: resourceSlicesPath(),
      fieldSelector: `spec.driver=${driverName}`,
      logger,
      onChange,
    });
    this.elector = options.leaderElection
      ? new LeaderElector(client, {
          namespace: options.leaseNamespace ?? namespace,
          name: options.leaseName ?? DEFAULT_LEASE_NAME,
          identity: options.identity,
          logger,
          leaseDurationSeconds: options.leaseDurationSeconds,
          retryPeriodMs: options.leaseRetryPeriodMs,
          renewDeadlineMs: options.leaseRenewDeadlineMs,
          onStartedLeading: () => this.trigger(),
          onStoppedLeading: () => this.cancelPendingPass(),
        })
      : undefined;
  }

  /** True when this replica writes status: it leads, or runs without leader election. */
  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  /** Starts the watches (followers keep theirs warm, to take over without a relist). */
  start(): void {
    this.filters.start();
    this.nodes.start();
    this.slices.start();
    this.elector?.start();
  }

  /** Stops writing and watching; a leader gives its lease back once its last write is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelPendingPass();
    await this.runner.stop();
    await this.elector?.stop();
    await Promise.all([this.filters.stop(), this.nodes.stop(), this.slices.stop()]);
  }

  /** The first change opens a short window; everything arriving in it is one pass. */
  private trigger(): void {
    if (this.stopped || this.debounceTimer !== undefined) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.schedule();
    }, this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.debounceTimer.unref();
  }

  private cancelPendingPass(): void {
    clearTimeout(this.debounceTimer);
    clearTimeout(this.retryTimer);
    this.debounceTimer = undefined;
    this.retryTimer = undefined;
  }

  private schedule(): Promise<void> {
    return this.runner.trigger();
  }

  private async reconcileOnce(): Promise<void> {
    const synced = this.filters.hasSynced && this.nodes.hasSynced && this.slices.hasSynced;
    if (!synced || !this.isLeader) return;
    try {
      await this.pass();
      this.backoffMs = 200;
    } catch (error) {
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
      this.options.logger.warn(
        {
          namespace: this.options.namespace,
          err: error,
          retryInMs: delay,
          ...(isForbidden(error)
            ? {
                hint: "grant the controller's service account update on sriovresourcefilters/status",
              }
            : {}),
        },
        "SriovResourceFilter status pass failed; retrying",
      );
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.schedule(), delay);
      this.retryTimer.unref();
    }
  }

  private async pass(): Promise<void> {
    const started = performance.now();
    const published = publishedDevicesByNode(this.slices.items.values(), this.options.driverName);
    this.reportUnreadable(published.unreadable);
    const filters = this.currentFilters();
    const writes = statusWrites(
      {
        filters,
        nodes: [...this.nodes.items.values()],
        devicesByNode: allDevicesByNode(published),
      },
      new Date(),
    );
    const computed = performance.now();
    const failures: unknown[] = [];
    let written = 0;
    await forEachLimited(writes, WRITE_CONCURRENCY, async (write) => {
      try {
        if (await this.writeStatus(write)) written++;
      } catch (error) {
        failures.push(error);
      }
    });
    const pass: PassStats = {
      filters: filters.length,
      writes: written,
      computeMs: computed - started,
      writeMs: performance.now() - computed,
    };
    this.stats.passes++;
    this.stats.statusWrites += written;
    this.options.logger.debug(
      { namespace: this.options.namespace, ...pass },
      "SriovResourceFilter status pass done",
    );
    this.options.onPass?.(pass);
    if (failures.length > 0) {
      throw new AggregateError(
        failures,
        `${failures.length} of ${writes.length} status writes failed`,
      );
    }
  }

  /** The cached filters, with our own writes the watch has not delivered yet laid over them. */
  private currentFilters(): FilterResource[] {
    for (const key of this.unseenWrites.keys()) {
      if (!this.filters.items.has(key)) this.unseenWrites.delete(key);
    }
    return [...this.filters.items].map(([key, cached]) => {
      const unseen = this.unseenWrites.get(key);
      if (unseen === undefined) return cached;
      if (cached.metadata?.resourceVersion === unseen.replaced) return unseen.written;
      // The watch caught up with our write, or someone wrote after it: the cache is current.
      this.unseenWrites.delete(key);
      return cached;
    });
  }

  /**
   * Replaces the status, conditional on the resourceVersion it was computed against. On a
   * 409 it re-reads the filter and retries with the fresh stored status; a changed spec is
   * left to the pass its watch event brings. Returns whether it wrote.
   */
  private async writeStatus(first: StatusWrite): Promise<boolean> {
    const { namespace, name, generation } = first.desired;
    const path = `${this.filtersPath}/${name}`;
    let write = first;
    for (let attempt = 1; ; attempt++) {
      if (!this.isLeader || this.stopped) return false;
      try {
        const written = await this.client.request<FilterResource>({
          method: "PUT",
          path: `${path}/status`,
          body: {
            apiVersion: API_VERSION,
            kind: SRIOV_RESOURCE_FILTER_KIND,
            metadata: { namespace, name, resourceVersion: write.resourceVersion },
            status: write.status,
          },
        });
        const key = formatFilterRef({ namespace, name });
        this.unseenWrites.set(key, { replaced: first.resourceVersion, written });
        this.logWrite(key, write.status);
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        if (!isConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
      let fresh: FilterResource;
      try {
        fresh = await this.client.request<FilterResource>({ method: "GET", path });
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
      if (fresh.metadata?.generation !== generation) return false;
      const next = statusWrite(first.desired, fresh, new Date());
      if (next === undefined) return false;
      write = next;
    }
  }

  private logWrite(filter: string, status: SriovResourceFilterStatus): void {
    const conditions = Object.fromEntries(
      (status.conditions ?? []).map((c) => [c.type, `${c.status} (${c.reason})`]),
    );
    const fields = {
      filter,
      conditions,
      matchedNodes: status.matchedNodes,
      devicesExposed: status.devicesExposed,
    };
    const conflicting = status.conditions?.find((c) => c.type === CONDITION_CONFLICTING);
    if (conflicting?.status === "True") {
      this.options.logger.warn(
        { ...fields, conflict: conflicting.message },
        "SriovResourceFilter loses VFs to other filters",
      );
    } else this.options.logger.info(fields, "updated SriovResourceFilter status");
  }

  /** Warns when the set of unreadable published devices changes, not on every pass. */
  private reportUnreadable(unreadable: readonly UnreadableDevice[]): void {
    const summary = JSON.stringify(unreadable.slice(0, 5));
    const signature = `${unreadable.length} ${summary}`;
    if (signature === this.lastUnreadable) return;
    this.lastUnreadable = signature;
    if (unreadable.length === 0) return;
    this.options.logger.warn(
      {
        driver: this.options.driverName,
        count: unreadable.length,
        examples: unreadable.slice(0, 5),
      },
      "some published devices lack attributes filters match on; they are left out of " +
        "conflict checks (are node plugins of an older version running?)",
    );
  }
}

function isForbidden(error: unknown): boolean {
  const errors = error instanceof AggregateError ? error.errors : [error];
  return errors.some((inner) => inner instanceof KubeApiError && inner.status === 403);
}

/** Runs `work` over the items with at most `limit` in flight. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
