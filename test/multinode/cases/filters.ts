import { afterAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import { apiClient, clusterEnv, kubectl, waitFor } from "../../e2e/support.js";
import { apply, attribute, clusterNodes, profileOf, publishedDevices } from "../support.js";

interface Filter extends KubeObject {
  status?: { matchedNodes?: number; conditions?: { type: string; status: string }[] };
}

const LABEL = "dra-sriov.test/mn-filters";
const ONE = "mn-filter-one";
const PAIR = "mn-filter-pair";

/**
 * Filters whose nodeSelector picks one node and two nodes: each node publishes its own
 * pool (the VFs of its first PF), the others' filters leave it alone, and the controller
 * counts the nodes each filter selects.
 */
describe("filters whose nodeSelector picks some of the nodes", () => {
  const [first, second, third] = clusterNodes();

  afterAll(async () => {
    const env = clusterEnv();
    await kubectl([
      "-n",
      env.driverNamespace,
      "delete",
      "sriovresourcefilter",
      ONE,
      PAIR,
      "--ignore-not-found",
      "--wait",
    ]);
    for (const node of [second!, third!]) await kubectl(["label", "node", node.name, `${LABEL}-`]);
    // Without filters every node publishes all its VFs again, without a resourceName.
    for (const node of clusterNodes()) {
      await waitFor(`node ${node.name} to publish all its VFs again`, async () => {
        const devices = await publishedDevices(node.name);
        const all = profileOf(node).pfs.reduce((n, pf) => n + pf.numVfs - pf.hostUsedVfs.length, 0);
        return devices.length === all &&
          devices.every((d) => attribute(d, "resourceName") === undefined)
          ? true
          : undefined;
      });
    }
  });

  it("publishes each node's pool from the filter that selects it, and counts matchedNodes", async () => {
    const env = clusterEnv();
    for (const node of [second!, third!]) {
      await kubectl(["label", "node", node.name, `${LABEL}=pair`, "--overwrite"]);
    }
    const filter = (
      name: string,
      nodeSelector: Record<string, string>,
      resourceName: string,
      pfNames: string[],
    ) => ({
      apiVersion: `${env.driverName}/v1alpha1`,
      kind: "SriovResourceFilter",
      metadata: { name, namespace: env.driverNamespace },
      spec: { nodeSelector, configs: [{ resourceName, resourceFilters: [{ pfNames }] }] },
    });
    await apply([
      filter(ONE, { "kubernetes.io/hostname": first!.name }, "mn_one", [
        profileOf(first!).pfs[0]!.netdev,
      ]),
      filter(
        PAIR,
        { [LABEL]: "pair" },
        "mn_pair",
        [second!, third!].map((node) => profileOf(node).pfs[0]!.netdev),
      ),
    ]);

    for (const [node, pool] of [
      [first!, "mn_one"],
      [second!, "mn_pair"],
      [third!, "mn_pair"],
    ] as const) {
      const pf = profileOf(node).pfs[0]!;
      const devices = await waitFor(`node ${node.name} to publish pool ${pool}`, async () => {
        const published = await publishedDevices(node.name);
        return published.length > 0 && published.every((d) => attribute(d, "resourceName") === pool)
          ? published
          : undefined;
      });
      // Only the first PF's VFs, as the filter asks; none of the other PF.
      expect(devices.map((d) => attribute(d, "PFName"))).toEqual(devices.map(() => pf.netdev));
      expect(devices).toHaveLength(pf.numVfs - pf.hostUsedVfs.length);
    }

    for (const [name, nodes] of [
      [ONE, 1],
      [PAIR, 2],
    ] as const) {
      const status = await waitFor(`filter ${name}'s status to count ${nodes} nodes`, async () => {
        const read = await apiClient().request<Filter>({
          method: "GET",
          path: `/apis/${env.driverName}/v1alpha1/namespaces/${env.driverNamespace}/sriovresourcefilters/${name}`,
        });
        return read.status?.matchedNodes === nodes ? read.status : undefined;
      });
      expect(status.conditions?.find((c) => c.type === "Accepted")?.status).toBe("True");
      expect(status.conditions?.find((c) => c.type === "Conflicting")?.status).toBe("False");
    }
  });
});
