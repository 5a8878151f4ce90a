/**
 * `node dist/bench/pod-start.js`: how long a pod takes from creation to Running on a real
 * single-node cluster (hack/local-cluster.sh: control plane, containerd, kubelet, the
 * driver on an emulated SR-IOV host), with one VF plugged in as net1 and without any, and
 * which share of the VF pod's time the driver spends in NodePrepareResources and in the
 * pod-network step (NRI RunPodSandbox → CNI ADD). Pods start one at a time, the two kinds
 * interleaved; each VF pod's driver times are the changes of the driver's histograms
 * (`/metrics`) across its start.
 *
 * Environment: DRA_SRIOV_CLUSTER_STATE (a running cluster there is used and left running,
 * else one is started and taken down), DRA_SRIOV_BENCH_PODS (pods of each kind, default 20).
 * Needs root, like the cluster.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { KubeClient, isNotFound, type KubeObject } from "../lib/kube/client.js";
import { median, ms, percentile, table } from "./stats.js";
import { DRIVER, REPO, createBenchNet, createNamespace, createVfClaimTemplate } from "./support.js";

const SCRIPT = path.join(REPO, "hack/local-cluster.sh");
const PODS = Number(process.env["DRA_SRIOV_BENCH_PODS"] ?? 20);
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
async function startPod(client: KubeClient, name: string, withVf: boolean): Promise<number> {
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
          ? { resourceClaims: [{ name: "vf", resourceClaimTemplateName: "one-vf" }] }
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
  await createVfClaimTemplate(client, NAMESPACE, "one-vf", {
    deviceClassName: DRIVER,
    selectors: [{ cel: { expression: `device.attributes["${DRIVER}"].driver != "vfio-pci"` } }],
  });
}

export async function main(): Promise<void> {
  const { env, stop } = cluster();
  const client = KubeClient.load(env.kubeconfig);
  const plain: Sample[] = [];
  const withVf: Sample[] = [];
  try {
    await setUp(client, env);
    // One of each first, unmeasured: images in the page cache, plugin code paths warm.
    for (const vf of [false, true]) {
      await startPod(client, `warm-${vf ? "vf" : "plain"}`, vf);
      await removePod(client, env, `warm-${vf ? "vf" : "plain"}`);
    }
    for (let i = 0; i < PODS; i++) {
      for (const vf of [false, true]) {
        const name = `${vf ? "vf" : "plain"}-${i}`;
        const before = vf ? await driverTimes(env.pluginMetricsURL) : undefined;
        const totalMs = await startPod(client, name, vf);
        if (before === undefined) {
          plain.push({ totalMs });
        } else {
          // The driver's histograms are written before it answers; wait for both to show.
          let after = await driverTimes(env.pluginMetricsURL);
          await waitUntil("the driver's metrics of the pod", async () => {
            after = await driverTimes(env.pluginMetricsURL);
            return (
              after.prepareCount > before.prepareCount && after.attachCount > before.attachCount
            );
          });
          withVf.push({
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

  const totals = (samples: Sample[]) => samples.map((sample) => sample.totalMs);
  const part = (key: "prepareMs" | "attachMs" | "cniMs") => withVf.map((s) => s[key]!);
  const share = (key: "prepareMs" | "attachMs" | "cniMs") =>
    `${(median(withVf.map((s) => s[key]! / s.totalMs)) * 100).toFixed(0)}%`;
  console.log(
    `\n## Pod start on the local cluster (${PODS} pods of each kind, one at a time; create → Running seen by a watch)\n`,
  );
  console.log(
    table(
      ["pod", "p50 ms", "p90 ms", "max ms"],
      [
        ["no VF", ...[50, 90, 100].map((p) => ms(percentile(totals(plain), p)))],
        [
          "one VF as net1 (kernel driver, CNI)",
          ...[50, 90, 100].map((p) => ms(percentile(totals(withVf), p))),
        ],
      ],
    ),
  );
  console.log(
    `\nThe VF costs ${ms(median(totals(withVf)) - median(totals(plain)))} ms at the median. Of a VF pod's start (medians of each pod's own numbers):\n`,
  );
  console.log(
    table(
      ["step (driver metrics)", "p50 ms", "p90 ms", "share of the pod's start"],
      [
        [
          "NodePrepareResources (dra_sriov_node_request_duration_seconds)",
          ms(median(part("prepareMs"))),
          ms(percentile(part("prepareMs"), 90)),
          share("prepareMs"),
        ],
        [
          "NRI RunPodSandbox → VFs attached (dra_sriov_pod_network_attach_seconds)",
          ms(median(part("attachMs"))),
          ms(percentile(part("attachMs"), 90)),
          share("attachMs"),
        ],
        [
          "… of which CNI plugins (dra_sriov_pod_network_cni_seconds)",
          ms(median(part("cniMs"))),
          ms(percentile(part("cniMs"), 90)),
          share("cniMs"),
        ],
      ],
    ),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
