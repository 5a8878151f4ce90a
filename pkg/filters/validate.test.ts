import { describe, expect, it } from "vitest";
import type { SriovResourceFilterSpec } from "../../api/v1alpha1/sriov-resource-filter.js";
import { validateFilterSpec } from "./validate.js";

describe("validateFilterSpec", () => {
  it("accepts a well-formed spec", () => {
    const spec: SriovResourceFilterSpec = {
      nodeSelector: { "kubernetes.io/hostname": "worker-1", role: "" },
      configs: [
        { resourceName: "a", resourceFilters: [{ pfNames: ["eth0#0-3,8", "eth1"] }] },
        { resourceName: "b", resourceFilters: [{}] },
      ],
    };
    expect(validateFilterSpec(spec)).toEqual([]);
  });

  it("reports a duplicate resourceName at the later config, naming the first", () => {
    const spec: SriovResourceFilterSpec = {
      configs: [
        { resourceName: "a", resourceFilters: [{}] },
        { resourceName: "b", resourceFilters: [{}] },
        { resourceName: "a", resourceFilters: [{}] },
      ],
    };
    expect(validateFilterSpec(spec)).toEqual([
      {
        path: "spec.configs[2].resourceName",
        message:
          '"a" is already the resourceName of spec.configs[0]: merge the two configs\' resourceFilters or rename one',
      },
    ]);
  });

  it("reports malformed pfName ranges with their path", () => {
    const spec: SriovResourceFilterSpec = {
      configs: [
        {
          resourceName: "a",
          resourceFilters: [{}, { pfNames: ["eth0", "eth1#7-4"] }],
        },
      ],
    };
    expect(validateFilterSpec(spec)).toEqual([
      {
        path: "spec.configs[0].resourceFilters[1].pfNames[1]",
        message: '"eth1#7-4": range 7-4 runs backwards: write 4-7',
      },
    ]);
  });

  it("reports malformed rootDevices ranges with their path", () => {
    const spec: SriovResourceFilterSpec = {
      configs: [{ resourceName: "a", resourceFilters: [{ rootDevices: ["0000:86:00.0#5-2"] }] }],
    };
    expect(validateFilterSpec(spec)).toEqual([
      {
        path: "spec.configs[0].resourceFilters[0].rootDevices[0]",
        message: '"0000:86:00.0#5-2": range 5-2 runs backwards: write 2-5',
      },
    ]);
  });

  it.each(["-bad", "a/b/c", "Example.com/x", `${"p".repeat(254)}/x`, "x".repeat(64)])(
    "reports the node selector key %j, which no node label can have",
    (key) => {
      const problems = validateFilterSpec({
        nodeSelector: { [key]: "v" },
        configs: [{ resourceName: "a", resourceFilters: [{}] }],
      });
      expect(problems).toHaveLength(1);
      expect(problems[0]?.path).toBe(`spec.nodeSelector[${JSON.stringify(key)}]`);
      expect(problems[0]?.message).toMatch(/is not a label key/);
    },
  );
});
