import { describe, expect, it } from "vitest";
import { canonical } from "../../lib/util/canonical-json.js";
import { countersDropped, keptSliceOf, planSlices, type PublishedSlice } from "./plan.js";
import type { ResourceSlice } from "./render.js";

function slice(name: string, devices: string[], count = 1, generation = 0): ResourceSlice {
  return {
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceSlice",
    metadata: { name },
    spec: {
      driver: "d",
      nodeName: "n",
      pool: { name: "n", generation, resourceSliceCount: count },
      devices: devices.map((device) => ({
        name: device,
        attributes: { "d/vendor": { string: "8086" } },
      })),
    },
  };
}

/** What the API server hands back: generation set, resourceVersion added, keys re-ordered. */
function published(
  desired: ResourceSlice,
  generation: number,
  resourceVersion = "7",
): PublishedSlice {
  return {
    metadata: { resourceVersion, uid: `uid-${desired.metadata.name}`, name: desired.metadata.name },
    spec: {
      pool: {
        resourceSliceCount: desired.spec.pool.resourceSliceCount,
        generation,
        name: desired.spec.pool.name,
      },
      nodeName: desired.spec.nodeName,
      driver: desired.spec.driver,
      devices: desired.spec.devices!.map((d) => ({ attributes: d.attributes, name: d.name })),
    },
  };
}

/** The plan against slices as the publisher keeps them (digests of what the server returned). */
const planFrom = (desired: ResourceSlice[], published: PublishedSlice[]) =>
  planSlices(desired, published.map(keptSliceOf));

describe("planSlices", () => {
  it("creates everything at generation 1 on an empty pool", () => {
    const plan = planFrom([slice("a", ["x"])], []);
    expect(plan.generation).toBe(1);
    expect(plan.create.map((s) => [s.metadata.name, s.spec.pool.generation])).toEqual([["a", 1]]);
    expect(plan.update).toEqual([]);
    expect(plan.delete).toEqual([]);
  });

  it("writes nothing when the published slices already match, whatever their key order", () => {
    const desired = [slice("a", ["x", "y"], 2), slice("b", ["z"], 2)];
    const plan = planFrom(
      desired,
      desired.map((s) => published(s, 4)),
    );
    expect(plan).toEqual({ generation: 4, create: [], update: [], delete: [] });
  });

  it("bumps the generation and rewrites every slice of the pool when one device changes", () => {
    const before = [slice("a", ["x"], 2), slice("b", ["z"], 2)];
    const after = [slice("a", ["x"], 2), slice("b", ["z2"], 2)];
    const plan = planFrom(
      after,
      before.map((s) => published(s, 4, "9")),
    );
    expect(plan.generation).toBe(5);
    expect(
      plan.update.map((u) => [
        u.slice.metadata.name,
        u.slice.spec.pool.generation,
        u.resourceVersion,
      ]),
    ).toEqual([
      ["a", 5, "9"],
      ["b", 5, "9"],
    ]);
    expect(plan.create).toEqual([]);
  });

  it("deletes slices the pool no longer has and repairs a pool with mixed generations", () => {
    const desired = [slice("a", ["x"])];
    const plan = planFrom(desired, [published(desired[0]!, 3), published(slice("b", ["y"]), 2)]);
    expect(plan.generation).toBe(4);
    expect(plan.delete.map((s) => s.metadata.name)).toEqual(["b"]);
    expect(plan.update).toHaveLength(1);
  });

  it("re-creates a slice someone deleted", () => {
    const desired = [slice("a", ["x"], 2), slice("b", ["y"], 2)];
    const plan = planFrom(desired, [published(desired[0]!, 1)]);
    expect(plan.create.map((s) => s.metadata.name)).toEqual(["b"]);
    expect(plan.generation).toBe(2);
  });

  it("rewrites the pool when a taint comes or goes, and not when the server echoes one", () => {
    const taint = {
      key: "d/unhealthy",
      value: "PFLinkDown",
      effect: "NoSchedule" as const,
      timeAdded: "2026-12-04T22:00:00Z",
    };
    const plain = slice("s0", ["a"]);
    const tainted: ResourceSlice = {
      ...plain,
      spec: { ...plain.spec, devices: [{ ...plain.spec.devices![0]!, taints: [taint] }] },
    };
    const echo = (desired: ResourceSlice): PublishedSlice => {
      const base = published(desired, 1);
      return {
        ...base,
        spec: {
          ...base.spec,
          devices: desired.spec.devices!.map((d) => ({
            ...d,
            taints: d.taints?.map((t) => ({ ...t })),
          })),
        },
      };
    };
    expect(planFrom([tainted], [echo(tainted)]).update).toEqual([]);
    expect(planFrom([tainted], [published(plain, 1)]).update).toHaveLength(1);
    expect(planFrom([plain], [echo(tainted)]).update).toHaveLength(1);
  });

  it("rewrites the pool when counters change, and not when the server echoes them", () => {
    const counters: ResourceSlice = {
      ...slice("s0", [], 2),
      spec: {
        ...slice("s0", [], 2).spec,
        devices: undefined,
        sharedCounters: [{ name: "pf-a", counters: { vfs: { value: "2" } } }],
      },
    };
    delete counters.spec.devices;
    const consume = (value: string) => [{ counterSet: "pf-a", counters: { vfs: { value } } }];
    const devices = slice("s1", ["pf-a", "vf-a"], 2);
    devices.spec.devices = devices.spec.devices!.map((d, index) => ({
      ...d,
      consumesCounters: consume(index === 0 ? "2" : "1"),
    }));
    // The server omits an absent devices list and returns every field it stored.
    const echo = (desired: ResourceSlice): PublishedSlice => {
      const base = published({ ...desired, spec: { ...desired.spec, devices: [] } }, 1);
      return {
        ...base,
        spec: {
          driver: base.spec.driver,
          nodeName: base.spec.nodeName,
          pool: base.spec.pool,
          ...(desired.spec.devices ? { devices: desired.spec.devices.map((d) => ({ ...d })) } : {}),
          ...(desired.spec.sharedCounters ? { sharedCounters: desired.spec.sharedCounters } : {}),
        },
      };
    };
    const desired = [counters, devices];
    expect(planFrom(desired, desired.map(echo)).update).toEqual([]);
    // What a server with DRAPartitionableDevices off keeps: neither counters nor consumption.
    const dropped = desired.map(echo).map((s) => ({
      ...s,
      spec: {
        ...s.spec,
        sharedCounters: undefined,
        devices: s.spec.devices?.map(({ consumesCounters: _c, ...d }) => d),
      },
    }));
    expect(planFrom(desired, dropped).update).toHaveLength(2);
    expect(desired.map((s, i) => countersDropped(s, dropped[i]!))).toEqual([true, true]);
    expect(desired.map((s) => countersDropped(s, echo(s)))).toEqual([false, false]);
    const plain = slice("s2", ["x"]);
    expect(countersDropped(plain, published(plain, 1))).toBe(false);
  });

  it("compares JSON independent of key order", () => {
    expect(canonical({ b: 1, a: { d: [1, { y: 1, x: 2 }], c: 2 } })).toBe(
      canonical({ a: { c: 2, d: [1, { x: 2, y: 1 }] }, b: 1 }),
    );
    expect(canonical([1, 2])).not.toBe(canonical([2, 1]));
  });
});
