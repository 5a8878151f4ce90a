import { describe, expect, it } from "vitest";
import {
  parsePfSelector,
  parseRootDeviceSelector,
  pfSelectorMatches,
  rootDeviceSelectorMatches,
  type PfSelector,
} from "./pf-selector.js";

function selector(text: string): PfSelector {
  const parsed = parsePfSelector(text);
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed.selector;
}

describe("parsePfSelector", () => {
  it("reads a plain PF name as every VF of it", () => {
    expect(selector("ens1f0")).toEqual({ pfName: "ens1f0", vfRanges: undefined });
  });

  it("reads indices and inclusive ranges, comma-separated", () => {
    expect(selector("eth0#0-3")).toEqual({ pfName: "eth0", vfRanges: [{ first: 0, last: 3 }] });
    expect(selector("eth0#0,3,5-7")).toEqual({
      pfName: "eth0",
      vfRanges: [
        { first: 0, last: 0 },
        { first: 3, last: 3 },
        { first: 5, last: 7 },
      ],
    });
  });

  it.each([
    ["eth0#3-1", "range 3-1 runs backwards: write 1-3"],
    ["eth0#", '"" is not a VF index or range'],
    ["eth0#1,,2", '"" is not a VF index or range'],
    ["eth0#a-b", '"a-b" is not a VF index or range'],
    ["eth0#1-2-3", '"1-2-3" is not a VF index or range'],
    ["eth0#70000", "VF index 70000 is above 65535"],
    ["#1", "the PF name before '#' is empty"],
    ["verylonginterface0", 'the PF name "verylonginterface0" is longer than 15 bytes'],
  ])("explains what is wrong with %j", (text, problem) => {
    const parsed = parsePfSelector(text);
    expect("problem" in parsed && parsed.problem).toContain(`"${text}": ${problem}`);
  });
});

describe("pfSelectorMatches", () => {
  it("matches the PF's VFs inside the ranges only", () => {
    const ranged = selector("eth0#0,3,5-7");
    const picked = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((vf) =>
      pfSelectorMatches(ranged, "eth0", vf),
    );
    expect(picked).toEqual([0, 3, 5, 6, 7]);
  });

  it("matches every VF of the PF without ranges, and nothing of other PFs", () => {
    expect(pfSelectorMatches(selector("eth0"), "eth0", 127)).toBe(true);
    expect(pfSelectorMatches(selector("eth0"), "eth01", 0)).toBe(false);
    expect(pfSelectorMatches(selector("eth0#0-3"), "eth1", 0)).toBe(false);
    expect(pfSelectorMatches(selector("eth0"), undefined, 0)).toBe(false);
  });
});

describe("parseRootDeviceSelector and rootDeviceSelectorMatches", () => {
  it("reads a PF address, in any case, with or without VF ranges", () => {
    expect(parseRootDeviceSelector("0000:AF:00.0")).toEqual({
      selector: { pciAddress: "0000:af:00.0", vfRanges: undefined },
    });
    expect(parseRootDeviceSelector("0000:86:00.0#0-1,3")).toEqual({
      selector: {
        pciAddress: "0000:86:00.0",
        vfRanges: [
          { first: 0, last: 1 },
          { first: 3, last: 3 },
        ],
      },
    });
  });

  it.each([
    ["0000:86:00.0#3-1", "range 3-1 runs backwards: write 1-3"],
    ["0000:86:00.0#", '"" is not a VF index or range'],
    ["86:00.0#1", '"86:00.0" is not a PCI address such as 0000:86:00.0'],
    ["ens1f0#1", '"ens1f0" is not a PCI address'],
  ])("explains what is wrong with %j", (text, problem) => {
    const parsed = parseRootDeviceSelector(text);
    expect("problem" in parsed && parsed.problem).toContain(`"${text}": ${problem}`);
  });

  it("matches the VFs inside the ranges of that PF only", () => {
    const parsed = parseRootDeviceSelector("0000:86:00.0#0-1,3");
    if ("problem" in parsed) throw new Error(parsed.problem);
    const picked = [0, 1, 2, 3, 4].filter((vf) =>
      rootDeviceSelectorMatches(parsed.selector, "0000:86:00.0", vf),
    );
    expect(picked).toEqual([0, 1, 3]);
    expect(rootDeviceSelectorMatches(parsed.selector, "0000:86:00.1", 0)).toBe(false);
  });
});
