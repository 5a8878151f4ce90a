import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holdersByDevice } from "../../pkg/cluster-inventory/claims.js";
import { explainClaim } from "../../pkg/claim-explain/explain.js";
import { devicesByNode, readClaimSpec } from "../../pkg/claim-explain/input.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import {
  createNamespace,
  createPinnedPod,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  schedulingOutcome,
  testClient,
  uniqueName,
} from "./kube.js";

/** Generated cases; DRA_SRIOV_EXPLAIN_CASES overrides, DRA_SRIOV_EXPLAIN_SEED replays a run. */
const CASES = Number(process.env["DRA_SRIOV_EXPLAIN_CASES"] ?? 32);
const SEED = Number(process.env["DRA_SRIOV_EXPLAIN_SEED"] ?? Date.now() % 2 ** 31);
/** Cases in flight at once (nodes, slices, claims and pods created together). */
const BATCH = 8;

type Value = { int: number } | { string: string } | { bool: boolean };
interface Taint {
  key: string;
  value: string;
  effect: "NoSchedule";
}
interface Toleration {
  key: string;
  operator: "Equal" | "Exists";
  value?: string;
}
interface GeneratedDevice {
  attributes: Partial<Record<"a" | "b" | "c", Value>>;
  /** Whether attribute names carry the driver's domain or use the short form. */
  qualified: boolean;
  taint: Taint | undefined;
}
interface GeneratedRequest {
  selectors: string[];
  /** A count, or "All" devices. */
  count: number | "All";
  tolerations: Toleration[];
}
interface GeneratedCase {
  devices: GeneratedDevice[];
  requests: GeneratedRequest[];
  constraint:
    | { kind: "matchAttribute" | "distinctAttribute"; attribute: "a" | "b"; firstOnly: boolean }
    | undefined;
}

/**
 * Explain agrees with the real kube-scheduler on generated devices (attributes present or
 * absent, of varying types, in short and qualified form, some tainted) and generated claims
 * (one or two requests, a count or all devices, tolerations, a matchAttribute or
 * distinctAttribute constraint on every request or the first; selectors with equality,
 * ordering, string functions, has()/in guards, &&, ||, !, results that are not bools):
 * whatever the scheduler allocates, explain says fits on that node; whatever it refuses,
 * explain says does not.
 */
describe("explain agrees with the real scheduler", () => {
  let client: KubeClient;
  const tag = uniqueName("kprop");
  const namespace = tag;
  const driver = `${tag}.example.com`;
  const deviceClass = tag;
  const nodes: string[] = [];

  // Mostly the type selectors expect (a int, b string, c bool), sometimes another; mostly present.
  const value = (usual: "int" | "string" | "bool"): fc.Arbitrary<Value> => {
    const of = {
      int: fc.integer({ min: 0, max: 3 }).map((int) => ({ int })),
      string: fc.constantFrom("x", "y", "xy").map((string) => ({ string })),
      bool: fc.boolean().map((bool) => ({ bool })),
    };
    return fc.oneof(
      { weight: 6, arbitrary: of[usual] },
      ...(["int", "string", "bool"] as const)
        .filter((type) => type !== usual)
        .map((type) => ({ weight: 1, arbitrary: of[type] as fc.Arbitrary<Value> })),
    );
  };
  /** `arbitrary` `present` times in `present + absent`, else undefined. */
  const maybe = <T>(arbitrary: fc.Arbitrary<T>, present: number, absent: number) =>
    fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: present, arbitrary });
  const device: fc.Arbitrary<GeneratedDevice> = fc.record({
    attributes: fc
      .record({
        a: maybe(value("int"), 4, 1),
        b: maybe(value("string"), 4, 1),
        c: maybe(value("bool"), 4, 1),
      })
      .map((attributes) => {
        const present: GeneratedDevice["attributes"] = {};
        for (const key of ["a", "b", "c"] as const) {
          const v = attributes[key];
          if (v !== undefined) present[key] = v;
        }
        return present;
      }),
    qualified: fc.boolean(),
    taint: maybe(
      fc.record({
        key: fc.constantFrom("example.com/t1", "example.com/t2"),
        value: fc.constantFrom("", "v"),
        effect: fc.constant("NoSchedule" as const),
      }),
      1,
      4,
    ),
  });
  const toleration: fc.Arbitrary<Toleration> = fc.oneof(
    fc.record({
      key: fc.constantFrom("example.com/t1", ""),
      operator: fc.constant("Exists" as const),
    }),
    fc.record({
      key: fc.constantFrom("example.com/t1", "example.com/t2"),
      operator: fc.constant("Equal" as const),
      value: fc.constantFrom("", "v"),
    }),
  );
  const A = () => `device.attributes["${driver}"]`;
  const atom: fc.Arbitrary<string> = fc.oneof(
    fc.integer({ min: 0, max: 3 }).map((n) => `${A()}.a == ${n}`),
    fc.integer({ min: 0, max: 3 }).map((n) => `${A()}.a > ${n}`),
    fc.constantFrom("x", "y").map((s) => `${A()}.b == "${s}"`),
    fc.constantFrom("x", "y").map((s) => `${A()}.b.startsWith("${s}")`),
    fc.constant(`${A()}.c`),
    fc.constantFrom("a", "b", "c").map((k) => `"${k}" in ${A()}`),
    fc.constantFrom("a", "b", "c").map((k) => `has(${A()}.${k})`),
  );
  const expression: fc.Arbitrary<string> = fc
    .tuple(
      fc.array(atom, { minLength: 1, maxLength: 3 }),
      fc.array(fc.constantFrom("&&", "||"), { minLength: 2, maxLength: 2 }),
      fc.boolean(),
    )
    .map(([atoms, joins, negate]) => {
      const joined = atoms.reduce((left, right, i) => `${left} ${joins[i - 1]} ${right}`);
      return negate ? `!(${joined})` : joined;
    });
  const request: fc.Arbitrary<GeneratedRequest> = fc.record({
    selectors: fc.oneof(
      { weight: 2, arbitrary: fc.array(expression, { maxLength: 1 }) },
      { weight: 1, arbitrary: fc.array(expression, { minLength: 2, maxLength: 2 }) },
    ),
    count: fc.oneof(
      { weight: 4, arbitrary: fc.constant(1) },
      { weight: 2, arbitrary: fc.integer({ min: 2, max: 3 }) },
      { weight: 1, arbitrary: fc.constant("All" as const) },
    ),
    tolerations: fc.array(toleration, { maxLength: 1 }),
  });
  const generated: fc.Arbitrary<GeneratedCase> = fc.record({
    devices: fc.array(device, { minLength: 1, maxLength: 6 }),
    requests: fc.oneof(
      { weight: 4, arbitrary: fc.array(request, { minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.array(request, { minLength: 2, maxLength: 2 }) },
    ),
    constraint: maybe(
      fc.record({
        kind: fc.constantFrom("matchAttribute" as const, "distinctAttribute" as const),
        attribute: fc.constantFrom("a" as const, "b" as const),
        firstOnly: fc.boolean(),
      }),
      1,
      2,
    ),
  });

  beforeAll(async () => {
    client = testClient();
    await createNamespace(client, namespace);
    await client.request({
      method: "POST",
      path: "/apis/resource.k8s.io/v1/deviceclasses",
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "DeviceClass",
        metadata: { name: deviceClass },
        spec: { selectors: [{ cel: { expression: `device.driver == "${driver}"` } }] },
      },
    });
  });

  afterAll(async () => {
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/apis/resource.k8s.io/v1/deviceclasses/${deviceClass}`);
    for (const node of nodes) {
      await deleteIgnoringMissing(client, `/apis/resource.k8s.io/v1/resourceslices/${node}`);
      await deleteIgnoringMissing(client, `/api/v1/nodes/${node}`);
    }
  });

  /** A node publishing `devices` in one slice of the generated driver. */
  async function publish(node: string, devices: GeneratedDevice[]): Promise<void> {
    nodes.push(node);
    await createReadyNode(client, node);
    await client.request({
      method: "POST",
      path: "/apis/resource.k8s.io/v1/resourceslices",
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceSlice",
        metadata: { name: node },
        spec: {
          driver,
          nodeName: node,
          pool: { name: node, generation: 1, resourceSliceCount: 1 },
          devices: devices.map((d, index) => ({
            name: `dev-${index}`,
            attributes: Object.fromEntries(
              Object.entries(d.attributes).map(([key, v]) => [
                d.qualified ? `${driver}/${key}` : key,
                v,
              ]),
            ),
            ...(d.taint === undefined
              ? {}
              : { taints: [{ ...d.taint, timeAdded: "2026-01-01T00:00:00Z" }] }),
          })),
        },
      },
    });
  }

  function claimDevices(entry: Pick<GeneratedCase, "requests" | "constraint">) {
    const constraint = entry.constraint;
    return {
      requests: entry.requests.map((request, index) => ({
        name: `r${index}`,
        exactly: {
          deviceClassName: deviceClass,
          ...(request.count === "All"
            ? { allocationMode: "All" }
            : { allocationMode: "ExactCount", count: request.count }),
          selectors: request.selectors.map((e) => ({ cel: { expression: e } })),
          ...(request.tolerations.length === 0 ? {} : { tolerations: request.tolerations }),
        },
      })),
      constraints:
        constraint === undefined
          ? []
          : [
              {
                ...(constraint.firstOnly ? { requests: ["r0"] } : {}),
                [constraint.kind]: `${driver}/${constraint.attribute}`,
              },
            ],
    };
  }

  /** Claim and pinned pod; what the scheduler did with it. */
  async function schedule(node: string, devices: unknown) {
    const name = `${node}-c`;
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaim",
        metadata: { name },
        spec: { devices },
      },
    });
    await createPinnedPod(client, { namespace, nodeName: node, name }, { resourceClaimName: name });
    return schedulingOutcome(client, namespace, name, name);
  }

  it(`agrees on ${CASES} generated cases (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const cases = fc.sample(generated, { seed: SEED, numRuns: CASES });
    const disagreements: string[] = [];
    let allocated = 0;
    for (let start = 0; start < cases.length; start += BATCH) {
      const batch = cases.slice(start, start + BATCH);
      const batchNodes = batch.map((_, i) => `${tag}-${start + i}`);
      await Promise.all(batch.map((entry, i) => publish(batchNodes[i]!, entry.devices)));
      // Informer events of one kind arrive in order: once the scheduler allocates a claim
      // on a slice published after the batch's, it has seen every slice of the batch.
      const canary = `${tag}-canary-${start}`;
      await publish(canary, [{ attributes: {}, qualified: true, taint: undefined }]);
      expect(
        await schedule(
          canary,
          claimDevices({
            requests: [{ selectors: [], count: 1, tolerations: [] }],
            constraint: undefined,
          }),
        ),
      ).toEqual({
        outcome: "allocated",
      });
      const outcomes = await Promise.all(
        batch.map((entry, i) => schedule(batchNodes[i]!, claimDevices(entry))),
      );
      const slices = await client.request<{ items: KubeObject[] }>({
        method: "GET",
        path: "/apis/resource.k8s.io/v1/resourceslices",
        query: { fieldSelector: `spec.driver=${driver}` },
      });
      const devices = devicesByNode(slices.items, driver);
      for (const [i, entry] of batch.entries()) {
        const spec = readClaimSpec({ devices: claimDevices(entry) });
        if (typeof spec === "string") throw new Error(spec);
        const explanation = explainClaim({
          driver,
          claim: { kind: "ResourceClaim", namespace, name: `${batchNodes[i]}-c` },
          spec,
          classes: new Map([[deviceClass, [`device.driver == "${driver}"`]]]),
          devices,
          holders: holdersByDevice([], driver),
        });
        const verdict = explanation.nodes.find((n) => n.name === batchNodes[i])!.verdict;
        const outcome = outcomes[i]!;
        if (outcome.outcome === "allocated") allocated++;
        const agrees =
          outcome.outcome === "allocated" ? verdict === "fits" : verdict === "does-not-fit";
        if (!agrees) {
          disagreements.push(
            `case ${start + i}: scheduler ${outcome.outcome}${"message" in outcome ? ` (${outcome.message})` : ""}, explain ${verdict}: ${JSON.stringify(entry)}`,
          );
        }
      }
    }
    expect(disagreements, `seed ${SEED} (replay: DRA_SRIOV_EXPLAIN_SEED=${SEED})`).toEqual([]);
    // Both outcomes were exercised, or the property says little (about a third of the
    // generated cases are allocated: none of 32 is a one-in-a-million run).
    expect(allocated, `seed ${SEED}`).toBeGreaterThan(0);
    expect(allocated, `seed ${SEED}`).toBeLessThan(cases.length);
  });
});
