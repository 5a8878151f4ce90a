import { describe, expect, it } from "vitest";
import { UsageError } from "../../lib/flags/flags.js";
import { healthAddress } from "./common-flags.js";

describe("--health-address", () => {
  it("is every address when empty", () => {
    expect(healthAddress("")).toBeUndefined();
  });

  it("takes an IPv4 or IPv6 address", () => {
    expect(healthAddress("10.234.2.1")).toBe("10.234.2.1");
    expect(healthAddress("fd00::1")).toBe("fd00::1");
  });

  it("refuses a name, a port or a CIDR, naming what to give", () => {
    for (const raw of ["node-1", "10.234.2.1:51515", "10.234.2.0/24", " 10.234.2.1"]) {
      expect(() => healthAddress(raw)).toThrow(UsageError);
      expect(() => healthAddress(raw)).toThrow(/status\.hostIP/);
    }
  });
});
