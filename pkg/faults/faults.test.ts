import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { FAULT_STEPS, faultHookFromEnv, parseFaults } from "./faults.js";

const logger = pino({ level: "silent" });

describe("fault injection", () => {
  it("accepts known steps, alone or as a list, each to kill at or (hang:) to stop at", () => {
    expect(parseFaults(undefined).size).toBe(0);
    expect(parseFaults(" after-driver-bound , hang:after-cdi-written")).toEqual(
      new Map([
        ["after-driver-bound", "kill"],
        ["after-cdi-written", "hang"],
      ]),
    );
    expect(() => parseFaults("after-everything")).toThrow(
      `DRA_SRIOV_FAULT names unknown step(s) after-everything; known: ${FAULT_STEPS.join(", ")}`,
    );
    expect(() => parseFaults("stop:after-cdi-written")).toThrow(
      "DRA_SRIOV_FAULT names unknown step(s) stop:after-cdi-written",
    );
  });

  it("with hang:, stops the claim at the step and leaves the process running", async () => {
    const kill = vi.fn();
    const hook = faultHookFromEnv("hang:after-cdi-written", logger, kill)!;
    expect(hook("after-driver-bound", { claimUid: "uid" })).toBeUndefined();
    const stopped = hook("after-cdi-written", { claimUid: "uid" });
    const settled = await Promise.race([
      stopped,
      new Promise((r) => setTimeout(() => r("pending"), 20)),
    ]);
    expect(settled).toBe("pending");
    expect(kill).not.toHaveBeenCalled();
  });

  it("has no hook when unset, and kills only at the named step", async () => {
    expect(faultHookFromEnv("", logger)).toBeUndefined();
    const kill = vi.fn();
    const hook = faultHookFromEnv("after-cdi-written", logger, kill)!;
    expect(hook("after-driver-bound", { claimUid: "uid" })).toBeUndefined();
    expect(kill).not.toHaveBeenCalled();
    const stopped = hook("after-cdi-written", { claimUid: "uid" });
    expect(kill).toHaveBeenCalledOnce();
    const settled = await Promise.race([
      stopped,
      new Promise((r) => setTimeout(() => r("pending"), 20)),
    ]);
    expect(settled).toBe("pending");
  });
});
