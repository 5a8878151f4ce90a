import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { HostInventory } from "./discovery.js";

export interface RediscoveryOptions {
  /** How often to look again: sysfs sends no file events for new VFs or rebinds. */
  intervalMs: number;
  /** Called with the new inventory whenever it differs from the last one. */
  onChange: (inventory: HostInventory) => void;
  logger: Logger;
}

/**
 * Re-runs discovery on an interval and on demand, and reports only real changes
 * (a changed `sriov_numvfs`, a VF rebound by someone else, a new PF). A failing
 * discovery is logged and retried at the next tick; it never stops the loop.
 */
export class Rediscovery {
  private timer: NodeJS.Timeout | undefined;
  /** A digest of the last inventory reported (its JSON is ~120 bytes per VF). */
  private last: string | undefined;
  /** The discovery running now: a tick while one runs is skipped, not stacked. */
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly discover: () => Promise<HostInventory>,
    private readonly options: RediscoveryOptions,
  ) {}

  /** Discovers once, reports the inventory, and starts the interval. */
  start(): void {
    this.stopped = false;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Looks again now, unless a look is running (its result is the one the caller gets). */
  check(): Promise<void> {
    this.running ??= this.discoverOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async discoverOnce(): Promise<void> {
    let inventory: HostInventory;
    try {
      inventory = await this.discover();
    } catch (error) {
      this.options.logger.error(
        { err: error },
        "host discovery failed; retrying at the next interval",
      );
      return;
    }
    if (this.stopped) return;
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([inventory.pfs, inventory.hostUsedNetdevs]))
      .digest("base64");
    if (fingerprint === this.last) return;
    this.last = fingerprint;
    this.options.logger.debug(
      { pfs: inventory.pfs.length, vfs: inventory.pfs.reduce((n, pf) => n + pf.vfs.length, 0) },
      "the host's SR-IOV inventory changed",
    );
    this.options.onChange(inventory);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
