/**
 * Runs an async job one at a time. A trigger while it runs costs exactly one more run
 * after it, however many triggers arrive: level-based reconcilers need the latest state
 * looked at once, not every intermediate one.
 */
export class CoalescingRunner {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly job: () => Promise<void>) {}

  /** Resolves when the run this trigger caused (or joined) has finished. */
  trigger(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.job();
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
    return this.running;
  }

  /** No new runs; resolves when the current one has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
