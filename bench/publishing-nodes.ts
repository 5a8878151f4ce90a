/**
 * Publishing from many nodes against one API server: 1, 100 and 1,000 simulated nodes,
 * each a real NodeDevicePublisher (watches, discovery, slice writes) in this process over
 * an emulated X710 host (16 VFs, 15 published), and one SriovResourceFilter selecting all
 * of them. Measures the first publish (start → every node's slices readable) and a filter
 * change that renames one PF's VFs on every node (→ every pool rewritten): API writes and
 * wall time, as a curve (bench/results/publishing-nodes.*).
 *
 * The nodes read one emulated tree: discovery only reads it, and one tree per node would
 * cost 1,000 trees of disk for nothing the API server sees. devlink is not asked (a node
 * answers for itself; 1,000 process spawns here would measure this machine, not the API).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { API_VERSION } from "../api/v1alpha1/group.js";
import { buildEmulatedHost, builtinProfiles } from "../pkg/emulator/index.js";
import { HostPaths } from "../pkg/host/paths.js";
import { KubeClient, type KubeList } from "../lib/kube/client.js";
import { NodeDevicePublisher } from "../pkg/publishing/node-publisher.js";
import { withControlPlane } from "./control-plane.js";
import { ratio, writeCurve } from "./results.js";
import { median, ms, table } from "./stats.js";
import { createNamespace, curveSizes, forEachLimited } from "./support.js";

/** Simulated nodes, and runs at that size. */
const SIZES = curveSizes([
  { nodes: 1, runs: 5 },
  { nodes: 100, runs: 3 },
  { nodes: 1_000, runs: 3 },
]);
const FIRST_PF = "0000:3b:00.0";
/** How many objects are created or deleted at once, and how often the API is polled. */
const IN_FLIGHT = 32;
const POLL_MS = 200;

interface Slice {
  spec: {
    nodeName: string;
    pool: { generation: number };
    devices?: { attributes: Record<string, { string?: string }> }[];
  };
}

interface Run {
  publishMs: number;
  publishWrites: number;
  filterMs: number;
  filterWrites: number;
  slices: number;
  devicesPerNode: number;
}

async function until(probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) await sleep(POLL_MS);
}

async function measureOnce(
  client: KubeClient,
  root: string,
  namespace: string,
  nodeCount: number,
  index: number,
): Promise<Run> {
  const run = `${namespace}-${nodeCount}-${index}`;
  const driverName = `${run}.sriov.example.com`;
  const runLabel = { "dra-sriov-bench/run": run };
  const filtersPath = `/apis/${API_VERSION}/namespaces/${namespace}/sriovresourcefilters`;
  const resourceNameKey = `${driverName}/resourceName`;
  const filter = (configs: unknown[]) => ({
    apiVersion: API_VERSION,
    kind: "SriovResourceFilter",
    metadata: { name: run },
    spec: { nodeSelector: runLabel, configs },
  });
  const rest = { resourceName: "rest", resourceFilters: [{}] };
  const nodeNames = Array.from({ length: nodeCount }, (_, i) => `${run}-node-${i}`);
  await forEachLimited(nodeNames, IN_FLIGHT, (name) =>
    client.request({
      method: "POST",
      path: "/api/v1/nodes",
      body: {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name, labels: { "kubernetes.io/hostname": name, ...runLabel } },
      },
    }),
  );
  await client.request({ method: "POST", path: filtersPath, body: filter([rest]) });
  const logger = pino({ level: "silent" });
  const publishers = nodeNames.map(
    (nodeName) =>
      new NodeDevicePublisher(client, {
        paths: new HostPaths({ root }),
        driverName,
        nodeName,
        filterNamespace: namespace,
        publishHostUsedVfs: false,
        rediscoveryIntervalMs: 3_600_000,
        readEswitch: () => Promise.resolve({ kind: "unavailable", reason: "simulated node" }),
        logger,
      }),
  );
  const slices = async () =>
    (
      await client.request<KubeList<Slice>>({
        method: "GET",
        path: "/apis/resource.k8s.io/v1/resourceslices",
        query: { fieldSelector: `spec.driver=${driverName}` },
      })
    ).items;
  /** Every node's devices, once every node shows at least one slice. */
  const devicesByNode = (items: readonly Slice[]) => {
    const byNode = new Map<string, string[]>();
    for (const slice of items) {
      const names = byNode.get(slice.spec.nodeName) ?? [];
      for (const device of slice.spec.devices ?? []) {
        names.push(device.attributes[resourceNameKey]?.string ?? "");
      }
      byNode.set(slice.spec.nodeName, names);
    }
    return byNode;
  };
  const writes = () => publishers.reduce((sum, p) => sum + p.slices.stats.writes, 0);
  try {
    const started = performance.now();
    for (const publisher of publishers) publisher.start();
    let devicesPerNode = 0;
    await until(async () => {
      const byNode = devicesByNode(await slices());
      if (byNode.size < nodeCount) return false;
      const counts = [...byNode.values()].map((names) => names.filter((n) => n === "rest").length);
      devicesPerNode = counts[0]!;
      return devicesPerNode > 0 && counts.every((count) => count === devicesPerNode);
    });
    const publishMs = performance.now() - started;
    const publishWrites = writes();

    const before = (await slices())[0]!.spec.pool.generation;
    const filterStarted = performance.now();
    await client.request({
      method: "PATCH",
      path: `${filtersPath}/${run}`,
      contentType: "application/merge-patch+json",
      body: {
        spec: {
          configs: [
            { resourceName: "first_pf", resourceFilters: [{ rootDevices: [FIRST_PF] }] },
            rest,
          ],
        },
      },
    });
    // Done when every node shows renamed VFs and every slice a new generation.
    let renamedPerNode = 0;
    await until(async () => {
      const items = await slices();
      if (items.some((slice) => slice.spec.pool.generation === before)) return false;
      const counts = [...devicesByNode(items).values()].map(
        (names) => names.filter((n) => n === "first_pf").length,
      );
      renamedPerNode = counts[0] ?? 0;
      return (
        counts.length === nodeCount &&
        renamedPerNode > 0 &&
        counts.every((count) => count === renamedPerNode)
      );
    });
    const filterMs = performance.now() - filterStarted;
    return {
      publishMs,
      publishWrites,
      filterMs,
      filterWrites: writes() - publishWrites,
      slices: (await slices()).length,
      devicesPerNode,
    };
  } finally {
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    await Promise.allSettled([
      client.request({ method: "DELETE", path: `${filtersPath}/${run}` }),
      client.request({
        method: "DELETE",
        path: "/apis/resource.k8s.io/v1/resourceslices",
        query: { fieldSelector: `spec.driver=${driverName}` },
      }),
      client.request({
        method: "DELETE",
        path: "/api/v1/nodes",
        query: { labelSelector: `dra-sriov-bench/run=${run}` },
      }),
    ]);
  }
}

interface Point {
  nodes: number;
  runs: Run[];
}

function writePublishingCurve(points: readonly Point[]): void {
  const med = (p: Point, pick: (run: Run) => number) => median(p.runs.map(pick));
  const first = points[0]!;
  writeCurve({
    name: "publishing-nodes",
    title: "Publishing from N nodes to one API server",
    xLabel: "simulated nodes (X710 host, 15 VFs each)",
    yLabel: "median wall ms until all are readable",
    logX: true,
    logY: true,
    series: [
      { label: "first publish", points: points.map((p) => [p.nodes, med(p, (r) => r.publishMs)]) },
      {
        label: "filter change on one PF, every pool rewritten",
        points: points.map((p) => [p.nodes, med(p, (r) => r.filterMs)]),
      },
    ],
    table: table(
      [
        "nodes",
        "slices",
        "first publish: writes",
        "ms",
        "writes per node",
        "ms vs 1 node",
        "filter change: writes",
        "ms",
        "writes per node",
        "ms vs 1 node",
      ],
      points.map((p) => {
        const publishWrites = med(p, (r) => r.publishWrites);
        const filterWrites = med(p, (r) => r.filterWrites);
        return [
          p.nodes,
          med(p, (r) => r.slices),
          publishWrites,
          ms(med(p, (r) => r.publishMs)),
          (publishWrites / p.nodes).toFixed(1),
          ratio(
            med(first, (r) => r.publishMs),
            med(p, (r) => r.publishMs),
          ),
          filterWrites,
          ms(med(p, (r) => r.filterMs)),
          (filterWrites / p.nodes).toFixed(1),
          ratio(
            med(first, (r) => r.filterMs),
            med(p, (r) => r.filterMs),
          ),
        ];
      }),
    ),
    note:
      `Medians of ${SIZES.map((s) => s.runs).join("/")} runs. Every node is a NodeDevicePublisher ` +
      "in one Node.js process (its own list+watch of its slices, its Node, the filters, " +
      `SriovResourcePolicies and DeviceAttributes), all ` +
      `sharing one client; "readable" is polled every ${POLL_MS} ms from the API server.`,
  });
}

export async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-publishing-nodes-"));
  try {
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    await withControlPlane(async (kubeconfig) => {
      const client = KubeClient.load(kubeconfig);
      const namespace = `bench-nodes-${process.pid}`;
      await createNamespace(client, namespace);
      try {
        const points: Point[] = [];
        for (const { nodes, runs } of SIZES) {
          const measured: Run[] = [];
          for (let i = 0; i < runs; i++) {
            measured.push(await measureOnce(client, root, namespace, nodes, i));
          }
          points.push({ nodes, runs: measured });
        }
        writePublishingCurve(points);
      } finally {
        await client
          .request({ method: "DELETE", path: `/api/v1/namespaces/${namespace}` })
          .catch(() => undefined);
      }
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
