const ignore = () => undefined;

/**
 * Runs tasks in the order they arrive where order matters: tasks with the same key one
 * after another, tasks with different keys side by side, and an exclusive task (a full
 * resynchronization) after everything before it and before everything after it. A failed
 * task does not hold up the ones behind it.
 */
export class OrderedRunner {
  private readonly tails = new Map<string, Promise<void>>();
  /** Settles when the last exclusive task has finished. */
  private barrier: Promise<void> = Promise.resolve();
  private readonly unfinished = new Set<Promise<void>>();

  /** Runs `task` after the earlier tasks for `key` and the earlier exclusive tasks. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = Promise.all([this.tails.get(key), this.barrier]);
    const result = before.then(task);
    const tail = this.track(result);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Runs `task` alone: after every earlier task, before every later one. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = Promise.all([this.barrier, ...this.unfinished]).then(task);
    this.barrier = this.track(result);
    return result;
  }

  /** Settles when every task queued so far has finished. */
  async idle(): Promise<void> {
    while (this.unfinished.size > 0) await Promise.all(this.unfinished);
  }

  private track(result: Promise<unknown>): Promise<void> {
    const settled = result.then(ignore, ignore);
    this.unfinished.add(settled);
    void settled.then(() => this.unfinished.delete(settled));
    return settled;
  }
}
