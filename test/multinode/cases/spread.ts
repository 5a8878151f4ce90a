import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterEnv, deleteNamespace } from "../../e2e/support.js";
import {
  allocatedPools,
  apply,
  claimOf,
  clusterNodes,
  createNamespace,
  deployment,
  preparedOn,
  vfClaimTemplate,
  waitPodsReady,
  waitUnprepared,
} from "../support.js";

const NS = "mn-spread";

/** A Deployment whose pods each claim a VF spreads over the nodes, each claim on its pod's node. */
describe("a Deployment with VF claims", () => {
  beforeAll(async () => {
    await createNamespace(NS);
  });
  afterAll(async () => {
    await deleteNamespace(NS);
  });

  it("spreads over the nodes, each pod's VF from its own node", async () => {
    const nodes = clusterNodes();
    const driver = clusterEnv().driverName;
    await apply([
      vfClaimTemplate(NS, "any-vf", `device.driver == "${driver}"`),
      deployment(NS, "spread", "any-vf", nodes.length, { whenUnsatisfiable: "DoNotSchedule" }),
    ]);
    const pods = await waitPodsReady(NS, "app=spread", nodes.length);
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual(nodes.map((n) => n.name).sort());
    const uids: string[] = [];
    for (const p of pods) {
      const claim = await claimOf(NS, p.metadata!.name!);
      expect(allocatedPools(claim)).toEqual([p.spec!.nodeName]);
      const node = nodes.find((n) => n.name === p.spec!.nodeName)!;
      expect(preparedOn(node)).toContain(claim.metadata!.uid);
      uids.push(claim.metadata!.uid!);
    }
    await deleteNamespace(NS);
    await waitUnprepared(uids);
  });
});
