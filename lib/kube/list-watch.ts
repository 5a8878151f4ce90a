import type { Logger } from "pino";
import {
  KubeApiError,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type Query,
} from "./client.js";

export interface ListWatchOptions {
  /** Collection path, e.g. `/apis/resource.k8s.io/v1/resourceslices`. */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Called after every change to the cache (and after each relist), with all objects. */
  onChange: (objects: ReadonlyMap<string, KubeObject>) => void;
  /** What to keep of each object (all of it by default): big objects can be kept as digests. */
  keep?: (object: KubeObject) => KubeObject;
  logger: Logger;
  /** Server-side watch timeout; each watch picks a jittered value in [t, 2t). */
  watchTimeoutSeconds?: number;
  maxBackoffMs?: number;
  /**
   * A collection that may not exist (a CRD not installed): a 404 counts as synced and
   * empty, and the list is retried with backoff until it appears.
   */
  optional?: boolean;
}

const GONE = 410;
const NOT_FOUND = 404;

/**
 * A cache of one collection kept current by list + watch, written here instead of
 * client-node's informer (which stalls silently and gives up for good after a non-410
 * error). Properties:
 * - watches use bookmarks and jittered server-side timeouts, and resume from the last
 *   resourceVersion seen; a 410 (history compacted) relists;
 * - any failure retries with capped exponential backoff; the loop never exits until stop();
 * - a watchdog aborts a watch that has gone quiet past its own timeout (a half-open
 *   connection never delivers the server's close).
 */
export class ListWatch {
  private readonly objects = new Map<string, KubeObject>();
  private resourceVersion: string | undefined;
  private abort = new AbortController();
  private stopped = false;
  private synced = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: ListWatchOptions,
  ) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  get items(): ReadonlyMap<string, KubeObject> {
    return this.objects;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const maxBackoff = this.options.maxBackoffMs ?? 30_000;
    let backoff = 200;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        backoff = 200;
        await this.watchOnce();
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof KubeApiError && error.status === GONE) {
          this.options.logger.info({ path: this.options.path }, "watch history expired; relisting");
          this.resourceVersion = undefined;
          continue;
        }
        const delay = backoff * (1 + Math.random() * 0.2);
        if (this.options.optional && error instanceof KubeApiError && error.status === NOT_FOUND) {
          this.resourceVersion = undefined;
          this.markAbsent();
        } else {
          this.options.logger.warn(
            { path: this.options.path, err: error, retryInMs: Math.round(delay) },
            "list/watch failed; retrying",
          );
        }
        await sleep(delay, this.abort.signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  private selectors(): Query {
    return { fieldSelector: this.options.fieldSelector, labelSelector: this.options.labelSelector };
  }

  private kept(object: KubeObject): KubeObject {
    return this.options.keep?.(object) ?? object;
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, KubeObject>();
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.client.request<KubeList<KubeObject>>({
        method: "GET",
        path: this.options.path,
        query: { ...this.selectors(), limit: 500, continue: continueToken },
        signal: this.abort.signal,
      });
      for (const object of page.items) fresh.set(keyOf(object), this.kept(object));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);
    this.objects.clear();
    for (const [key, object] of fresh) this.objects.set(key, object);
    this.resourceVersion = resourceVersion;
    this.synced = true;
    this.options.onChange(this.objects);
  }

  /** An optional collection the server does not serve: synced, and empty. */
  private markAbsent(): void {
    if (this.synced && this.objects.size === 0) return;
    this.options.logger.info(
      { path: this.options.path },
      "collection not served (its CRD is not installed); treating it as empty",
    );
    this.objects.clear();
    this.synced = true;
    this.options.onChange(this.objects);
  }

  private async watchOnce(): Promise<void> {
    const base = this.options.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.round(base * (1 + Math.random()));
    const watchAbort = new AbortController();
    const onStop = () => watchAbort.abort();
    this.abort.signal.addEventListener("abort", onStop, { once: true });
    let lastActivity = Date.now();
    const watchdog = setInterval(() => {
      if (Date.now() - lastActivity > (timeoutSeconds + 30) * 1000) {
        this.options.logger.warn(
          { path: this.options.path },
          "watch went quiet past its timeout; restarting it",
        );
        watchAbort.abort();
      }
    }, 5_000);
    watchdog.unref();
    try {
      const events = this.client.watch<KubeObject>(
        this.options.path,
        {
          ...this.selectors(),
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        watchAbort.signal,
      );
      for await (const event of events) {
        lastActivity = Date.now();
        if (event.type === "ERROR") {
          const status = event.object as { code?: number; reason?: string; message?: string };
          throw new KubeApiError(
            status.code ?? 500,
            status.reason ?? "Unknown",
            status.message ?? "watch error",
          );
        }
        this.resourceVersion = event.object.metadata?.resourceVersion ?? this.resourceVersion;
        if (event.type === "BOOKMARK") continue;
        if (event.type === "DELETED") this.objects.delete(keyOf(event.object));
        else this.objects.set(keyOf(event.object), this.kept(event.object));
        this.options.onChange(this.objects);
      }
    } catch (error) {
      // A watchdog abort is a normal restart, not a failure.
      if (!(watchAbort.signal.aborted && !this.abort.signal.aborted)) throw error;
    } finally {
      clearInterval(watchdog);
      this.abort.signal.removeEventListener("abort", onStop);
    }
  }
}

export function keyOf(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name ?? ""}` : (name ?? "");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
