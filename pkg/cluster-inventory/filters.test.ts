import { describe, expect, it } from "vitest";
import { publishedDevicesByNode } from "../controller/slice-devices.js";
import { buildFilterReports, formatFilterTable } from "./filters.js";
import { DRIVER, slicesOf, vf, wholePf } from "./testing/fixtures.js";

const filter = (namespace: string, name: string, spec: unknown, status?: unknown) => ({
  apiVersion: "sriovnetwork.openshift.io/v1alpha1",
  kind: "SriovResourceFilter",
  metadata: { namespace, name, generation: 2 },
  spec,
  ...(status === undefined ? {} : { status }),
});
const node = (name: string, labels: Record<string, unknown>) => ({ metadata: { name, labels } });
const condition = (type: string, status: string, reason: string, message: string) => ({
  type,
  status,
  reason,
  message,
  observedGeneration: 2,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

/**
 * Two nodes in pool a: eth0's VFs named "fast" (filter a/fast), eth1's "slow" (filter b/slow);
 * n1 publishes eth0 whole too (--publish-pfs), as "fast".
 */
function report() {
  const published = [
    ...slicesOf("n1", [wholePf(0, "fast"), vf(0, 0, "fast"), vf(0, 1, "fast"), vf(1, 0, "slow")]),
    ...slicesOf("n2", [vf(0, 0, "fast")]),
  ];
  return buildFilterReports(
    [
      filter(
        "b",
        "slow",
        {
          nodeSelector: { pool: "a" },
          configs: [{ resourceName: "slow", resourceFilters: [{ pfNames: ["eth1"] }] }],
        },
        {
          conditions: [
            condition("Accepted", "True", "Valid", "The spec is valid."),
            condition("Conflicting", "False", "NoConflict", "No other filter takes VFs."),
          ],
          matchedNodes: 2,
          devicesExposed: [{ resourceName: "slow", count: 1 }],
        },
      ),
      filter("a", "fast", {
        nodeSelector: { pool: "a" },
        // "slow" is b/slow's name too: only VFs this config matches count as this filter's.
        configs: [
          { resourceName: "fast", resourceFilters: [{ pfNames: ["eth0"] }] },
          { resourceName: "slow", resourceFilters: [{ pfNames: ["eth9"] }] },
        ],
      }),
      filter("a", "broken", { configs: "nope" }, { conditions: "garbage" }),
    ],
    [node("n2", { pool: "a" }), node("n1", { pool: "a", odd: 5 }), node("n3", { pool: "b" }), "x"],
    publishedDevicesByNode(published, DRIVER),
    DRIVER,
  );
}

describe("buildFilterReports", () => {
  it("gives each filter its selected nodes and the VFs it takes there, by precedence", () => {
    const { filters } = report();
    expect(filters.map((f) => `${f.namespace}/${f.name}`)).toEqual([
      "a/broken",
      "a/fast",
      "b/slow",
    ]);
    const [broken, fast, slow] = filters;
    expect(fast!.nodes).toEqual([
      {
        name: "n1",
        vfs: [
          {
            resourceName: "fast",
            devices: ["0000-3b-02-0", "0000-3b-02-1"],
            wholePfs: ["pf-0000-3b-00-0"],
          },
          { resourceName: "slow", devices: [], wholePfs: [] },
        ],
      },
      {
        name: "n2",
        vfs: [
          { resourceName: "fast", devices: ["0000-3b-02-0"], wholePfs: [] },
          { resourceName: "slow", devices: [], wholePfs: [] },
        ],
      },
    ]);
    expect(fast!.published).toEqual({
      matchedNodes: 2,
      devicesExposed: [
        { resourceName: "fast", count: 3, wholePfs: 1 },
        { resourceName: "slow", count: 0 },
      ],
    });
    expect(fast!.status).toBeNull();
    expect(slow!.status?.devicesExposed).toEqual([{ resourceName: "slow", count: 1 }]);
    expect(slow!.nodes[0]!.vfs).toEqual([
      { resourceName: "slow", devices: ["0000-3c-02-0"], wholePfs: [] },
    ]);
    // An unreadable spec takes no VFs but still selects (every node, without a selector).
    expect(broken!.specProblems.length).toBeGreaterThan(0);
    expect(broken!.nodes.map((n) => [n.name, n.vfs])).toEqual([
      ["n1", []],
      ["n2", []],
      ["n3", []],
    ]);
    expect(broken!.status).toBeNull();
    expect(broken!.statusProblem).toMatch(/^unreadable: status\.conditions/);
  });
});

describe("formatFilterTable", () => {
  it("prints conditions, then status beside what is published, then the nodes", () => {
    const table = formatFilterTable(report(), false);
    expect(table.split("\n").slice(-8)).toEqual(
      [
        "FILTER b/slow  nodeSelector pool=a  configs slow",
        "  Accepted     True   Valid       The spec is valid.",
        "  Conflicting  False  NoConflict  No other filter takes VFs.",
        "         STATUS  PUBLISHED",
        "  nodes  2       2",
        "  slow   1       1",
        "  ├─ n1  slow 1: 0000-3c-02-0",
        "  └─ n2  slow 0",
        "",
      ].slice(0, 8),
    );
    expect(table).toContain(
      "FILTER a/fast  nodeSelector pool=a  configs fast, slow\n  status: none written yet",
    );
    expect(table).toContain("  fast   ?       3 +1 whole PF\n");
    expect(table).toContain(
      "  ├─ n1  fast 2: 0000-3b-02-0 0000-3b-02-1 + whole PF pf-0000-3b-00-0; slow 0\n",
    );
  });

  it("lists a few VFs per node, all of them when wide", () => {
    const many = buildFilterReports(
      [filter("a", "all", { configs: [{ resourceName: "x", resourceFilters: [{}] }] })],
      [node("n", {})],
      publishedDevicesByNode(
        slicesOf(
          "n",
          [0, 1, 2, 3, 4, 5, 6, 7].map((id) => vf(0, id, "x")),
        ),
        DRIVER,
      ),
      DRIVER,
    );
    expect(formatFilterTable(many, false)).toContain(
      "x 8: 0000-3b-02-0 0000-3b-02-1 0000-3b-02-2 0000-3b-02-3 0000-3b-02-4 0000-3b-02-5 +2 more",
    );
    expect(formatFilterTable(many, true)).toContain("0000-3b-02-7");
  });
});
