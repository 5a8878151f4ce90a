import { describe, expect, it } from "vitest";
import { deviceInfoFileName } from "./device-info.js";

describe("deviceInfoFileName", () => {
  it("names the file as Multus looks it up: <resourceName>-<deviceID>-device.json", () => {
    expect(deviceInfoFileName("sriov-vf", "0000:3b:02.1")).toBe(
      "sriov-vf-0000:3b:02.1-device.json",
    );
  });

  it("refuses what is not a claim name or a PCI address, so nothing leaves the directory", () => {
    for (const name of ["../x", "a/b", "", "Upper", "x".repeat(254), "a\0b"]) {
      expect(() => deviceInfoFileName(name, "0000:3b:02.1"), name).toThrow(/not a ResourceClaim/);
    }
    for (const address of ["../../etc", "0000:3b:02.1/..", "0000-3b-02-1", ""]) {
      expect(() => deviceInfoFileName("c", address), address).toThrow(/not a PCI address/);
    }
  });
});
