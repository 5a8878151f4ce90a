/**
 * SriovResourceFilter status controller benchmark.
 *
 * Part 1, pure: one status pass (slices → devices per node, then every filter's status)
 * for 100 filters over 100, 1,000 and 5,000 Nodes publishing 16 VFs each, timed over
 * repeated runs: a curve (bench/results/controller-pass.*).
 * Part 2, end to end, only with a kubeconfig (--kubeconfig, $KUBECONFIG or
 * $DRA_SRIOV_TEST_KUBECONFIG; e.g. from `hack/control-plane.sh up`): a real controller over
 * 20 filters and 50 Nodes on that API server: cold start until every status is written,
 * and spec change until its status shows the new generation.
 *
 * Run: tsc -p tsconfig.build.json && node dist/bench/controller.js [--kubeconfig PATH]
 * Prints medians; asserts nothing about time.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino } from "pino";
import type {
  SriovResourceFilter,
  SriovResourceFilterSpec,
} from "../api/v1alpha1/sriov-resource-filter.js";
import { API_VERSION } from "../api/v1alpha1/group.js";
import { FilterStatusController, type PassStats } from "../pkg/controller/controller.js";
import {
  desiredFilterStatuses,
  statusWrites,
  withTransitionTimes,
  type FilterResource,
  type FilterStatusInput,
} from "../pkg/controller/filter-status.js";
import { publishedDevicesByNode } from "../pkg/controller/slice-devices.js";
import { applyResourceFilters, type FilterObject } from "../pkg/filters/apply.js";
import { KubeClient, type KubeObject } from "../lib/kube/client.js";
import { renderSlices, type ResourceSlice } from "../pkg/slices/render.js";
import { ratio, writeCurve } from "./results.js";
import { curveSizes, forEachLimited } from "./support.js";
import { syntheticVfs } from "./synthetic-vfs.js";
import { median, ms, table } from "./stats.js";

const DRIVER = "sriovnetwork.openshift.io";
const FILTER_NAMESPACE = "dra-sriov-driver";
const RACKS = 20;
const RUNS = 11;
const ROUND_TRIPS = 7;
/** Every node publishes 16 VFs: two PFs with eight each. */
const VFS_PER_PF = 8;
/** The pure pass's curve: cluster sizes, and filters at every size. */
const NODE_COUNTS = curveSizes([100, 1_000, 5_000]);
const PURE_FILTERS = 100;

interface Row {
  step: string;
  medianMs: number;
  perFilterUs?: number;
  note?: string;
}

function nodeObject(name: string, index: number, extraLabels: Record<string, string> = {}) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: { "kubernetes.io/hostname": name, rack: `r${index % RACKS}`, ...extraLabels },
    },
  };
}

/**
 * Filter k selects one rack (so filters overlap five to a rack and lose VFs to each other)
 * and splits eth0 by VF ranges and the NVIDIA VFs by driver; every tenth has a backwards
 * range, so validation fails for it.
 */
function filterSpec(k: number, rackLabels: Record<string, string> = {}): SriovResourceFilterSpec {
  const first = (k % 4) * 2;
  const range = k % 10 === 9 ? `${first + 3}-${first}` : `${first}-${first + 3}`;
  return {
    nodeSelector: { rack: `r${k % RACKS}`, ...rackLabels },
    configs: [
      { resourceName: `f${k}-eth0`, resourceFilters: [{ pfNames: [`eth0#${range}`] }] },
      {
        resourceName: `f${k}-mlx`,
        resourceFilters: [{ vendors: ["15b3"], drivers: ["mlx5_core"] }],
      },
    ],
  };
}

function filterObject(
  k: number,
  namespace: string,
  spec: SriovResourceFilterSpec,
): FilterResource & { spec: SriovResourceFilterSpec } {
  return {
    apiVersion: API_VERSION,
    kind: "SriovResourceFilter",
    metadata: { namespace, name: `filter-${String(k).padStart(3, "0")}`, generation: 1 },
    spec,
  };
}

/** What the cluster looks like: every node publishes what the filters leave it. */
function pureDataSet(nodeCount: number, filterCount: number) {
  const filters = Array.from({ length: filterCount }, (_, k) =>
    filterObject(k, FILTER_NAMESPACE, filterSpec(k)),
  );
  const applied: FilterObject[] = filters.map((filter) => ({
    metadata: { namespace: FILTER_NAMESPACE, name: filter.metadata!.name! },
    spec: filter.spec,
  }));
  const nodes: KubeObject[] = [];
  const slices: ResourceSlice[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const node = nodeObject(`node-${String(i).padStart(4, "0")}`, i);
    nodes.push(node);
    const published = applyResourceFilters({
      nodeLabels: node.metadata.labels,
      devices: syntheticVfs(i, VFS_PER_PF),
      filters: applied,
    }).devices;
    slices.push(
      ...renderSlices(published, {
        driverName: DRIVER,
        nodeName: node.metadata.name,
        generation: 1,
      }),
    );
  }
  // As the watch delivers them: parsed JSON.
  return { filters, nodes, slices: JSON.parse(JSON.stringify(slices)) as KubeObject[] };
}

function timeRuns(runs: number, work: () => void): number {
  work(); // warm-up: JIT, caches
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

interface PurePoint {
  nodes: number;
  filters: number;
  slices: number;
  /** Medians, ms. */
  reconstructMs: number;
  desiredMs: number;
  firstPassMs: number;
  steadyPassMs: number;
  steadyWrites: number;
}

function benchPure(nodeCount: number, filterCount: number): PurePoint {
  const data = pureDataSet(nodeCount, filterCount);
  const devices = publishedDevicesByNode(data.slices, DRIVER);
  const input: FilterStatusInput = {
    filters: data.filters,
    nodes: data.nodes,
    devicesByNode: devices.byNode,
  };
  // Steady state: every filter already carries the status the pass computes.
  const now = new Date();
  const settled: FilterStatusInput = {
    ...input,
    filters: desiredFilterStatuses(input).map((desired, k) => ({
      ...data.filters[k]!,
      status: withTransitionTimes(desired, undefined, now),
    })),
  };
  const reconstructMs = timeRuns(RUNS, () => publishedDevicesByNode(data.slices, DRIVER));
  const desiredMs = timeRuns(RUNS, () => desiredFilterStatuses(input));
  const firstPassMs = timeRuns(RUNS, () => {
    statusWrites(
      { ...input, devicesByNode: publishedDevicesByNode(data.slices, DRIVER).byNode },
      now,
    );
  });
  let steadyWrites = -1;
  const steadyPassMs = timeRuns(RUNS, () => {
    const published = publishedDevicesByNode(data.slices, DRIVER);
    steadyWrites = statusWrites({ ...settled, devicesByNode: published.byNode }, now).length;
  });
  return {
    nodes: nodeCount,
    filters: filterCount,
    slices: data.slices.length,
    reconstructMs,
    desiredMs,
    firstPassMs,
    steadyPassMs,
    steadyWrites,
  };
}

/** The pure pass over 100 filters and 100 to 5,000 nodes × 16 VFs, as a curve. */
function writePassCurve(points: readonly PurePoint[]): void {
  const first = points[0]!;
  writeCurve({
    name: "controller-pass",
    title: `Filter status controller: one pass, ${first.filters} filters`,
    xLabel: "nodes (16 VFs each)",
    yLabel: "median ms per pass",
    logX: true,
    logY: true,
    series: [
      { label: "pass, nothing stored yet", points: points.map((p) => [p.nodes, p.firstPassMs]) },
      { label: "pass, steady state", points: points.map((p) => [p.nodes, p.steadyPassMs]) },
      { label: "of which slices → devices", points: points.map((p) => [p.nodes, p.reconstructMs]) },
    ],
    table: table(
      [
        "nodes",
        "slices",
        "slices → devices ms",
        "desired statuses ms",
        "pass, nothing stored ms",
        "pass, steady ms",
        "steady writes",
        "steady µs per node",
        `steady vs ${first.nodes} nodes`,
      ],
      points.map((p) => [
        p.nodes,
        p.slices,
        ms(p.reconstructMs),
        ms(p.desiredMs),
        ms(p.firstPassMs),
        ms(p.steadyPassMs),
        p.steadyWrites,
        ((p.steadyPassMs * 1000) / p.nodes).toFixed(0),
        ratio(first.steadyPassMs, p.steadyPassMs),
      ]),
    ),
    note:
      `Pure code (no API server): medians of ${RUNS} runs after a warm-up. Filter k selects one ` +
      `of ${RACKS} racks, so each filter's matched nodes grow with the cluster.`,
  });
}

async function benchEndToEnd(
  kubeconfig: string,
  nodeCount: number,
  filterCount: number,
): Promise<Row[]> {
  const client = KubeClient.load(kubeconfig);
  const run = `bench-${Math.random().toString(36).slice(2, 8)}`;
  const driverName = `${run}.sriov.example.com`;
  const runLabels = { "dra-sriov-bench/run": run };
  const filtersPath = `/apis/${API_VERSION}/namespaces/${run}/sriovresourcefilters`;
  const logger = pino({ level: process.env["LOG_LEVEL"] ?? "warn" }, process.stderr);
  const passes: PassStats[] = [];
  const controller = new FilterStatusController(client, {
    namespace: run,
    driverName,
    identity: "bench",
    logger,
    leaderElection: false,
    onPass: (pass) => passes.push(pass),
  });
  try {
    const setupStarted = performance.now();
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name: run } },
    });
    const nodes = Array.from({ length: nodeCount }, (_, i) =>
      nodeObject(`${run}-node-${i}`, i, runLabels),
    );
    await forEachLimited(nodes, 16, (node) =>
      client.request({ method: "POST", path: "/api/v1/nodes", body: node }),
    );
    const slices = nodes.flatMap((node, i) =>
      renderSlices(syntheticVfs(i, VFS_PER_PF), {
        driverName,
        nodeName: node.metadata.name,
        generation: 1,
      }),
    );
    await forEachLimited(slices, 16, (slice) =>
      client.request({
        method: "POST",
        path: "/apis/resource.k8s.io/v1/resourceslices",
        body: slice,
      }),
    );
    const filters = Array.from({ length: filterCount }, (_, k) =>
      filterObject(k, run, filterSpec(k, runLabels)),
    );
    await forEachLimited(filters, 16, (filter) =>
      client.request({ method: "POST", path: filtersPath, body: filter }),
    );
    const setupMs = performance.now() - setupStarted;

    const started = performance.now();
    controller.start();
    while (controller.stats.statusWrites < filterCount) await sleep(5);
    const coldMs = performance.now() - started;
    const firstPass = passes[0]!;

    // Alternate the config order of one filter: a new generation every time.
    const name = filters[0]!.metadata!.name!;
    const original = filterSpec(0, runLabels);
    const reordered = { ...original, configs: [...original.configs].reverse() };
    const roundTrips: number[] = [];
    const passesBefore = passes.length;
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const changed = performance.now();
      const patched = await client.request<FilterResource>({
        method: "PATCH",
        path: `${filtersPath}/${name}`,
        contentType: "application/merge-patch+json",
        body: { spec: i % 2 === 0 ? reordered : original },
      });
      const generation = patched.metadata?.generation;
      for (;;) {
        const current = await client.request<SriovResourceFilter>({
          method: "GET",
          path: `${filtersPath}/${name}`,
        });
        if (current.status?.conditions?.[0]?.observedGeneration === generation) break;
        await sleep(5);
      }
      roundTrips.push(performance.now() - changed);
    }
    const changePasses = passes.slice(passesBefore).filter((pass) => pass.writes > 0);
    const scale = `${filterCount} filters, ${nodeCount} nodes × 16 VFs`;
    return [
      { step: "e2e setup (creating objects, not timed code)", medianMs: setupMs, note: scale },
      {
        step: "e2e cold start → all statuses written",
        medianMs: coldMs,
        perFilterUs: (coldMs * 1000) / filterCount,
        note: "one run: start, list ×3, debounce, pass",
      },
      {
        step: "e2e first pass: compute",
        medianMs: firstPass.computeMs,
        perFilterUs: (firstPass.computeMs * 1000) / filterCount,
      },
      {
        step: "e2e first pass: write",
        medianMs: firstPass.writeMs,
        perFilterUs: (firstPass.writeMs * 1000) / filterCount,
        note: `${firstPass.writes} PUTs, 8 in flight`,
      },
      {
        step: "e2e spec change: its pass",
        medianMs: median(changePasses.map((pass) => pass.computeMs + pass.writeMs)),
        perFilterUs: median(changePasses.map((pass) => pass.computeMs * 1000)) / filterCount,
        note: `${ROUND_TRIPS} runs; per filter: compute only; 1 PUT each`,
      },
      {
        step: "e2e spec change → status updated",
        medianMs: median(roundTrips),
        note: `${ROUND_TRIPS} runs; watch, 150 ms debounce, pass, PUT, poll`,
      },
    ];
  } finally {
    await controller.stop();
    await cleanUp(client, run, driverName, runLabels);
  }
}

async function cleanUp(
  client: KubeClient,
  run: string,
  driverName: string,
  runLabels: Record<string, string>,
): Promise<void> {
  const selector = Object.entries(runLabels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
  await Promise.allSettled([
    client.request({
      method: "DELETE",
      path: "/apis/resource.k8s.io/v1/resourceslices",
      query: { fieldSelector: `spec.driver=${driverName}` },
    }),
    client.request({ method: "DELETE", path: "/api/v1/nodes", query: { labelSelector: selector } }),
    client.request({ method: "DELETE", path: `/api/v1/namespaces/${run}` }),
  ]);
}

/** `--kubeconfig` when run directly; bench/run.ts relies on the environment. */
export async function main(kubeconfig = kubeconfigFromEnv()): Promise<void> {
  writePassCurve(NODE_COUNTS.map((nodes) => benchPure(nodes, PURE_FILTERS)));
  if (!kubeconfig) {
    console.log(
      "\nend-to-end part skipped: pass --kubeconfig (or set KUBECONFIG) to a test control " +
        "plane, e.g. from `hack/control-plane.sh up`",
    );
    return;
  }
  const rows = await benchEndToEnd(kubeconfig, 50, 20);
  console.log(
    `\nSriovResourceFilter status controller end to end, medians of ${RUNS} runs unless noted\n`,
  );
  console.log(
    table(
      ["step", "median ms", "per filter µs", "note"],
      rows.map((row) => [
        row.step,
        ms(row.medianMs),
        row.perFilterUs === undefined ? "" : row.perFilterUs.toFixed(0),
        row.note ?? "",
      ]),
    ),
  );
}

function kubeconfigFromEnv(): string | undefined {
  return process.env["DRA_SRIOV_TEST_KUBECONFIG"] ?? process.env["KUBECONFIG"];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { kubeconfig: { type: "string" } } });
  await main(values.kubeconfig ?? kubeconfigFromEnv());
}
