import { describe, expect, it } from "vitest";
import { OrderedRunner } from "./ordering.js";

/** A task that records its start and finishes when the test says so. */
function gate(log: string[], name: string) {
  const done = Promise.withResolvers<undefined>();
  return {
    task: async () => {
      log.push(`start ${name}`);
      await done.promise;
      log.push(`end ${name}`);
    },
    finish: () => done.resolve(undefined),
    fail: () => done.reject(new Error(`${name} failed`)),
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("OrderedRunner", () => {
  it("runs one key's tasks one after another and other keys' side by side", async () => {
    const runner = new OrderedRunner();
    const log: string[] = [];
    const [a1, a2, b1] = [gate(log, "a1"), gate(log, "a2"), gate(log, "b1")];
    const runs = [runner.run("a", a1.task), runner.run("a", a2.task), runner.run("b", b1.task)];
    await settle();
    expect(log).toEqual(["start a1", "start b1"]);
    b1.finish();
    a1.finish();
    await settle();
    expect(log).toEqual(["start a1", "start b1", "end b1", "end a1", "start a2"]);
    a2.finish();
    await Promise.all(runs);
  });

  it("does not let a failed task hold up the next one of its key", async () => {
    const runner = new OrderedRunner();
    const log: string[] = [];
    const [first, second] = [gate(log, "first"), gate(log, "second")];
    const failed = runner.run("a", first.task);
    const next = runner.run("a", second.task);
    first.fail();
    await expect(failed).rejects.toThrow("first failed");
    second.finish();
    await next;
    expect(log).toEqual(["start first", "start second", "end second"]);
  });

  it("runs an exclusive task after everything before it and before everything after it", async () => {
    const runner = new OrderedRunner();
    const log: string[] = [];
    const [before, sync, after] = [gate(log, "before"), gate(log, "sync"), gate(log, "after")];
    const runs = [
      runner.run("a", before.task),
      runner.exclusive(sync.task),
      runner.run("b", after.task),
    ];
    await settle();
    expect(log).toEqual(["start before"]);
    before.finish();
    await settle();
    expect(log).toEqual(["start before", "end before", "start sync"]);
    sync.finish();
    await settle();
    expect(log.slice(3)).toEqual(["end sync", "start after"]);
    after.finish();
    await Promise.all(runs);
  });

  it("is idle once every queued task has finished", async () => {
    const runner = new OrderedRunner();
    const log: string[] = [];
    const [a, b] = [gate(log, "a"), gate(log, "b")];
    void runner.run("a", a.task);
    void runner.exclusive(b.task);
    let idle = false;
    const waiting = runner.idle().then(() => (idle = true));
    a.finish();
    await settle();
    expect(idle).toBe(false);
    b.finish();
    await waiting;
    expect(log).toEqual(["start a", "end a", "start b", "end b"]);
  });
});
