import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { PerKeyQueue } from "./per-key-queue.js";

describe("PerKeyQueue", () => {
  it("runs work for one key in call order, never overlapping, and other keys alongside", async () => {
    const queue = new PerKeyQueue();
    const events: string[] = [];
    const job = (name: string, ms: number) => async () => {
      events.push(`${name}+`);
      await sleep(ms);
      events.push(`${name}-`);
      return name;
    };
    const results = await Promise.all([
      queue.run("a", job("a1", 30)),
      queue.run("a", job("a2", 1)),
      queue.run("b", job("b1", 5)),
    ]);
    expect(results).toEqual(["a1", "a2", "b1"]);
    expect(events).toEqual(["a1+", "b1+", "b1-", "a1-", "a2+", "a2-"]);
  });

  it("keeps going after a failure", async () => {
    const queue = new PerKeyQueue();
    const failed = queue.run("a", () => Promise.reject(new Error("boom")));
    const next = queue.run("a", () => Promise.resolve("ok"));
    await expect(failed).rejects.toThrow("boom");
    await expect(next).resolves.toBe("ok");
  });
});
