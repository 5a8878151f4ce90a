import { describe, expect, it } from "vitest";
import type { NodeSelectorRequirement } from "../../api/v1alpha1/sriov-resource-policy.js";
import { nodeSelectorSelects } from "./node-selector.js";

const NODE = { name: "worker-0", labels: { "kubernetes.io/hostname": "worker-0", gen: "5" } };
const term = (...matchExpressions: NodeSelectorRequirement[]) => ({ matchExpressions });
const selects = (...nodeSelectorTerms: ReturnType<typeof term>[]) =>
  nodeSelectorSelects({ nodeSelectorTerms }, NODE);

describe("nodeSelectorSelects", () => {
  it("selects every node when absent, without terms, or with a term without requirements", () => {
    expect(nodeSelectorSelects(undefined, NODE)).toBe(true);
    expect(selects()).toBe(true);
    expect(selects(term())).toBe(true);
  });

  it.each<[NodeSelectorRequirement, boolean]>([
    [{ key: "kubernetes.io/hostname", operator: "In", values: ["worker-0", "worker-1"] }, true],
    [{ key: "kubernetes.io/hostname", operator: "In", values: ["worker-1"] }, false],
    [{ key: "zone", operator: "In", values: ["a"] }, false],
    [{ key: "kubernetes.io/hostname", operator: "NotIn", values: ["worker-0"] }, false],
    [{ key: "zone", operator: "NotIn", values: ["a"] }, true],
    [{ key: "gen", operator: "Exists" }, true],
    [{ key: "zone", operator: "Exists" }, false],
    [{ key: "zone", operator: "DoesNotExist" }, true],
    [{ key: "gen", operator: "Gt", values: ["4"] }, true],
    [{ key: "gen", operator: "Gt", values: ["5"] }, false],
    [{ key: "gen", operator: "Lt", values: ["10"] }, true],
    [{ key: "kubernetes.io/hostname", operator: "Lt", values: ["10"] }, false],
    [{ key: "zone", operator: "Gt", values: ["0"] }, false],
  ])("%j → %s", (requirement, expected) => {
    expect(selects(term(requirement))).toBe(expected);
  });

  it("ANDs requirements within a term and ORs terms", () => {
    const yes = { key: "gen", operator: "Exists" } as const;
    const no = { key: "zone", operator: "Exists" } as const;
    expect(selects(term(yes, no))).toBe(false);
    expect(selects(term(no), term(yes))).toBe(true);
  });

  it("tests matchFields on the node's name", () => {
    const byName = (operator: "In" | "NotIn", name: string) =>
      nodeSelectorSelects(
        {
          nodeSelectorTerms: [
            { matchFields: [{ key: "metadata.name", operator, values: [name] }] },
          ],
        },
        NODE,
      );
    expect(byName("In", "worker-0")).toBe(true);
    expect(byName("In", "worker-1")).toBe(false);
    expect(byName("NotIn", "worker-1")).toBe(true);
  });
});
