import type { CheckpointStore, LoadedCheckpoint } from "./checkpoint.js";
import type { InterProcessLock } from "./file-lock.js";

type Change<T> = (entries: Map<string, T>) => void;

interface PendingChange<T> {
  change: Change<T>;
  done: { resolve: () => void; reject: (error: unknown) => void };
}

/**
 * The checkpoint's entries in memory, written through to the file. Reads cost no parse
 * unless another process (the other instance during a rolling update) changed the file.
 * Changes made while a write is in flight are committed together by the next write, so
 * 32 claims preparing at once cost a few fsyncs, not 64; each caller still resumes only
 * once its own change is durable.
 */
export class CheckpointedMap<T> {
  private entries = new Map<string, T>();
  /** Signature of the file as this process last read or wrote it. */
  private seen: string | null = null;
  private pending: PendingChange<T>[] = [];
  private flushing = false;

  constructor(
    private readonly store: CheckpointStore<T>,
    private readonly lock: InterProcessLock,
  ) {}

  /** Reads the file (setting a corrupt one aside); call once at start. */
  load(): LoadedCheckpoint<T> {
    const loaded = this.store.load();
    this.entries = loaded.entries;
    this.seen = this.store.signature();
    return loaded;
  }

  get(key: string): T | undefined {
    this.refresh();
    return this.entries.get(key);
  }

  all(): ReadonlyMap<string, T> {
    this.refresh();
    return this.entries;
  }

  /**
   * Applies `change` and resolves once it is on disk. Rejects, changing nothing, if the write
   * fails or `change` throws (which it must do before touching the map).
   */
  update(change: Change<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ change, done: { resolve, reject } });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      const refused = new Set<PendingChange<T>>();
      const accepted = () => batch.filter((item) => !refused.has(item));
      try {
        await this.lock.run(async () => {
          this.refresh();
          const next = new Map(this.entries);
          for (const item of batch) {
            // A change that throws is refused alone; it must not have touched the map.
            try {
              item.change(next);
            } catch (error) {
              refused.add(item);
              item.done.reject(error);
            }
          }
          await this.store.save(next);
          this.entries = next;
          this.seen = this.store.signature();
        });
        for (const { done } of accepted()) done.resolve();
      } catch (error) {
        for (const { done } of accepted()) done.reject(error);
      }
    }
    this.flushing = false;
  }

  private refresh(): void {
    const signature = this.store.signature();
    if (signature === this.seen) return;
    this.entries = this.store.load().entries;
    this.seen = signature;
  }
}
