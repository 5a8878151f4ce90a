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

  it("reports the first inventory and then only changes", async () => {
    let numVfs = 8;
    const seen: number[] = [];
    const watcher = new Rediscovery(() => Promise.resolve(inventory(numVfs)), {
      intervalMs: 1000,
      logger,
      onChange: (next) => seen.push(next.pfs[0]!.numVfs),
    });
    watcher.start();
    await vi.advanceTimersByTimeAsync(3000);
    expect(seen).toEqual([8]);
    numVfs = 4;
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual([8, 4]);
    numVfs = 0;
    await watcher.check();
    expect(seen).toEqual([8, 4, 0]);
    watcher.stop();
    numVfs = 2;
    await vi.advanceTimersByTimeAsync(5000);
    expect(seen).toEqual([8, 4, 0]);
  });

  it("keeps polling after discovery throws", async () => {
    let fail = true;
    const seen: number[] = [];
    const watcher = new Rediscovery(
      () => (fail ? Promise.reject(new Error("sysfs went away")) : Promise.resolve(inventory(8))),
      { intervalMs: 1000, logger, onChange: (next) => seen.push(next.pfs[0]!.numVfs) },
    );
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([]);
    fail = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen).toEqual([8]);
    watcher.stop();
  });

  it("runs one discovery at a time: a tick while one runs is skipped, a check joins it", async () => {
    let calls = 0;
    let finish: (() => void) | undefined;
    const seen: number[] = [];
    const watcher = new Rediscovery(
      () => {
        calls += 1;
        return new Promise<HostInventory>((resolve) => {
          finish = () => resolve(inventory(calls));
        });
      },
      { intervalMs: 1000, logger, onChange: (next) => seen.push(next.pfs[0]!.numVfs) },
    );
    watcher.start();
    await vi.advanceTimersByTimeAsync(3000);
    const joined = watcher.check();
    expect(calls).toBe(1);
    finish!();
    await joined;
    expect(seen).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    watcher.stop();
    finish!();
    await vi.advanceTimersByTimeAsync(0);
    // Stopped while it ran: its result is dropped.
    expect(seen).toEqual([1]);
  });
});
