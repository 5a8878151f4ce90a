import { describe, expect, it } from "vitest";
import { celDevice, readClaimSpec } from "./input.js";

describe("readClaimSpec", () => {
  it("reads requests, subrequests, tolerations and constraints", () => {
    expect(
      readClaimSpec({
        devices: {
          requests: [
            {
              name: "vf",
              exactly: {
                deviceClassName: "c",
                allocationMode: "ExactCount",
                count: 2,
                selectors: [{ cel: { expression: "true" } }],
                tolerations: [{ key: "k", operator: "Exists" }],
              },
            },
            {
              name: "any",
              firstAvailable: [
                { name: "fast", deviceClassName: "c", allocationMode: "All" },
                { name: "slow", deviceClassName: "d" },
              ],
            },
          ],
          constraints: [{ requests: ["vf"], matchAttribute: "d/pf" }, { distinctAttribute: "d/x" }],
        },
      }),
    ).toEqual({
      requests: [
        {
          name: "vf",
          alternatives: [
            {
              name: "vf",
              deviceClassName: "c",
              mode: "ExactCount",
              count: 2,
              selectors: ["true"],
              tolerations: [{ key: "k", operator: "Exists", value: "", effect: "" }],
            },
          ],
        },
        {
          name: "any",
          alternatives: [
            {
              name: "any/fast",
              deviceClassName: "c",
              mode: "All",
              count: 1,
              selectors: [],
              tolerations: [],
            },
            {
              name: "any/slow",
              deviceClassName: "d",
              mode: "ExactCount",
              count: 1,
              selectors: [],
              tolerations: [],
            },
          ],
        },
      ],
      constraints: [
        { requests: ["vf"], kind: "matchAttribute", attribute: "d/pf" },
        { requests: [], kind: "distinctAttribute", attribute: "d/x" },
      ],
    });
  });

  it.each([
    [{}, "spec.devices.requests: the claim asks for no devices"],
    [{ devices: { requests: [{ exactly: {} }] } }, "spec.devices.requests[0].name: missing"],
    [
      { devices: { requests: [{ name: "a", exactly: {} }] } },
      "spec.devices.requests[0].exactly.deviceClassName: missing",
    ],
    [
      { devices: { requests: [{ name: "a", exactly: { deviceClassName: "c", count: 0 } }] } },
      "spec.devices.requests[0].exactly.count: must be a positive integer",
    ],
    [
      {
        devices: { requests: [{ name: "a", exactly: { deviceClassName: "c", selectors: [{}] } }] },
      },
      "spec.devices.requests[0].exactly.selectors[0].cel.expression: missing",
    ],
  ])("names what is wrong: %j", (spec, problem) => {
    expect(readClaimSpec(spec)).toBe(problem);
  });
});

describe("celDevice", () => {
  it("puts a name without a domain under the driver's, versions as semver", () => {
    const { cel, types } = celDevice(
      "d.io",
      { a: { int: 1 }, "other.io/b": { string: "x" }, "d.io/v": { version: "1.2.3" } },
      { mem: { value: "1Gi" } },
    );
    expect(cel!.attributes.get("d.io")!.get("a")).toBe(1n);
    expect(cel!.attributes.get("other.io")!.get("b")).toBe("x");
    expect(cel!.attributes.get("d.io")!.get("v")).toMatchObject({ text: "1.2.3" });
    expect(cel!.capacity.get("d.io")!.get("mem")).toMatchObject({ numerator: 1073741824n });
    expect(types.get("d.io/a")).toBe("int");
  });

  it("an attribute the scheduler cannot read makes the device unreadable, as upstream", () => {
    expect(celDevice("d.io", { v: { version: "v1" } }, {})).toMatchObject({
      cel: undefined,
      problem: "attribute v: parse semantic version: not SemVer 2.0.0",
    });
    expect(celDevice("d.io", { l: { strings: ["a"] } }, {}).problem).toBe(
      "attribute l: unsupported attribute value",
    );
  });
});
