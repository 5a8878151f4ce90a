import { describe, expect, it } from "vitest";
import { backoffDelay, checkBackoff } from "./backoff.js";

const options = { initialDelayMs: 100, maxDelayMs: 1_000 };

describe("backoffDelay", () => {
  it("doubles from the initial delay up to the cap", () => {
    const top = () => 1;
    expect([0, 1, 2, 3, 4, 50].map((attempt) => backoffDelay(attempt, options, top))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it("takes up to half off at random", () => {
    expect(backoffDelay(2, options, () => 0)).toBe(200);
    expect(backoffDelay(2, options, () => 0.5)).toBe(300);
  });

  it("refuses options that cannot work", () => {
    expect(() => checkBackoff({ initialDelayMs: 0, maxDelayMs: 10 })).toThrow(/positive/);
    expect(() => checkBackoff({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(/at least/);
    expect(() => checkBackoff(options)).not.toThrow();
  });
});
