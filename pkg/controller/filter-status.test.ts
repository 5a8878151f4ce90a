import { describe, expect, it } from "vitest";
import type {
  Condition,
  SriovResourceFilterSpec,
  SriovResourceFilterStatus,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import { pfDeviceName, type PfDevice, type VfDevice } from "../devices/model.js";
import type { KubeObject } from "../../lib/kube/client.js";
import {
  desiredFilterStatuses,
  formatTime,
  REASON_INVALID_SPEC,
  REASON_NO_CONFLICT,
  REASON_NOT_APPLIED,
  REASON_VALID,
  REASON_VFS_TAKEN,
  statusWrite,
  statusWrites,
  withTransitionTimes,
  type DesiredFilterStatus,
  type FilterResource,
  type FilterStatusInput,
} from "./filter-status.js";

const NS = "dra-sriov-driver";
const T0 = new Date("2026-01-01T10:00:00.123Z");
const T1 = new Date("2026-01-01T11:00:00Z");

/** VF `vfID` of PF eth<pfIndex>. */
function vf(pfIndex: number, vfID: number): VfDevice {
  const bus = (0x3b + pfIndex).toString(16);
  const pciAddress = `0000:${bus}:02.${vfID}`;
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: {
      pciAddress,
      vfID,
      driver: "iavf",
      iommuGroup: undefined,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: {
      pciAddress: `0000:${bus}:00.0`,
      netdev: `eth${pfIndex}`,
      vendor: "",
      deviceID: "1572",
      driver: "",
      vfVendor: "8086",
      vfDeviceID: "154c",
      numaNode: 0,
      pcieRoot: "pci0000:3a",
      linkType: "ethernet",
      eswitchMode: "legacy",
      rdmaCapable: false,
      totalVfs: 0,
      numVfs: 0,
    },
  };
}

/** eth<pfIndex> as a whole PF with its four VFs. */
function wholePf(pfIndex: number): PfDevice {
  const { pf } = vf(pfIndex, 0);
  return {
    name: pfDeviceName(pf.pciAddress),
    pf: { ...pf, vendor: "8086", driver: "i40e", totalVfs: 64, numVfs: 4 },
    vfAddresses: [0, 1, 2, 3].map((id) => vf(pfIndex, id).vf.pciAddress),
  };
}

/** eth0 and eth1 with four VFs each. */
const EIGHT_VFS = [0, 1].flatMap((pf) => [0, 1, 2, 3].map((id) => vf(pf, id)));

function node(name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels } };
}

function filter(
  name: string,
  spec: unknown,
  extra: { generation?: number; status?: SriovResourceFilterStatus } = {},
): FilterResource {
  return {
    apiVersion: "sriovnetwork.openshift.io/v1alpha1",
    kind: "SriovResourceFilter",
    metadata: { namespace: NS, name, generation: extra.generation ?? 1, resourceVersion: "7" },
    spec,
    ...(extra.status === undefined ? {} : { status: extra.status }),
  };
}

const pool = { pool: "sriov" };
const spec = (
  configs: [resourceName: string, pfNames?: string[]][],
  nodeSelector: Record<string, string> = pool,
): SriovResourceFilterSpec => ({
  nodeSelector,
  configs: configs.map(([resourceName, pfNames]) => ({
    resourceName,
    resourceFilters: [pfNames === undefined ? {} : { pfNames }],
  })),
});

function statuses(input: FilterStatusInput): Record<string, DesiredFilterStatus> {
  return Object.fromEntries(desiredFilterStatuses(input).map((s) => [s.name, s]));
}

function conditionOf(status: DesiredFilterStatus | undefined, type: string) {
  return status?.conditions.find((c) => c.type === type);
}

const twoNodes = {
  nodes: [node("worker-1", pool), node("worker-2", pool)],
  devicesByNode: new Map([
    ["worker-1", EIGHT_VFS],
    ["worker-2", EIGHT_VFS],
  ]),
};

describe("desiredFilterStatuses", () => {
  it("counts whole PFs apart from VFs, and writes wholePfs only where there are any", () => {
    const devicesByNode = new Map([
      ["worker-1", [...EIGHT_VFS, wholePf(0), wholePf(1)]],
      ["worker-2", EIGHT_VFS],
    ]);
    const result = statuses({
      // Without a VF range, a PF's name or address selects its whole PF besides its VFs;
      // whole PFs only on worker-1. A driver selects VFs only here (the PFs are on i40e).
      filters: [
        filter("f", {
          nodeSelector: pool,
          configs: [
            { resourceName: "eth0", resourceFilters: [{ pfNames: ["eth0"] }] },
            { resourceName: "eth1", resourceFilters: [{ rootDevices: ["0000:3c:00.0"] }] },
          ],
        }),
        filter("g", {
          nodeSelector: pool,
          configs: [{ resourceName: "iavf", resourceFilters: [{ drivers: ["iavf"] }] }],
        }),
        filter("h", {
          nodeSelector: pool,
          configs: [
            { resourceName: "port0", resourceFilters: [{ rootDevices: ["0000:3b:00.0"] }] },
          ],
        }),
      ],
      nodes: twoNodes.nodes,
      devicesByNode,
    });
    expect(result["f"]!.devicesExposed).toEqual([
      { resourceName: "eth0", count: 8, wholePfs: 1 },
      { resourceName: "eth1", count: 8, wholePfs: 1 },
    ]);
    expect(result["g"]!.devicesExposed).toEqual([{ resourceName: "iavf", count: 0 }]);
    // What a later filter lost says how many were whole PFs.
    expect(conditionOf(result["h"], "Conflicting")!.message).toMatch(
      new RegExp(
        `^8 VFs and 1 whole PF this filter matches on 2 nodes went to .*: ${NS}/f \\(8 VFs and 1 whole PF on 2 nodes\\)`,
      ),
    );
    expect(conditionOf(result["g"], "Conflicting")!.message).toMatch(/^16 VFs this filter/);
  });

  it("accepts a valid filter and reports nodes and devices, with the generation", () => {
    const result = statuses({
      filters: [filter("f", spec([["fast", ["eth0"]], ["rest"]]), { generation: 4 })],
      ...twoNodes,
    });
    expect(result["f"]).toEqual({
      namespace: NS,
      name: "f",
      generation: 4,
      conditions: [
        {
          type: "Accepted",
          status: "True",
          observedGeneration: 4,
          reason: REASON_VALID,
          message: "The spec is valid and applied on the nodes the nodeSelector selects.",
        },
        {
          type: "Conflicting",
          status: "False",
          observedGeneration: 4,
          reason: REASON_NO_CONFLICT,
          message: "No other filter takes VFs this filter matches on any node that publishes them.",
        },
      ],
      matchedNodes: 2,
      devicesExposed: [
        { resourceName: "fast", count: 8 },
        { resourceName: "rest", count: 8 },
      ],
    });
  });

  it("rejects a spec the schema admits but validation does not, naming the field", () => {
    const result = statuses({
      filters: [filter("f", spec([["fast", ["eth0#3-1"]]]))],
      ...twoNodes,
    });
    const accepted = conditionOf(result["f"], "Accepted");
    expect(accepted).toMatchObject({ status: "False", reason: REASON_INVALID_SPEC });
    expect(accepted?.message).toContain(
      'spec.configs[0].resourceFilters[0].pfNames[0]: "eth0#3-1": range 3-1 runs backwards: write 1-3',
    );
    expect(accepted?.message).toContain("publishes no VFs on them until the spec is fixed");
    expect(conditionOf(result["f"], "Conflicting")).toMatchObject({
      status: "False",
      reason: REASON_NOT_APPLIED,
    });
    // It still selects its nodes, and takes nothing there.
    expect(result["f"]?.matchedNodes).toBe(2);
    expect(result["f"]?.devicesExposed).toEqual([{ resourceName: "fast", count: 0 }]);
  });

  it("rejects a spec that does not decode, with every problem's path", () => {
    const result = statuses({
      filters: [filter("f", { configs: [{ resourceName: "bad name!", resourceFilters: [] }] })],
      ...twoNodes,
    });
    const accepted = conditionOf(result["f"], "Accepted");
    expect(accepted).toMatchObject({ status: "False", reason: REASON_INVALID_SPEC });
    expect(accepted?.message).toContain("spec.configs[0].resourceName");
    expect(accepted?.message).toContain("spec.configs[0].resourceFilters");
    expect(result["f"]).toMatchObject({ matchedNodes: 0, devicesExposed: [] });
  });

  it("lists at most 20 problems and counts the rest", () => {
    const configs = Array.from({ length: 25 }, (_, i): [string, string[]] => [
      `r${i}`,
      [`eth0#${i + 1}-0`],
    ]);
    const message = conditionOf(
      statuses({ filters: [filter("f", spec(configs))], ...twoNodes })["f"],
      "Accepted",
    )?.message;
    expect(message).toContain('pfNames[0]: "eth0#20-0"');
    expect(message).not.toContain("eth0#21-0");
    expect(message).toContain("(and 5 more)");
  });

  it("marks the filter that loses VFs to one earlier by name, naming the winner and the scale", () => {
    // Listed loser first: precedence is by name, never by arrival.
    const result = statuses({
      filters: [filter("b-late", spec([["late"]])), filter("a-early", spec([["early", ["eth0"]]]))],
      ...twoNodes,
    });
    expect(conditionOf(result["a-early"], "Conflicting")).toMatchObject({
      status: "False",
      reason: REASON_NO_CONFLICT,
    });
    const conflicting = conditionOf(result["b-late"], "Conflicting");
    expect(conflicting).toMatchObject({ status: "True", reason: REASON_VFS_TAKEN });
    expect(conflicting?.message).toBe(
      "8 VFs this filter matches on 2 nodes went to filters that take precedence " +
        `(by namespace, then name): ${NS}/a-early (8 VFs on 2 nodes). ` +
        "Narrow the nodeSelector or resourceFilters of one side, or rename a filter to change precedence.",
    );
    expect(conditionOf(result["b-late"], "Accepted")?.status).toBe("True");
    expect(result["a-early"]?.devicesExposed).toEqual([{ resourceName: "early", count: 8 }]);
    expect(result["b-late"]?.devicesExposed).toEqual([{ resourceName: "late", count: 8 }]);
  });

  it("lists every winner in precedence order with its own counts", () => {
    const result = statuses({
      filters: [
        filter("c", spec([["all"]])),
        filter("b", spec([["eth1", ["eth1#0"]]], { pool: "sriov", zone: "a" })),
        filter("a", spec([["eth0", ["eth0"]]])),
      ],
      nodes: [node("worker-1", { ...pool, zone: "a" }), node("worker-2", pool)],
      devicesByNode: twoNodes.devicesByNode,
    });
    expect(conditionOf(result["c"], "Conflicting")?.message).toContain(
      `9 VFs this filter matches on 2 nodes went to filters that take precedence ` +
        `(by namespace, then name): ${NS}/a (8 VFs on 2 nodes), ${NS}/b (1 VF on 1 node).`,
    );
    expect(result["c"]?.devicesExposed).toEqual([{ resourceName: "all", count: 7 }]);
    expect(result["b"]?.matchedNodes).toBe(1);
  });

  it("does not call first-match-wins between one filter's own configs a conflict", () => {
    const result = statuses({
      filters: [filter("f", spec([["eth0", ["eth0"]], ["catch-all"]]))],
      ...twoNodes,
    });
    expect(conditionOf(result["f"], "Conflicting")?.status).toBe("False");
    expect(result["f"]?.devicesExposed).toEqual([
      { resourceName: "eth0", count: 8 },
      { resourceName: "catch-all", count: 8 },
    ]);
  });

  it("sees no conflict where the filters select different nodes", () => {
    const result = statuses({
      filters: [
        filter("a", spec([["x"]], { zone: "a" })),
        filter("b", spec([["y"]], { zone: "b" })),
      ],
      nodes: [node("worker-1", { zone: "a" }), node("worker-2", { zone: "b" })],
      devicesByNode: twoNodes.devicesByNode,
    });
    expect(conditionOf(result["b"], "Conflicting")?.status).toBe("False");
    expect(result["a"]?.devicesExposed).toEqual([{ resourceName: "x", count: 8 }]);
    expect(result["b"]?.devicesExposed).toEqual([{ resourceName: "y", count: 8 }]);
  });

  it("counts the resourceName of two filters apart, each for the VFs it won", () => {
    const result = statuses({
      filters: [
        filter("a", spec([["shared", ["eth0"]]])),
        filter("b", spec([["shared", ["eth1"]]])),
      ],
      ...twoNodes,
    });
    expect(result["a"]?.devicesExposed).toEqual([{ resourceName: "shared", count: 8 }]);
    expect(result["b"]?.devicesExposed).toEqual([{ resourceName: "shared", count: 8 }]);
    expect(conditionOf(result["b"], "Conflicting")?.status).toBe("False");
  });

  it("counts every selected Node, published or not, and no unselected one", () => {
    const result = statuses({
      filters: [filter("f", spec([["x"]])), filter("z-everywhere", spec([["y"]], {}))],
      nodes: [node("worker-1", pool), node("no-slices", pool), node("other", { pool: "cpu" })],
      devicesByNode: new Map([
        ["worker-1", EIGHT_VFS],
        ["gone-node", EIGHT_VFS],
      ]),
    });
    expect(result["f"]?.matchedNodes).toBe(2);
    expect(result["z-everywhere"]?.matchedNodes).toBe(3);
    // Devices of a node with no Node object are not counted.
    expect(result["f"]?.devicesExposed).toEqual([{ resourceName: "x", count: 8 }]);
  });

  it("returns the statuses in the order of the filters given", () => {
    const names = ["z", "a", "m"];
    const result = desiredFilterStatuses({
      filters: names.map((name) => filter(name, spec([["x"]]))),
      ...twoNodes,
    });
    expect(result.map((s) => s.name)).toEqual(names);
  });
});

describe("withTransitionTimes", () => {
  const desired = (accepted: "True" | "False", message = "m"): DesiredFilterStatus => ({
    namespace: NS,
    name: "f",
    generation: 2,
    conditions: [
      { type: "Accepted", status: accepted, observedGeneration: 2, reason: "R", message },
      { type: "Conflicting", status: "False", observedGeneration: 2, reason: "R", message },
    ],
    matchedNodes: 1,
    devicesExposed: [],
  });

  it("stamps new conditions with now, in whole seconds", () => {
    const status = withTransitionTimes(desired("True"), undefined, T0);
    expect(status.conditions?.map((c) => c.lastTransitionTime)).toEqual([
      "2026-01-01T10:00:00Z",
      "2026-01-01T10:00:00Z",
    ]);
  });

  it("keeps the transition time while the status stays, even as message or generation change", () => {
    const before = withTransitionTimes(desired("True"), undefined, T0);
    const after = withTransitionTimes(desired("True", "new words"), before, T1);
    expect(after.conditions?.map((c) => c.lastTransitionTime)).toEqual([
      formatTime(T0),
      formatTime(T0),
    ]);
    expect(after.conditions?.[0]?.message).toBe("new words");
  });

  it("moves the transition time of exactly the condition whose status changed", () => {
    const before = withTransitionTimes(desired("True"), undefined, T0);
    const after = withTransitionTimes(desired("False"), before, T1);
    expect(after.conditions?.map((c: Condition) => [c.type, c.lastTransitionTime])).toEqual([
      ["Accepted", formatTime(T1)],
      ["Conflicting", formatTime(T0)],
    ]);
  });
});

describe("statusWrite", () => {
  const input = (status?: SriovResourceFilterStatus): FilterStatusInput => ({
    filters: [filter("f", spec([["x"]]), status === undefined ? {} : { status })],
    ...twoNodes,
  });

  it("writes a filter that has no status yet, conditional on its resourceVersion", () => {
    const [write] = statusWrites(input(), T0);
    expect(write?.resourceVersion).toBe("7");
    expect(write?.status.matchedNodes).toBe(2);
  });

  it("writes nothing when the stored status is what it would write", () => {
    const [write] = statusWrites(input(), T0);
    expect(statusWrites(input(write!.status), T1)).toEqual([]);
  });

  it("writes when anything but the time changed, keeping the transition times", () => {
    const [write] = statusWrites(input(), T0);
    const stored = filter("f", spec([["x"]]), { status: write!.status });
    const desired = { ...write!.desired, matchedNodes: 1 };
    const next = statusWrite(desired, stored, T1);
    expect(next?.status.matchedNodes).toBe(1);
    expect(next?.status.conditions).toEqual(write!.status.conditions);
  });

  it("replaces a stored status that does not decode", () => {
    const stored = { ...filter("f", spec([["x"]])), status: { conditions: "garbage" } };
    const [desired] = desiredFilterStatuses(input());
    const write = statusWrite(desired!, stored, T0);
    expect(write?.status.conditions?.every((c) => c.lastTransitionTime === formatTime(T0))).toBe(
      true,
    );
  });
});
