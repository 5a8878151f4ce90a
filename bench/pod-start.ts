/**
 * `node dist/bench/pod-start.js`: how long a pod takes from creation to Running on a real
 * single-node cluster (hack/local-cluster.sh: control plane, containerd, kubelet, the
 * driver on an emulated SR-IOV host), without a VF and with 1, 2, 4 and 8 VFs (one claim
 * of `count` VFs, plugged in as net1, net2, ...), and which share of a VF pod's time the
 * driver spends in NodePrepareResources and in the pod-network step (NRI RunPodSandbox →
 * CNI ADD per VF). Pods start one at a time, the kinds interleaved; each VF pod's driver
 * times are the changes of the driver's histograms (`/metrics`) across its start. Writes
 * the curve bench/results/pod-start.*.
 *
 * Environment: DRA_SRIOV_CLUSTER_STATE (a running cluster there is used and left running,
 * else one is started and taken down), DRA_SRIOV_BENCH_PODS (pods of each kind, default 10).
 * Needs root, like the cluster.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { KubeClient, isNotFound, type KubeObject } from "../lib/kube/client.js";
import { ratio, writeCurve } from "./results.js";
import { median, ms, percentile, table } from "./stats.js";
import { DRIVER, REPO, createBenchNet, createNamespace, createVfClaimTemplate } from "./support.js";

const SCRIPT = path.join(REPO, "hack/local-cluster.sh");
const PODS = Number(process.env["DRA_SRIOV_BENCH_PODS"] ?? 10);
/** VFs per pod: 0 is the pod without a claim. The X710 host has 14 VFs with a kernel driver. */
const KINDS = [0, 1, 2, 4, 8];
const NAMESPACE = `bench-pod-start-${process.pid}`;
const IMAGE = "localhost/dra-sriov/busybox:local";

interface ClusterEnv {
  stateDir: string;
  kubeconfig: string;
  nodeName: string;
  hostRoot: string;
  checkpointFile: string;
  ipamDir: string;
  pluginMetricsURL: string;
}

interface Pod extends KubeObject {
  status?: { phase?: string };
}

/** The driver's histograms that split a VF pod's start, as sums (seconds) and counts. */
interface DriverTimes {
  prepareSum: number;
  prepareCount: number;
  attachSum: number;
  attachCount: number;
  cniSum: number;
}

interface Sample {
  totalMs: number;
  prepareMs?: number;
  attachMs?: number;
  cniMs?: number;
}

function series(text: string, name: string, labels = ""): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}${labels} `) || (labels === "" && line.startsWith(`${name}{} `))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

async function driverTimes(metricsUrl: string): Promise<DriverTimes> {
  const text = await (await fetch(metricsUrl)).text();
  const prepare = '{operation="prepare"}';
  return {
    prepareSum: series(text, "dra_sriov_node_request_duration_seconds_sum", prepare),
    prepareCount: series(text, "dra_sriov_node_request_duration_seconds_count", prepare),
    attachSum: series(text, "dra_sriov_pod_network_attach_seconds_sum"),
    attachCount: series(text, "dra_sriov_pod_network_attach_seconds_count"),
    cniSum: series(text, "dra_sriov_pod_network_cni_seconds_sum"),
  };
}

/** The local cluster: the running one, or one started here (and a function to stop it). */
function cluster(): { env: ClusterEnv; stop: () => void } {
  const state = path.resolve(process.env["DRA_SRIOV_CLUSTER_STATE"] ?? "/tmp/dra-sriov-cluster");
  const env = { ...process.env, DRA_SRIOV_CLUSTER_STATE: state };
  const read = () =>
    JSON.parse(fs.readFileSync(path.join(state, "env.json"), "utf8")) as ClusterEnv;
  if (spawnSync("bash", [SCRIPT, "status"], { env, stdio: "ignore" }).status === 0) {
    return { env: read(), stop: () => undefined };
  }
  const up = spawnSync("bash", [SCRIPT, "up"], { env, stdio: ["ignore", "ignore", "inherit"] });
  if (up.status !== 0) throw new Error(`hack/local-cluster.sh up failed (logs: ${state}/logs)`);
  return {
    env: read(),
    stop: () => void spawnSync("bash", [SCRIPT, "down"], { env, stdio: "inherit" }),
  };
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Creates the pod and returns the ms until a watch reports it Running. */
async function startPod(client: KubeClient, name: string, vfs: number): Promise<number> {
  const withVf = vfs > 0;
  const podsPath = `/api/v1/namespaces/${NAMESPACE}/pods`;
  // Watch from a known version, so no event between the list and the watch is missed.
  const list = await client.request<{ metadata: { resourceVersion: string } }>({
    method: "GET",
    path: podsPath,
    query: { fieldSelector: `metadata.name=${name}` },
  });
  const abort = new AbortController();
  const events = client.watch<Pod>(
    podsPath,
    {
      fieldSelector: `metadata.name=${name}`,
      resourceVersion: list.metadata.resourceVersion,
      timeoutSeconds: 300,
    },
    abort.signal,
  );
  // Stopped by aborting while it waits for the next event (KubeClient.watch's stream then
  // fails into this loop, not as an unhandled error).
  let seen: ((at: number) => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  const running = new Promise<number>((resolve, reject) => {
    seen = resolve;
    failed = reject;
  });
  const loop = (async () => {
    try {
      for await (const event of events) {
        if (event.object.status?.phase === "Running") seen!(performance.now());
        if (event.object.status?.phase === "Failed") failed!(new Error(`pod ${name} failed`));
      }
      failed!(new Error(`the watch of pod ${name} ended before it ran`));
    } catch (error) {
      if (!abort.signal.aborted) failed!(error as Error);
    }
  })();
  const started = performance.now();
  await client.request({
    method: "POST",
    path: podsPath,
    body: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: "app",
            image: IMAGE,
            command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
            ...(withVf ? { resources: { claims: [{ name: "vf" }] } } : {}),
          },
        ],
        ...(withVf
          ? { resourceClaims: [{ name: "vf", resourceClaimTemplateName: `vfs-${vfs}` }] }
          : {}),
      },
    },
  });
  try {
    return (await running) - started;
  } finally {
    abort.abort();
    await loop;
  }
}

/** Deletes the pod and waits until it is gone and nothing is prepared for it any more. */
async function removePod(client: KubeClient, env: ClusterEnv, name: string): Promise<void> {
  const podPath = `/api/v1/namespaces/${NAMESPACE}/pods/${name}`;
  await client.request({ method: "DELETE", path: podPath });
  await waitUntil(`pod ${name} to be gone`, async () => {
    try {
      await client.request({ method: "GET", path: podPath });
      return false;
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  });
  await waitUntil("the driver to unprepare", async () =>
    preparedClaims(env).every((uid) => heldBefore.has(uid)),
  );
}

/** Claims prepared on the node (its checkpoint's entries). */
function preparedClaims(env: ClusterEnv): string[] {
  if (!fs.existsSync(env.checkpointFile)) return [];
  const checkpoint = JSON.parse(fs.readFileSync(env.checkpointFile, "utf8")) as {
    entries: Record<string, unknown>;
  };
  return Object.keys(checkpoint.entries);
}

/** What pods a user left running (the `make demo` pod) held before the bench: not ours. */
let heldBefore = new Set<string>();

async function setUp(client: KubeClient, env: ClusterEnv): Promise<void> {
  heldBefore = new Set(preparedClaims(env));
  await createNamespace(client, NAMESPACE);
  await createBenchNet(client, NAMESPACE, {
    type: "emulated-vf",
    hostRoot: env.hostRoot,
    ipam: {
      type: "host-local",
      ranges: [[{ subnet: "10.56.250.0/24" }]],
      dataDir: env.ipamDir,
    },
  });
  for (const vfs of KINDS.filter((count) => count > 0)) {
    await createVfClaimTemplate(
      client,
      NAMESPACE,
      `vfs-${vfs}`,
      {
        deviceClassName: DRIVER,
        allocationMode: "ExactCount",
        count: vfs,
        selectors: [{ cel: { expression: `device.attributes["${DRIVER}"].driver != "vfio-pci"` } }],
      },
      null,
    );
  }
}

export async function main(): Promise<void> {
  const { env, stop } = cluster();
  const client = KubeClient.load(env.kubeconfig);
  const samples = new Map<number, Sample[]>(KINDS.map((vfs) => [vfs, []]));
  try {
    await setUp(client, env);
    // One of each first, unmeasured: images in the page cache, plugin code paths warm.
    for (const vfs of KINDS) {
      await startPod(client, `warm-${vfs}`, vfs);
      await removePod(client, env, `warm-${vfs}`);
    }
    for (let i = 0; i < PODS; i++) {
      for (const vfs of KINDS) {
        const name = `vfs-${vfs}-${i}`;
        const before = vfs > 0 ? await driverTimes(env.pluginMetricsURL) : undefined;
        const totalMs = await startPod(client, name, vfs);
        if (before === undefined) {
          samples.get(vfs)!.push({ totalMs });
        } else {
          // The driver's histograms are written before it answers; wait for both to show.
          let after = await driverTimes(env.pluginMetricsURL);
          await waitUntil("the driver's metrics of the pod", async () => {
            after = await driverTimes(env.pluginMetricsURL);
            return (
              after.prepareCount > before.prepareCount && after.attachCount > before.attachCount
            );
          });
          samples.get(vfs)!.push({
            totalMs,
            prepareMs: (after.prepareSum - before.prepareSum) * 1000,
            attachMs: (after.attachSum - before.attachSum) * 1000,
            cniMs: (after.cniSum - before.cniSum) * 1000,
          });
        }
        await removePod(client, env, name);
      }
    }
  } finally {
    await client
      .request({ method: "DELETE", path: `/api/v1/namespaces/${NAMESPACE}` })
      .catch(() => undefined);
    stop();
  }
  writePodStartCurve(samples);
}

function writePodStartCurve(samples: ReadonlyMap<number, Sample[]>): void {
  const p50 = (vfs: number, key: keyof Sample) => median(samples.get(vfs)!.map((s) => s[key]!));
  const counts = KINDS.filter((vfs) => vfs > 0);
  const plain = p50(0, "totalMs");
  writeCurve({
    name: "pod-start",
    title: "Pod create → Running by VFs per pod (local cluster)",
    xLabel: "VFs in the pod's claim",
    yLabel: "median ms",
    logX: true,
    logY: false,
    series: [
      { label: "create → Running", points: counts.map((vfs) => [vfs, p50(vfs, "totalMs")]) },
      { label: "same pod without a VF", points: counts.map((vfs) => [vfs, plain]) },
      {
        label: "NRI attach (all VFs, CNI included)",
        points: counts.map((vfs) => [vfs, p50(vfs, "attachMs")]),
      },
      { label: "NodePrepareResources", points: counts.map((vfs) => [vfs, p50(vfs, "prepareMs")]) },
    ],
    table: table(
      [
        "VFs",
        "create → Running p50 ms",
        "p90 ms",
        "added by the VFs ms",
        "prepare ms",
        "NRI attach ms",
        "of which CNI ms",
        "attach vs 1 VF",
      ],
      KINDS.map((vfs) => {
        const totals = samples.get(vfs)!.map((s) => s.totalMs);
        return vfs === 0
          ? ["none", ms(plain), ms(percentile(totals, 90)), "", "", "", "", ""]
          : [
              vfs,
              ms(p50(vfs, "totalMs")),
              ms(percentile(totals, 90)),
              ms(p50(vfs, "totalMs") - plain),
              ms(p50(vfs, "prepareMs")),
              ms(p50(vfs, "attachMs")),
              ms(p50(vfs, "cniMs")),
              ratio(p50(1, "attachMs"), p50(vfs, "attachMs")),
            ];
      }),
    ),
    note:
      `Medians of ${PODS} pods of each kind, one at a time, kinds interleaved; create → Running as ` +
      "a watch sees it; the driver's parts from its histograms (/metrics) across each pod's start.",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
