import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { FAULT_STEPS, faultHookFromEnv, parseFaultSteps } from "./faults.js";

const logger = pino({ level: "silent" });

describe("fault injection", () => {
  it("accepts known steps, alone or as a list", () => {
    expect(parseFaultSteps(undefined).size).toBe(0);
    expect(parseFaultSteps(" after-driver-bound , after-cdi-written")).toEqual(
      new Set(["after-driver-bound", "after-cdi-written"]),
    );
    expect(() => parseFaultSteps("after-everything")).toThrow(
      `DRA_SRIOV_FAULT names unknown step(s) after-everything; known: ${FAULT_STEPS.join(", ")}`,
    );
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
