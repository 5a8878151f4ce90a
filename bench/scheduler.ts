/**
 * The real kube-scheduler allocating our ResourceSlices: 1,000 simulated nodes with 64 VFs
 * each (Node objects and slices written straight to the API server; no kubelets), then
 * pods with one claim each, held by a scheduling gate until all exist and released at
 * once. Measures claims allocated per second from the release until every claim shows an
 * allocation: single-VF claims, and `count: 2` with `matchAttribute` on the PF's PCI
 * address (both VFs from one PF). Prints a table and writes bench/results/scheduler.md.
 *
 * A benchmark, not a test: nothing here asserts a time.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { KubeClient, type KubeList } from "../lib/kube/client.js";
import { renderSlices } from "../pkg/slices/render.js";
import { withControlPlane } from "./control-plane.js";
import { RESULTS_DIR } from "./results.js";
import { median, ms, table } from "./stats.js";
import { DRIVER, QUICK, createNamespace, forEachLimited } from "./support.js";
import { syntheticVfs } from "./synthetic-vfs.js";

const NODES = QUICK ? 100 : 1_000;
/** Two PFs of 32 VFs: 64 per node. */
const VFS_PER_PF = 32;
const RUNS = 3;
const IN_FLIGHT = 32;
const POLL_MS = 250;
const GATE = "dra-sriov.bench/hold";

interface Scenario {
  label: string;
  claims: number;
  vfsPerClaim: number;
  /** The claim's device request (DeviceRequest.exactly) and constraints. */
  exactly: Record<string, unknown>;
  constraints: Record<string, unknown>[];
}

interface PodStatus {
  status?: { conditions?: { type: string; reason?: string }[] };
}

interface ClaimStatus {
  status?: { allocation?: unknown };
}

/** Ready nodes with room for pods, as a kubelet would report them (status is kept on create). */
function nodeObject(name: string, runLabel: Record<string, string>) {
  const capacity = { cpu: "64", memory: "256Gi", pods: "110" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...runLabel } },
    status: {
      capacity,
      allocatable: capacity,
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "bench" }],
    },
  };
}

/** Creates the scenario's claims and gated pods, releases them, and times until all are allocated. */
async function measureOnce(
  client: KubeClient,
  namespace: string,
  scenario: Scenario,
  run: number,
): Promise<number> {
  const prefix = `r${run}`;
  const claimsPath = `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims`;
  const podsPath = `/api/v1/namespaces/${namespace}/pods`;
  const names = Array.from({ length: scenario.claims }, (_, i) => `${prefix}-${i}`);
  await forEachLimited(names, IN_FLIGHT, async (name) => {
    await client.request({
      method: "POST",
      path: claimsPath,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaim",
        metadata: { name, labels: { run: prefix } },
        spec: {
          devices: {
            requests: [{ name: "vf", exactly: scenario.exactly }],
            constraints: scenario.constraints,
          },
        },
      },
    });
    await client.request({
      method: "POST",
      path: podsPath,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, labels: { run: prefix } },
        spec: {
          schedulingGates: [{ name: GATE }],
          // The nodes have no kubelet: whatever the node lifecycle controller taints them with.
          tolerations: [{ operator: "Exists" }],
          containers: [
            {
              name: "app",
              image: "registry.invalid/never-pulled",
              resources: { claims: [{ name: "vf" }] },
            },
          ],
          resourceClaims: [{ name: "vf", resourceClaimName: name }],
        },
      },
    });
  });
  // The scheduler marks each gated pod (a status write); let those writes finish first so
  // they do not share its API budget with the allocations measured below.
  for (;;) {
    const pods = await client.request<KubeList<PodStatus>>({
      method: "GET",
      path: podsPath,
      query: { labelSelector: `run=${prefix}` },
    });
    const marked = pods.items.filter((pod) =>
      pod.status?.conditions?.some(
        (c) => c.type === "PodScheduled" && c.reason === "SchedulingGated",
      ),
    );
    if (marked.length === names.length) break;
    await sleep(POLL_MS);
  }
  const started = performance.now();
  await forEachLimited(names, IN_FLIGHT, (name) =>
    client.request({
      method: "PATCH",
      path: `${podsPath}/${name}`,
      contentType: "application/merge-patch+json",
      body: { spec: { schedulingGates: null } },
    }),
  );
  for (;;) {
    const claims = await client.request<KubeList<ClaimStatus>>({
      method: "GET",
      path: claimsPath,
      query: { labelSelector: `run=${prefix}` },
    });
    if (claims.items.filter((claim) => claim.status?.allocation).length === names.length) break;
    await sleep(POLL_MS);
  }
  const elapsedMs = performance.now() - started;
  // No kubelet will stop the pods: remove them at once, and their claims.
  for (const collection of [podsPath, claimsPath]) {
    await client.request({
      method: "DELETE",
      path: collection,
      query: { labelSelector: `run=${prefix}`, gracePeriodSeconds: "0" },
    });
  }
  return elapsedMs;
}

export async function main(): Promise<void> {
  await withControlPlane(async (kubeconfig) => {
    const client = KubeClient.load(kubeconfig);
    const run = `bench-sched-${process.pid}`;
    const runLabel = { "dra-sriov-bench/run": run };
    const deviceClass = run;
    const scenarios: Scenario[] = [
      {
        label: "1 VF per claim",
        claims: NODES,
        vfsPerClaim: 1,
        exactly: { deviceClassName: deviceClass },
        constraints: [],
      },
      {
        label: "2 VFs of one PF (count: 2, matchAttribute pfPciAddress)",
        claims: NODES / 2,
        vfsPerClaim: 2,
        exactly: { deviceClassName: deviceClass, allocationMode: "ExactCount", count: 2 },
        constraints: [{ requests: ["vf"], matchAttribute: `${DRIVER}/pfPciAddress` }],
      },
    ];
    const nodeNames = Array.from({ length: NODES }, (_, i) => `${run}-node-${i}`);
    try {
      const setupStarted = performance.now();
      await createNamespace(client, run);
      await client.request({
        method: "POST",
        path: "/apis/resource.k8s.io/v1/deviceclasses",
        body: {
          apiVersion: "resource.k8s.io/v1",
          kind: "DeviceClass",
          metadata: { name: deviceClass },
          spec: { selectors: [{ cel: { expression: `device.driver == "${DRIVER}"` } }] },
        },
      });
      await forEachLimited(nodeNames, IN_FLIGHT, (name) =>
        client.request({ method: "POST", path: "/api/v1/nodes", body: nodeObject(name, runLabel) }),
      );
      const slices = nodeNames.flatMap((nodeName, i) =>
        renderSlices(syntheticVfs(i, VFS_PER_PF), { driverName: DRIVER, nodeName, generation: 1 }),
      );
      await forEachLimited(slices, IN_FLIGHT, (slice) =>
        client.request({
          method: "POST",
          path: "/apis/resource.k8s.io/v1/resourceslices",
          body: { ...slice, metadata: { ...slice.metadata, labels: runLabel } },
        }),
      );
      console.log(
        `\nscheduler bench: ${NODES} nodes, ${slices.length} slices written in ${ms(performance.now() - setupStarted)} ms (setup, not measured)`,
      );
      const rows: (string | number)[][] = [];
      let attempt = 0;
      for (const scenario of scenarios) {
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          times.push(await measureOnce(client, run, scenario, attempt++));
        }
        const medianMs = median(times);
        rows.push([
          scenario.label,
          scenario.claims,
          scenario.claims * scenario.vfsPerClaim,
          ms(medianMs),
          ((scenario.claims * 1000) / medianMs).toFixed(0),
          ((scenario.claims * scenario.vfsPerClaim * 1000) / medianMs).toFixed(0),
        ]);
      }
      const markdown =
        `### kube-scheduler allocating from ${NODES.toLocaleString("en")} nodes × ${2 * VFS_PER_PF} VFs\n\n` +
        table(["claim", "claims", "VFs", "release → all allocated ms", "claims/s", "VFs/s"], rows) +
        `\n\nMedians of ${RUNS} runs. Pods with one claim each are created behind a scheduling gate, ` +
        "then released together; time until every claim shows an allocation (polled every " +
        `${POLL_MS} ms). Nodes and ResourceSlices are written straight to the API server (no kubelets).\n`;
      console.log(`\n${markdown}`);
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      fs.writeFileSync(path.join(RESULTS_DIR, "scheduler.md"), markdown);
    } finally {
      const selector = `dra-sriov-bench/run=${run}`;
      await Promise.allSettled([
        client.request({
          method: "DELETE",
          path: `/api/v1/namespaces/${run}/pods`,
          query: { gracePeriodSeconds: "0" },
        }),
        client.request({
          method: "DELETE",
          path: "/apis/resource.k8s.io/v1/resourceslices",
          query: { labelSelector: selector },
        }),
        client.request({
          method: "DELETE",
          path: "/api/v1/nodes",
          query: { labelSelector: selector },
        }),
        client.request({
          method: "DELETE",
          path: `/apis/resource.k8s.io/v1/deviceclasses/${deviceClass}`,
        }),
      ]);
      await client
        .request({ method: "DELETE", path: `/api/v1/namespaces/${run}` })
        .catch(() => undefined);
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
