import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HostInventory } from "./discovery.js";
import { Rediscovery } from "./rediscovery.js";
import { x710Pf } from "../devices/testing/fixtures.js";

const logger = pino({ level: "silent" });

function inventory(numVfs: number): HostInventory {
  return {
    pfs: [
      {
        ...x710Pf({ numVfs }),
        vfs: [],
      },
    ],
    hostUsedNetdevs: [],
    warnings: [],
  };
}

describe("Rediscovery", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("reports the first inventory and then only changes", () => {
    let numVfs = 8;
    const seen: number[] = [];
    const watcher = new Rediscovery(() => inventory(numVfs), {
      intervalMs: 1000,
      logger,
      onChange: (next) => seen.push(next.pfs[0]!.numVfs),
    });
    watcher.start();
    vi.advanceTimersByTime(3000);
    expect(seen).toEqual([8]);
    numVfs = 4;
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([8, 4]);
    numVfs = 0;
    watcher.check();
    expect(seen).toEqual([8, 4, 0]);
    watcher.stop();
    numVfs = 2;
    vi.advanceTimersByTime(5000);
    expect(seen).toEqual([8, 4, 0]);
  });

  it("keeps polling after discovery throws", () => {
    let fail = true;
    const seen: number[] = [];
    const watcher = new Rediscovery(
      () => {
        if (fail) throw new Error("sysfs went away");
        return inventory(8);
      },
      { intervalMs: 1000, logger, onChange: (next) => seen.push(next.pfs[0]!.numVfs) },
    );
    watcher.start();
    expect(seen).toEqual([]);
    fail = false;
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([8]);
    watcher.stop();
  });
});
