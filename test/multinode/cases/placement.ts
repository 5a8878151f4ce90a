import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteNamespace, waitPodReady } from "../../e2e/support.js";
import {
  allocatedPools,
  apply,
  claimOf,
  clusterNodes,
  createNamespace,
  onPf,
  pod,
  preparedOn,
  profileOf,
  vfClaimTemplate,
  waitUnprepared,
} from "../support.js";

const NS = "mn-placement";

/** A claim that only one node's VFs satisfy (a PF only that node has) lands on that node. */
describe("claims only one node can satisfy", () => {
  beforeAll(async () => {
    await createNamespace(NS);
  });
  afterAll(async () => {
    await deleteNamespace(NS);
  });

  it("land each on the node whose PF they ask for, prepared there alone", async () => {
    const nodes = clusterNodes();
    // The second PF of each node's profile: no other node has a PF of that name.
    await apply(
      nodes.flatMap((node, i) => [
        vfClaimTemplate(NS, `only-${i}`, onPf(profileOf(node).pfs[1]!.netdev)),
        pod(NS, `only-${i}`, `only-${i}`),
      ]),
    );
    const uids: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const ready = await waitPodReady(NS, `only-${i}`);
      expect(ready.spec?.nodeName, `pod only-${i}`).toBe(node.name);
      const claim = await claimOf(NS, `only-${i}`);
      expect(allocatedPools(claim)).toEqual([node.name]);
      const uid = claim.metadata!.uid!;
      uids.push(uid);
      for (const other of nodes)
        expect(preparedOn(other).includes(uid), other.name).toBe(other === node);
    }
    await deleteNamespace(NS);
    await waitUnprepared(uids);
  });
});
