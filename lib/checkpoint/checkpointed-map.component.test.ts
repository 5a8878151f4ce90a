import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointStore } from "./checkpoint.js";
import { CheckpointedMap } from "./checkpointed-map.js";
import { InterProcessLock } from "./file-lock.js";

/** A store that counts its writes and can be told to fail the next one. */
class CountingStore extends CheckpointStore<string> {
  saves = 0;
  failNext = false;
  override async save(entries: ReadonlyMap<string, string>): Promise<void> {
    this.saves++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error("disk full");
    }
    await super.save(entries);
  }
}

describe("CheckpointedMap", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "checkpointed-map-"));
    file = path.join(dir, "checkpoint.json");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const open = (store = new CountingStore(file, "boot")) => {
    const map = new CheckpointedMap(store, new InterProcessLock(`${file}.lock`));
    map.load();
    return { map, store };
  };

  it("commits changes made while a write is in flight together, each durable when it resolves", async () => {
    const { map, store } = open();
    await Promise.all(
      Array.from({ length: 32 }, (_, index) =>
        map
          .update((entries) => entries.set(`claim-${index}`, `state-${index}`))
          .then(() => {
            // Resolved means on disk: a fresh reader sees this change.
            expect(
              new CheckpointStore<string>(file, "boot").load().entries.get(`claim-${index}`),
            ).toBe(`state-${index}`);
          }),
      ),
    );
    expect(map.all().size).toBe(32);
    expect(store.saves).toBeLessThan(32);
    expect(store.saves).toBeGreaterThanOrEqual(2);
  });

  it("refuses a change that throws alone, and keeps the others of its batch", async () => {
    const { map } = open();
    const results = await Promise.allSettled([
      map.update((entries) => entries.set("a", "1")),
      map.update(() => {
        throw new Error("duplicate ifName");
      }),
      map.update((entries) => entries.set("b", "2")),
    ]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect([...map.all()]).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
  });

  it("changes nothing in memory when the write fails", async () => {
    const { map, store } = open();
    await map.update((entries) => entries.set("a", "1"));
    store.failNext = true;
    await expect(map.update((entries) => entries.set("b", "2"))).rejects.toThrow("disk full");
    expect([...map.all().keys()]).toEqual(["a"]);
    await map.update((entries) => entries.delete("a"));
    expect(new CheckpointStore<string>(file, "boot").load().entries.size).toBe(0);
  });

  it("sees what another instance wrote, and builds on it instead of overwriting it", async () => {
    const { map: older } = open();
    const { map: newer } = open();
    await older.update((entries) => entries.set("from-older", "x"));
    expect(newer.get("from-older")).toBe("x");
    await newer.update((entries) => entries.set("from-newer", "y"));
    await older.update((entries) => entries.set("again-older", "z"));
    expect([...newer.all().keys()].sort()).toEqual(["again-older", "from-newer", "from-older"]);
  });
});
