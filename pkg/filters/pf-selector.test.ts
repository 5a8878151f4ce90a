import { describe, expect, it } from "vitest";
import { parsePfSelector, pfSelectorMatches, type PfSelector } from "./pf-selector.js";

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
