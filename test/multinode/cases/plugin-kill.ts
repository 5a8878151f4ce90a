import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import {
  apiClient,
  clusterEnv,
  deleteNamespace,
  kubectl,
  waitFor,
  waitPodReady,
} from "../../e2e/support.js";
import {
  apply,
  claimOf,
  clusterNodes,
  createNamespace,
  deployment,
  isReady,
  onPf,
  pod,
  preparedOn,
  profileOf,
  vfClaimTemplate,
  waitPodsReady,
  waitUnprepared,
} from "../support.js";

const NS = "mn-plugin-kill";

interface PluginPod extends KubeObject {
  spec?: { nodeName?: string };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: { restartCount?: number }[];
  };
}

interface Slice extends KubeObject {
  spec: { nodeName?: string; devices?: { name: string }[] };
}

async function pluginPods(): Promise<PluginPod[]> {
  const env = clusterEnv();
  const list = await apiClient().request<{ items: PluginPod[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
    query: {
      labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
    },
  });
  return list.items;
}

/** Slice UIDs and device names per node. */
async function slicesByNode(): Promise<Map<string, string>> {
  const env = clusterEnv();
  const list = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName}` },
  });
  const byNode = new Map<string, string[]>();
  for (const slice of list.items) {
    const entries = byNode.get(slice.spec.nodeName ?? "") ?? [];
    entries.push(
      `${slice.metadata!.uid}:${(slice.spec.devices ?? []).map((d) => d.name).join(",")}`,
    );
    byNode.set(slice.spec.nodeName ?? "", entries);
  }
  return new Map([...byNode].map(([node, entries]) => [node, entries.sort().join(" ")]));
}

/** A node plugin killed on one node leaves the other nodes' plugins, slices and pods alone. */
describe("a node plugin killed on one node", () => {
  beforeAll(async () => {
    await createNamespace(NS);
  });
  afterAll(async () => {
    await deleteNamespace(NS);
  });

  it("does not disturb the others: their plugins, slices and pods stay, and claims keep preparing there", async () => {
    const nodes = clusterNodes();
    const [first, victim] = nodes;
    const driver = clusterEnv().driverName;
    await apply([
      vfClaimTemplate(NS, "any-vf", `device.driver == "${driver}"`),
      deployment(NS, "held", "any-vf", nodes.length, { whenUnsatisfiable: "DoNotSchedule" }),
      vfClaimTemplate(NS, "on-first", onPf(profileOf(first!).pfs[0]!.netdev)),
    ]);
    const held = await waitPodsReady(NS, "app=held", nodes.length);
    const claims = new Map<string, string>();
    for (const p of held)
      claims.set(p.spec!.nodeName!, (await claimOf(NS, p.metadata!.name!)).metadata!.uid!);

    const before = await pluginPods();
    const slicesBefore = await slicesByNode();
    const victimPod = before.find((p) => p.spec?.nodeName === victim!.name)!;
    await kubectl([
      "-n",
      clusterEnv().driverNamespace,
      "delete",
      "pod",
      victimPod.metadata!.name!,
      "--force",
      "--grace-period=0",
      "--wait=false",
    ]);

    // While it is away: a new claim on another node is prepared and its pod starts.
    await apply([pod(NS, "while-away", "on-first")]);
    const started = await waitPodReady(NS, "while-away");
    expect(started.spec?.nodeName).toBe(first!.name);

    // The victim's node gets a new plugin, which keeps what it had prepared.
    await waitFor(`a new Ready node plugin on ${victim!.name}`, async () => {
      const mine = (await pluginPods()).filter((p) => p.spec?.nodeName === victim!.name);
      return mine.length === 1 &&
        mine[0]!.metadata!.uid !== victimPod.metadata!.uid &&
        isReady(mine[0]!)
        ? true
        : undefined;
    });
    expect(preparedOn(victim!)).toContain(claims.get(victim!.name));

    // The others never noticed: same pods, no restarts, same slices, pods still Ready.
    const after = await pluginPods();
    for (const node of nodes.filter((n) => n !== victim)) {
      const was = before.find((p) => p.spec?.nodeName === node.name)!;
      const is = after.filter((p) => p.spec?.nodeName === node.name);
      expect(
        is.map((p) => p.metadata!.uid),
        node.name,
      ).toEqual([was.metadata!.uid]);
      expect(is[0]!.status?.containerStatuses?.[0]?.restartCount).toBe(
        was.status?.containerStatuses?.[0]?.restartCount,
      );
      expect((await slicesByNode()).get(node.name), `slices of ${node.name}`).toBe(
        slicesBefore.get(node.name),
      );
      expect(preparedOn(node)).toContain(claims.get(node.name));
    }
    const stillHeld = await waitPodsReady(NS, "app=held", nodes.length);
    expect(stillHeld.map((p) => p.metadata!.uid).sort()).toEqual(
      held.map((p) => p.metadata!.uid).sort(),
    );

    const uids = [...claims.values(), (await claimOf(NS, "while-away")).metadata!.uid!];
    await deleteNamespace(NS);
    await waitUnprepared(uids);
  });
});
