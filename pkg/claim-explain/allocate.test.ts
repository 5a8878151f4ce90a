import { describe, expect, it } from "vitest";
import { searchAllocation, type SearchDevice, type SearchRequest } from "./allocate.js";
import { compileSelector } from "./cel.js";
import { celDevice } from "./input.js";

const D = "example.com";

function device(
  name: string,
  attributes: Record<string, unknown>,
  extra: Partial<SearchDevice> = {},
): SearchDevice {
  const { cel } = celDevice(D, attributes, {});
  return { name, inUse: false, taints: [], cel, ...extra };
}

function request(expression: string, extra: Partial<SearchRequest> = {}): SearchRequest {
  return {
    name: "r",
    constraintNames: ["r"],
    mode: "ExactCount",
    count: 1,
    tolerations: [],
    selectors: [{ source: "request", index: 0, selector: compileSelector(expression) }],
    ...extra,
  };
}

const withName = device("with", { [`${D}/pool`]: { string: "x" } });
const without = device("without", {});

describe("searchAllocation mirrors the scheduler's search order", () => {
  it("a device that fits before the erroring one wins: the error is never reached", () => {
    expect(
      searchAllocation([request(`device.attributes["${D}"].pool == "x"`)], [], [withName, without]),
    ).toEqual({
      outcome: "fits",
      picks: [{ request: "r", device: "with" }],
    });
  });

  it("an erroring device before any fit fails the node", () => {
    expect(
      searchAllocation([request(`device.attributes["${D}"].pool == "x"`)], [], [without, withName]),
    ).toMatchObject({ outcome: "error", device: "without", message: "no such key: pool" });
  });

  it("a device in use is skipped before its selectors run", () => {
    const taken = { ...without, inUse: true };
    expect(
      searchAllocation([request(`device.attributes["${D}"].pool == "x"`)], [], [taken, withName]),
    ).toMatchObject({ outcome: "fits" });
  });

  it("mode All evaluates every device first, so any error fails", () => {
    expect(
      searchAllocation(
        [request(`device.attributes["${D}"].pool == "x"`, { mode: "All" })],
        [],
        [withName, without],
      ),
    ).toMatchObject({ outcome: "error", device: "without" });
  });

  it("taints block unless tolerated; constraints backtrack", () => {
    const tainted = device(
      "t",
      { [`${D}/pool`]: { string: "x" } },
      {
        taints: [{ key: "k", value: "v", effect: "NoSchedule" }],
      },
    );
    expect(searchAllocation([request("true")], [], [tainted])).toEqual({ outcome: "no-fit" });
    const tolerations = [{ key: "k", operator: "Exists", value: "", effect: "" }];
    expect(searchAllocation([request("true", { tolerations })], [], [tainted]).outcome).toBe(
      "fits",
    );

    const pool = (name: string, value: string) =>
      device(name, { [`${D}/pool`]: { string: value } });
    const result = searchAllocation(
      [request("true", { count: 2 })],
      [{ requests: [], kind: "matchAttribute", attribute: `${D}/pool` }],
      [pool("a", "x"), pool("b", "y"), pool("c", "y")],
    );
    expect(result).toEqual({
      outcome: "fits",
      picks: [
        { request: "r", device: "b" },
        { request: "r", device: "c" },
      ],
    });
  });
});
