import fc from "fast-check";
import { describe, expect, expectTypeOf, it } from "vitest";
import type {
  ResourceConfig,
  SriovResourceFilter,
  SriovResourceFilterSpec,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import {
  pciAddressOf,
  pfDeviceName,
  type Device,
  type PfDevice,
  type VfDevice,
} from "../devices/model.js";
import {
  applyResourceFilters,
  formatFilterRef,
  nodeSelectorMatches,
  type FilterObject,
  type NodeFilterResult,
} from "./apply.js";

/** VF `vfID` of PF `pfName` (PF index `pfIndex` on the node). */
function vf(pfIndex: number, vfID: number, driver = "iavf"): VfDevice {
  const pciAddress = `0000:${(0x3b + pfIndex).toString(16)}:02.${vfID}`;
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: { pciAddress, vfID, driver, iommuGroup: undefined, netdev: undefined, rdmaCapable: false },
    pf: {
      pciAddress: `0000:${(0x3b + pfIndex).toString(16)}:00.0`,
      netdev: `eth${pfIndex}`,
      vendor: "8086",
      deviceID: "1572",
      driver: "i40e",
      vfVendor: "8086",
      vfDeviceID: "154c",
      numaNode: pfIndex,
      pcieRoot: "pci0000:3a",
      linkType: "ethernet",
      eswitchMode: "legacy",
      rdmaCapable: false,
      totalVfs: 8,
      numVfs: 4,
    },
  };
}

/** Two PFs, eth0 and eth1, four VFs each. */
const NODE_DEVICES = [0, 1].flatMap((pf) => [0, 1, 2, 3].map((id) => vf(pf, id)));
const LABELS = { "kubernetes.io/hostname": "worker-1", pool: "fast" };

function filter(
  name: string,
  configs: ResourceConfig[],
  extra: Partial<SriovResourceFilterSpec> & { namespace?: string } = {},
): FilterObject {
  const { namespace = "sriov", ...spec } = extra;
  return { metadata: { namespace, name, generation: 1 }, spec: { configs, ...spec } };
}

const config = (resourceName: string, ...pfNames: string[]): ResourceConfig => ({
  resourceName,
  resourceFilters: [pfNames.length === 0 ? {} : { pfNames }],
});

function apply<T extends Device = VfDevice>(
  filters: FilterObject[],
  devices: readonly T[] = NODE_DEVICES as unknown as T[],
): NodeFilterResult<T> {
  return applyResourceFilters({ nodeLabels: LABELS, devices, filters });
}

/** PCI address → resourceName of what the node publishes. */
function published(result: NodeFilterResult): Record<string, string | undefined> {
  return Object.fromEntries(result.devices.map((d) => [pciAddressOf(d), d.resourceName]));
}

describe("nodeSelectorMatches", () => {
  it("needs every selector label with the same value; empty or absent selects all", () => {
    expect(nodeSelectorMatches(undefined, LABELS)).toBe(true);
    expect(nodeSelectorMatches({}, LABELS)).toBe(true);
    expect(nodeSelectorMatches({ pool: "fast" }, LABELS)).toBe(true);
    expect(nodeSelectorMatches({ pool: "fast", zone: "a" }, LABELS)).toBe(false);
    expect(nodeSelectorMatches({ pool: "slow" }, LABELS)).toBe(false);
    expect(nodeSelectorMatches({ constructor: "" }, {})).toBe(false);
  });
});

describe("applyResourceFilters", () => {
  it("takes decoded SriovResourceFilters as they are", () => {
    expectTypeOf<SriovResourceFilter>().toExtend<FilterObject>();
  });

  it("publishes every VF without resourceName on a node no filter selects", () => {
    const elsewhere = filter("other-nodes", [config("r")], { nodeSelector: { pool: "slow" } });
    const stale = { ...vf(0, 0), resourceName: "stale" };
    const result = apply([elsewhere], [stale, ...NODE_DEVICES.slice(1)]);
    expect(result.devices.map((d) => d.name)).toEqual(NODE_DEVICES.map((d) => d.name));
    expect(result.devices.every((d) => !("resourceName" in d))).toBe(true);
    expect(result).toMatchObject({ selectedBy: [], hiddenVfs: [], losses: [], conflicts: [] });
    expect(stale.resourceName).toBe("stale"); // inputs are not modified
  });

  it("publishes only matched VFs, with their resourceName, on a selected node", () => {
    const result = apply([
      filter("f", [config("low", "eth0#0-1"), config("eth1", "eth1")], {
        nodeSelector: { pool: "fast" },
      }),
    ]);
    expect(published(result)).toEqual({
      "0000:3b:02.0": "low",
      "0000:3b:02.1": "low",
      "0000:3c:02.0": "eth1",
      "0000:3c:02.1": "eth1",
      "0000:3c:02.2": "eth1",
      "0000:3c:02.3": "eth1",
    });
    expect(result.hiddenVfs).toEqual(["0000:3b:02.2", "0000:3b:02.3"]);
    expect(result.selectedBy).toEqual([{ namespace: "sriov", name: "f", generation: 1 }]);
  });

  it("selects whole PFs by the same fields as VFs, read from the PF itself", () => {
    const pfs = [0, 1].map((index): PfDevice => {
      const { pf } = vf(index, 0);
      return { name: pfDeviceName(pf.pciAddress), pf, vfAddresses: [] };
    });
    const devices: Device[] = [...pfs, ...NODE_DEVICES];
    const take = (resourceFilter: ResourceConfig["resourceFilters"][number]) =>
      Object.keys(
        published(
          apply([filter("f", [{ resourceName: "r", resourceFilters: [resourceFilter] }])], devices),
        ),
      );
    // pfNames without a VF range: the PF and its VFs; with one: only those VFs.
    expect(take({ pfNames: ["eth0"] })).toEqual([
      "0000:3b:00.0",
      "0000:3b:02.0",
      "0000:3b:02.1",
      "0000:3b:02.2",
      "0000:3b:02.3",
    ]);
    expect(take({ pfNames: ["eth0#0-1"] })).toEqual(["0000:3b:02.0", "0000:3b:02.1"]);
    // The PF's own device id and driver, not its VFs'.
    expect(take({ devices: ["1572"] })).toEqual(["0000:3b:00.0", "0000:3c:00.0"]);
    expect(take({ drivers: ["i40e"] })).toEqual(["0000:3b:00.0", "0000:3c:00.0"]);
    expect(take({ devices: ["154c"] })).toHaveLength(NODE_DEVICES.length);
    expect(take({ pciAddresses: ["0000:3c:00.0"] })).toEqual(["0000:3c:00.0"]);
    expect(take({ rootDevices: ["0000:3c:00.0"] })).toHaveLength(5);
    // rootDevices with a VF range, as pfNames: only those VFs, not the PF.
    expect(take({ rootDevices: ["0000:3b:00.0#1-2"] })).toEqual(["0000:3b:02.1", "0000:3b:02.2"]);
    const hidden = apply([filter("f", [config("vfs", "eth0#0-3")])], devices).hiddenVfs;
    expect(hidden).toContain("0000:3b:00.0");
  });

  it("publishes nothing on a selected node where no config matches, and says so", () => {
    const result = apply([filter("f", [config("r", "eth9")])]);
    expect(result.devices).toEqual([]);
    expect(result.hiddenVfs).toHaveLength(NODE_DEVICES.length);
    expect(result.unmatchedConfigs).toEqual([
      { filter: result.selectedBy[0], configIndex: 0, resourceName: "r" },
    ]);
  });

  it("gives a VF to the first matching config of a filter; overlaps inside one filter are no conflict", () => {
    const result = apply([filter("f", [config("first", "eth0#0"), config("rest")])]);
    expect(published(result)["0000:3b:02.0"]).toBe("first");
    expect(published(result)["0000:3b:02.1"]).toBe("rest");
    expect(result.losses).toEqual([
      {
        pciAddress: "0000:3b:02.0",
        winner: { filter: result.selectedBy[0], configIndex: 0, resourceName: "first" },
        loser: { filter: result.selectedBy[0], configIndex: 1, resourceName: "rest" },
      },
    ]);
    expect(result.conflicts).toEqual([]);
  });

  it("orders filters by namespace, then name, and reports every loser", () => {
    const result = apply([
      filter("c", [config("c-all")]),
      filter("b", [config("b-eth1", "eth1")]),
      filter("a", [config("a-eth0", "eth0#0-1")], { namespace: "z" }),
      filter("z", [config("z-eth0", "eth0#1-2")], { namespace: "a" }),
    ]);
    expect(result.selectedBy.map(formatFilterRef)).toEqual(["a/z", "sriov/b", "sriov/c", "z/a"]);
    expect(published(result)).toEqual({
      "0000:3b:02.0": "c-all",
      "0000:3b:02.1": "z-eth0",
      "0000:3b:02.2": "z-eth0",
      "0000:3b:02.3": "c-all",
      "0000:3c:02.0": "b-eth1",
      "0000:3c:02.1": "b-eth1",
      "0000:3c:02.2": "b-eth1",
      "0000:3c:02.3": "b-eth1",
    });
    expect(
      result.conflicts.map((c) => ({
        filter: formatFilterRef(c.filter),
        losesTo: c.losesTo.map(formatFilterRef),
        lostVfs: c.lostVfs,
      })),
    ).toEqual([
      {
        filter: "sriov/c",
        losesTo: ["a/z", "sriov/b"],
        lostVfs: [
          "0000:3b:02.1",
          "0000:3b:02.2",
          "0000:3c:02.0",
          "0000:3c:02.1",
          "0000:3c:02.2",
          "0000:3c:02.3",
        ],
      },
      { filter: "z/a", losesTo: ["a/z", "sriov/c"], lostVfs: ["0000:3b:02.0", "0000:3b:02.1"] },
    ]);
    const lostByZa = result.losses.filter((l) => l.loser.filter.namespace === "z");
    expect(
      lostByZa.map((l) => [l.pciAddress, l.winner.resourceName, l.loser.resourceName]),
    ).toEqual([
      ["0000:3b:02.0", "c-all", "a-eth0"],
      ["0000:3b:02.1", "z-eth0", "a-eth0"],
    ]);
    expect(result.unmatchedConfigs).toEqual([]);
  });

  it("reports a config that only lost VFs as matched, and one that matched nothing as unmatched", () => {
    const result = apply([
      filter("a", [config("all")]),
      filter("b", [config("eth0", "eth0"), config("none", "eth7")]),
    ]);
    expect(result.unmatchedConfigs.map((c) => c.resourceName)).toEqual(["none"]);
    expect(result.conflicts.map((c) => formatFilterRef(c.filter))).toEqual(["sriov/b"]);
  });

  it("lets a filter that fails validation keep the node but take no VFs", () => {
    const bad = filter("a", [config("r", "eth0#3-0")]);
    const good = filter("b", [config("eth1", "eth1")]);
    const result = apply([bad, good]);
    expect(Object.keys(published(result))).toEqual(
      NODE_DEVICES.slice(4).map((d) => d.vf.pciAddress),
    );
    expect(result.rejected).toEqual([
      {
        filter: { namespace: "sriov", name: "a", generation: 1 },
        problems: [
          {
            path: "spec.configs[0].resourceFilters[0].pfNames[0]",
            message: '"eth0#3-0": range 3-0 runs backwards: write 0-3',
          },
        ],
      },
    ]);
    expect(result.unmatchedConfigs).toEqual([]);
    expect(apply([bad]).devices).toEqual([]);
  });
});

// Property tests over small random nodes and filter sets: the rules hold whatever the input.

const resourceFilterArb = fc.record(
  {
    pfNames: fc.subarray(["eth0", "eth1", "eth0#0-1", "eth1#2,3", "eth2"], { minLength: 1 }),
    drivers: fc.subarray(["iavf", "vfio-pci"], { minLength: 1 }),
    numaNodes: fc.subarray(["0", "1"], { minLength: 1 }),
  },
  { requiredKeys: [] },
);

const filterArb = (name: string) =>
  fc
    .record({
      namespace: fc.constantFrom("a", "b"),
      selectNode: fc.boolean(),
      filters: fc.array(fc.array(resourceFilterArb, { minLength: 1, maxLength: 2 }), {
        minLength: 1,
        maxLength: 3,
      }),
    })
    .map(({ namespace, selectNode, filters }) =>
      filter(
        name,
        filters.map((resourceFilters, i) => ({ resourceName: `${name}-${i}`, resourceFilters })),
        { namespace, nodeSelector: { pool: selectNode ? "fast" : "slow" } },
      ),
    );

const filtersArb = fc
  .uniqueArray(fc.constantFrom("f1", "f2", "f3", "f4", "f5"), { maxLength: 5 })
  .chain((names) => fc.tuple(...names.map(filterArb)));

const devicesArb = fc
  .uniqueArray(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 3 })), {
    selector: ([pf, id]) => `${pf}/${id}`,
    maxLength: 8,
  })
  .chain((ids) =>
    fc.tuple(
      ...ids.map(([pf, id]) => fc.constantFrom("iavf", "vfio-pci").map((d) => vf(pf, id, d))),
    ),
  );

describe("applyResourceFilters properties", () => {
  it("publishes each VF at most once, and only VFs of the node", () => {
    fc.assert(
      fc.property(filtersArb, devicesArb, (filters, devices) => {
        const result = apply(filters, devices);
        const names = result.devices.map((d) => d.name);
        expect(new Set(names).size).toBe(names.length);
        const input = new Set(devices.map((d) => d.name));
        expect(names.every((name) => input.has(name))).toBe(true);
        expect(result.devices.length + result.hiddenVfs.length).toBe(devices.length);
      }),
    );
  });

  it("does not depend on the order the filters arrive in", () => {
    fc.assert(
      fc.property(
        filtersArb.chain((filters) =>
          fc.tuple(
            fc.constant(filters),
            fc.shuffledSubarray(filters, { minLength: filters.length }),
          ),
        ),
        devicesArb,
        ([filters, shuffled], devices) => {
          expect(apply(shuffled, devices)).toEqual(apply(filters, devices));
        },
      ),
    );
  });

  it("sets resourceName exactly when a filter selects the node, to the winner of each loss", () => {
    fc.assert(
      fc.property(filtersArb, devicesArb, (filters, devices) => {
        const result = apply(filters, devices);
        const selected = result.selectedBy.length > 0;
        expect(result.devices.every((d) => (d.resourceName !== undefined) === selected)).toBe(true);
        const names = published(result);
        for (const loss of result.losses) {
          expect(names[loss.pciAddress]).toBe(loss.winner.resourceName);
        }
      }),
    );
  });
});
