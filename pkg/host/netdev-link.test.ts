import { describe, expect, it } from "vitest";
import { flagsWithUp, parseFlags } from "./netdev-link.js";

describe("netdev flags", () => {
  it("reads sysfs flags as hex, and nothing else", () => {
    expect(parseFlags("0x1003\n")).toBe(0x1003);
    expect(parseFlags("0x1002")).toBe(0x1002);
    expect(parseFlags("4099")).toBeUndefined();
    expect(parseFlags("0x")).toBeUndefined();
    expect(parseFlags(undefined)).toBeUndefined();
  });

  it("sets or clears IFF_UP and keeps every other bit", () => {
    expect(flagsWithUp(0x1002, true)).toBe("0x1003");
    expect(flagsWithUp(0x1003, false)).toBe("0x1002");
    expect(flagsWithUp(0x1003, true)).toBe("0x1003");
    expect(flagsWithUp(0x0, false)).toBe("0x0");
  });
});
