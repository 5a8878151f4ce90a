import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterEnv, deleteNamespace, kubectl, waitFor } from "../../e2e/support.js";
import {
  apply,
  cdiSpecsOn,
  claimOf,
  clusterNodes,
  createNamespace,
  deployment,
  podsIn,
  preparedOn,
  vfClaimTemplate,
  waitPodsReady,
  waitUnprepared,
} from "../support.js";

const NS = "mn-drain";

/** Draining a node (cordon, evict) unprepares everything its pods held there. */
describe("draining a node", () => {
  const drained = clusterNodes().at(-1)!;

  beforeAll(async () => {
    await createNamespace(NS);
  });
  afterAll(async () => {
    await kubectl(["uncordon", drained.name]);
    await deleteNamespace(NS);
  });

  it("unprepares every claim of the pods evicted there, and they run again elsewhere", async () => {
    const nodes = clusterNodes();
    const driver = clusterEnv().driverName;
    const specsBefore = cdiSpecsOn(drained);
    // Spread over the schedulable nodes only (a cordoned node's taint is honoured), so the
    // evicted pod has somewhere to go.
    await apply([
      vfClaimTemplate(NS, "any-vf", `device.driver == "${driver}"`),
      deployment(NS, "drained", "any-vf", nodes.length, {
        whenUnsatisfiable: "DoNotSchedule",
        nodeTaintsPolicy: "Honor",
      }),
    ]);
    const pods = await waitPodsReady(NS, "app=drained", nodes.length);
    const there = pods.find((p) => p.spec?.nodeName === drained.name);
    expect(there, `a pod on ${drained.name}`).toBeDefined();
    const claim = await claimOf(NS, there!.metadata!.name!);
    const uid = claim.metadata!.uid!;
    expect(preparedOn(drained)).toContain(uid);
    expect(cdiSpecsOn(drained).length).toBeGreaterThan(specsBefore.length);

    await kubectl(["cordon", drained.name]);
    await kubectl([
      "drain",
      drained.name,
      "--ignore-daemonsets",
      "--pod-selector=app=drained",
      "--timeout=120s",
    ]);

    await waitUnprepared([uid]);
    await waitFor(`the CDI specs of ${drained.name} to be as before`, () =>
      cdiSpecsOn(drained).length === specsBefore.length ? true : undefined,
    );
    const after = await waitPodsReady(NS, "app=drained", nodes.length);
    expect(after.filter((p) => p.spec?.nodeName === drained.name)).toEqual([]);
    // Nothing of the namespace is left on the drained node, prepared or not.
    expect((await podsIn(NS)).filter((p) => p.spec?.nodeName === drained.name)).toEqual([]);
    expect(preparedOn(drained)).not.toContain(uid);
  });
});
