import { describe, expect, it } from "vitest";
import { CoalescingRunner } from "./coalescing-runner.js";

describe("CoalescingRunner", () => {
  it("runs once more for any number of triggers during a run, never two at a time", async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const runner = new CoalescingRunner(async () => {
      maxActive = Math.max(maxActive, ++active);
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      active--;
    });
    const first = runner.trigger();
    const joined = [runner.trigger(), runner.trigger(), runner.trigger()];
    await Promise.all([first, ...joined]);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
  });

  it("starts nothing after stop and waits for the running job", async () => {
    let runs = 0;
    const runner = new CoalescingRunner(async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    });
    void runner.trigger();
    await runner.stop();
    await runner.trigger();
    expect(runs).toBe(1);
  });
});
