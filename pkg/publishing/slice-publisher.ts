import type { Logger } from "pino";
import { isPfDevice, type Device } from "../devices/model.js";
import {
  countersDropped,
  keptSliceOf,
  planSlices,
  type KeptSlice,
  type PublishedSlice,
} from "../slices/plan.js";
import { renderSlices, type DeviceTaint, type ResourceSlice } from "../slices/render.js";
import type { PublishOrder } from "../slices/order.js";
import { isConflict, isNotFound, type KubeClient, type KubeObject } from "../../lib/kube/client.js";
import { ListWatch } from "../../lib/kube/list-watch.js";
import { CoalescingRunner } from "../../lib/util/coalescing-runner.js";
import { resourceSlicesPath } from "../../lib/kube/api-paths.js";

const UNSEEN_WRITES_TIMEOUT_MS = 5_000;

export interface SlicePublisherOptions {
  driverName: string;
  nodeName: string;
  logger: Logger;
  /** Upper bound of the retry backoff after a failed write. */
  maxBackoffMs?: number;
  /** The order the scheduler meets the devices in (pkg/slices/order); spread by default. */
  order?: PublishOrder;
}

/** What the publisher has done, for readiness, metrics and benchmarks. */
export interface PublisherStats {
  writes: number;
  /** Generation of the pool as last written or found current. */
  generation: number;
  /** True once the desired slices were confirmed on the API server at least once. */
  published: boolean;
  /**
   * True once the API server dropped the counters of a slice (DRAPartitionableDevices off):
   * whole PFs are left out from then on, until the daemon restarts.
   */
  countersRefused: boolean;
}

/**
 * Keeps this node's ResourceSlices equal to what the devices render to: watches the
 * driver's slices for this node, and after every change on either side writes only
 * what differs (see planSlices). Slices are owned by the Node object, so they go with it.
 * The API server being down or slow only delays convergence: writes retry with backoff
 * forever, and the watch brings back anything deleted behind our back (the kubelet
 * deletes a plugin's slices when it unregisters).
 */
export class SlicePublisher {
  private readonly watch: ListWatch;
  private devices: readonly Device[] | undefined;
  private taints: ReadonlyMap<string, readonly DeviceTaint[]> = new Map();
  private nodeUid: string | undefined;
  private readonly runner = new CoalescingRunner(() => this.reconcileOnce());
  private retryTimer: NodeJS.Timeout | undefined;
  private backoff = 200;
  /** Our own writes the watch has not shown us yet: name → resourceVersion, or null for a delete. */
  private unseenWrites = new Map<string, string | null>();
  private unseenSince = 0;
  readonly stats: PublisherStats = {
    writes: 0,
    generation: 0,
    published: false,
    countersRefused: false,
  };

  constructor(
    private readonly client: KubeClient,
    private readonly options: SlicePublisherOptions,
  ) {
    this.watch = new ListWatch(client, {
      path: resourceSlicesPath(),
      fieldSelector: `spec.driver=${options.driverName},spec.nodeName=${options.nodeName}`,
      logger: options.logger,
      onChange: () => this.schedule(),
      keep: (object) => keptSliceOf(object as unknown as PublishedSlice),
    });
  }

  start(): void {
    this.watch.start();
  }

  /**
   * Sets what to publish (the devices, and the taints of those that have any); returns when
   * the attempt it triggers (or a later one) has finished.
   */
  publish(
    devices: readonly Device[],
    taints: ReadonlyMap<string, readonly DeviceTaint[]> = new Map(),
  ): Promise<void> {
    this.devices = devices;
    this.taints = taints;
    return this.schedule();
  }

  async stop(): Promise<void> {
    const lastRun = this.runner.stop();
    clearTimeout(this.retryTimer);
    await this.watch.stop();
    await lastRun;
  }

  private schedule(): Promise<void> {
    return this.runner.trigger();
  }

  private async reconcileOnce(): Promise<void> {
    if (this.devices === undefined || !this.watch.hasSynced) return;
    try {
      await this.apply(this.devices);
      this.backoff = 200;
    } catch (error) {
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs ?? 30_000);
      this.options.logger.warn(
        { err: error, retryInMs: delay },
        "publishing ResourceSlices failed; retrying",
      );
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.schedule(), isConflict(error) ? 50 : delay);
      this.retryTimer.unref();
    }
  }

  /**
   * Planning against a cache that lacks our last writes would bump the generation again
   * and conflict; wait for the watch to echo them (bounded, in case an event was lost).
   */
  private cacheHasOurWrites(): boolean {
    for (const [name, resourceVersion] of this.unseenWrites) {
      const cached = this.watch.items.get(name);
      const seen =
        resourceVersion === null
          ? cached === undefined
          : cached?.metadata?.resourceVersion === resourceVersion;
      if (seen) this.unseenWrites.delete(name);
    }
    if (this.unseenWrites.size > 0 && Date.now() - this.unseenSince > UNSEEN_WRITES_TIMEOUT_MS) {
      this.options.logger.warn(
        { slices: [...this.unseenWrites.keys()] },
        "watch never showed our writes; planning anyway",
      );
      this.unseenWrites.clear();
    }
    return this.unseenWrites.size === 0;
  }

  private async apply(devices: readonly Device[]): Promise<void> {
    const { driverName, nodeName, logger } = this.options;
    if (!this.cacheHasOurWrites()) {
      setTimeout(() => void this.schedule(), UNSEEN_WRITES_TIMEOUT_MS).unref();
      return;
    }
    const published = [...this.watch.items.values()] as unknown as KeptSlice[];
    const publishable = this.stats.countersRefused
      ? devices.filter((device) => !isPfDevice(device))
      : devices;
    const desired = renderSlices(publishable, {
      driverName,
      nodeName,
      generation: 0,
      taints: this.taints,
      order: this.options.order,
    });
    const plan = planSlices(desired, published);
    // Counter sets first: if the server drops them, no whole PF is out there without them.
    const puts = [
      ...plan.create.map((slice) => ({ slice, resourceVersion: undefined, create: true })),
      ...plan.update.map((update) => ({ ...update, create: false })),
    ].sort((a, b) => Number(!a.slice.spec.sharedCounters) - Number(!b.slice.spec.sharedCounters));
    const writes = puts.length + plan.delete.length;
    if (writes > 0) {
      const owner = await this.ownerReference();
      this.unseenSince = Date.now();
      for (const { slice, resourceVersion, create } of puts) {
        const body = withOwner(slice, owner);
        if (!create) body.metadata = { ...body.metadata, resourceVersion };
        const written = await this.client.request<KubeObject>({
          method: create ? "POST" : "PUT",
          path: create ? resourceSlicesPath() : resourceSlicesPath(slice.metadata.name),
          body,
        });
        // Counted as each write lands, so readers of the stats never lag the API server.
        this.stats.writes++;
        this.unseenWrites.set(written.metadata!.name!, written.metadata!.resourceVersion!);
        if (countersDropped(slice, written as unknown as PublishedSlice)) {
          this.refuseCounters(slice.metadata.name);
          return;
        }
      }
      for (const slice of plan.delete) {
        await this.deleteSlice(slice);
        this.stats.writes++;
        this.unseenWrites.set(slice.metadata.name, null);
      }
      logger.info(
        {
          devices: publishable.length,
          slices: desired.length,
          generation: plan.generation,
          writes,
        },
        "published ResourceSlices",
      );
    }
    this.stats.generation = plan.generation;
    this.stats.published = true;
  }

  /** The cluster cannot keep a whole PF apart from its VFs: publish VFs only, and say why. */
  private refuseCounters(slice: string): void {
    this.stats.countersRefused = true;
    this.options.logger.error(
      { slice },
      "the API server dropped the counters of a ResourceSlice: DRAPartitionableDevices is off in this cluster, so a whole PF could be given out together with its VFs. Publishing VFs only; enable the DRAPartitionableDevices feature gate on kube-apiserver and kube-scheduler and restart this plugin, or leave --publish-pfs off",
    );
    void this.schedule();
  }

  private async deleteSlice(slice: KeptSlice): Promise<void> {
    try {
      await this.client.request({
        method: "DELETE",
        path: resourceSlicesPath(slice.metadata.name),
        body: { preconditions: { uid: slice.metadata.uid } },
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** The Node owns our slices so they are garbage-collected with it; none if the Node is missing. */
  private async ownerReference(): Promise<KubeObject["metadata"]> {
    if (this.nodeUid === undefined) {
      try {
        const node = await this.client.request<KubeObject>({
          method: "GET",
          path: `/api/v1/nodes/${this.options.nodeName}`,
        });
        this.nodeUid = node.metadata?.uid;
      } catch (error) {
        if (!isNotFound(error)) throw error;
        this.options.logger.warn(
          { node: this.options.nodeName },
          "Node object not found; slices get no owner",
        );
        return {};
      }
    }
    return {
      ownerReferences: [
        {
          apiVersion: "v1",
          kind: "Node",
          name: this.options.nodeName,
          uid: this.nodeUid!,
          controller: true,
        },
      ],
    };
  }
}

function withOwner(
  slice: ResourceSlice,
  owner: KubeObject["metadata"],
): ResourceSlice & { metadata: KubeObject["metadata"] } {
  return { ...slice, metadata: { ...slice.metadata, ...owner } };
}
