import { describe, expect, it } from "vitest";
import { atLeast, compareVersions, parseVersion, unsupportedVersionReason } from "./version.js";

describe("spec versions", () => {
  it("parses major.minor.patch only", () => {
    expect(parseVersion("1.0.0")).toEqual({ major: 1, minor: 0, patch: 0 });
    expect(parseVersion("0.3.10")).toEqual({ major: 0, minor: 3, patch: 10 });
    for (const bad of ["", "1.0", "v1.0.0", "1.0.0-rc1", "1.0.0 "]) {
      expect(parseVersion(bad), bad).toBeNull();
    }
  });

  it("compares numerically, not as text", () => {
    const v = (text: string) => parseVersion(text)!;
    expect(compareVersions(v("0.10.0"), v("0.4.0"))).toBeGreaterThan(0);
    expect(compareVersions(v("0.4.0"), v("1.0.0"))).toBeLessThan(0);
    expect(compareVersions(v("1.1.0"), v("1.1.0"))).toBe(0);
    expect(atLeast(v("0.4.0"), "0.4.0")).toBe(true);
    expect(atLeast(v("0.3.1"), "0.4.0")).toBe(false);
  });

  it("runs 0.3.0 to 1.x and says what to set otherwise", () => {
    for (const ok of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
      expect(unsupportedVersionReason(ok), ok).toBeNull();
    }
    expect(unsupportedVersionReason("0.2.0")).toBe(
      "cniVersion 0.2.0 is older than 0.3.0, the oldest this driver runs: set cniVersion to 0.4.0 or 1.0.0",
    );
    expect(unsupportedVersionReason("2.0.0")).toMatch(/newer than this driver knows/);
    expect(unsupportedVersionReason("1.0")).toMatch(/not a spec version/);
  });
});
