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
  private last: string | undefined;

  constructor(
    private readonly discover: () => HostInventory,
    private readonly options: RediscoveryOptions,
  ) {}

  /** Discovers once, reports the inventory, and starts the interval. */
  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Looks again now (after a prepare changed a driver, or a filter changed). */
  check(): void {
    let inventory: HostInventory;
    try {
      inventory = this.discover();
    } catch (error) {
      this.options.logger.error(
        { err: error },
        "host discovery failed; retrying at the next interval",
      );
      return;
    }
    const fingerprint = JSON.stringify([inventory.pfs, inventory.hostUsedNetdevs]);
    if (fingerprint === this.last) return;
    this.last = fingerprint;
    this.options.logger.debug(
      { pfs: inventory.pfs.length, vfs: inventory.pfs.reduce((n, pf) => n + pf.vfs.length, 0) },
      "the host's SR-IOV inventory changed",
    );
    this.options.onChange(inventory);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
