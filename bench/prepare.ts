import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { API_VERSION } from "../api/v1alpha1/group.js";
import { EmulatedKernel, buildEmulatedHost, builtinProfiles } from "../pkg/emulator/index.js";
import { HostPaths } from "../pkg/host/paths.js";
import { KubeClient } from "../lib/kube/client.js";
import type { WireClaim } from "../lib/kubeletplugin/protos.js";
import { loadKubeletProtos } from "../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../lib/kubeletplugin/testing/fake-kubelet.js";
import { withControlPlane } from "./control-plane.js";
import { ratio, writeCurve } from "./results.js";
import { mb, median, ms, percentile, table } from "./stats.js";
import { CLI, DAEMON_ENV, DAEMON_NODE_FLAGS, DRIVER, createNamespace } from "./support.js";

const NAMESPACE = `bench-prepare-${process.pid}`;
const CLAIMS_PER_RUN = 64;
/** Claims prepared at once (the kubelet prepares the claims of different pods in parallel). */
const CONCURRENCY = [1, 4, 16, 32];

/** Kilobytes of a /proc/<pid>/status field (VmRSS, VmHWM). */
function procStatusKb(pid: number, field: string): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

/** CPU time a process has used, user + system, in ms (/proc/<pid>/stat, 100 ticks a second). */
function procCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces), from field 3 (state) on.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A claim allocated to one VF, written as the scheduler would (status.allocation + reservedFor). */
async function allocatedClaim(
  client: KubeClient,
  nodeName: string,
  device: string,
  vfio: boolean,
): Promise<WireClaim> {
  const name = `claim-${randomUUID().slice(0, 8)}`;
  const claimsPath = `/apis/resource.k8s.io/v1/namespaces/${NAMESPACE}/resourceclaims`;
  const created = await client.request<{ metadata: { uid: string; resourceVersion: string } }>({
    method: "POST",
    path: claimsPath,
    body: {
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaim",
      metadata: { name },
      spec: { devices: { requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }] } },
    },
  });
  const config = vfio
    ? [
        {
          source: "FromClaim",
          opaque: {
            driver: DRIVER,
            parameters: { apiVersion: API_VERSION, kind: "VfConfig", driver: "vfio-pci" },
          },
        },
      ]
    : [];
  const status = (body: Record<string, unknown>) =>
    client.request({
      method: "PATCH",
      path: `${claimsPath}/${name}/status`,
      contentType: "application/merge-patch+json",
      body: { status: body },
    });
  // Like the scheduler: allocate, then reserve for a real pod bound to the node (the
  // resourceclaim controller drops reservations for pods that do not exist).
  await status({
    allocation: {
      devices: { results: [{ request: "vf", driver: DRIVER, pool: nodeName, device }], config },
    },
  });
  const pod = await client.request<{ metadata: { uid: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${NAMESPACE}/pods`,
    body: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name },
      spec: {
        nodeName,
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
  await status({ reservedFor: [{ resource: "pods", name, uid: pod.metadata.uid }] });
  return { namespace: NAMESPACE, name, uid: created.metadata.uid };
}

interface Measured {
  mode: string;
  concurrency: number;
  latenciesMs: number[];
  /** The daemon's CPU time over the prepares, per claim. */
  cpuMsPerClaim: number;
}

function writePrepareCurve(results: readonly Measured[]): void {
  const modes = [...new Set(results.map((r) => r.mode))];
  const p50 = (r: Measured) => percentile(r.latenciesMs, 50);
  const atOne = (mode: string) => p50(results.find((r) => r.mode === mode && r.concurrency === 1)!);
  writeCurve({
    name: "prepare",
    title: "NodePrepareResources latency by concurrency (1-VF claims)",
    xLabel: "claims prepared at once",
    yLabel: "ms per claim",
    logX: true,
    logY: true,
    series: modes.flatMap((mode) => {
      const rows = results.filter((r) => r.mode === mode);
      return [
        { label: `${mode} p50`, points: rows.map((r) => [r.concurrency, p50(r)] as const) },
        {
          label: `${mode} p99`,
          points: rows.map((r) => [r.concurrency, percentile(r.latenciesMs, 99)] as const),
        },
      ];
    }),
    table: table(
      ["driver", "concurrency", "p50 ms", "p99 ms", "p50 vs concurrency 1", "target p99"],
      results.map((r) => [
        r.mode,
        r.concurrency,
        ms(p50(r)),
        ms(percentile(r.latenciesMs, 99)),
        ratio(atOne(r.mode), p50(r)),
        r.mode === "vfio-pci" ? "≤ 50 ms" : "≤ 20 ms",
      ]),
    ),
    note: `NodePrepareResources (v1 gRPC) through the daemon's socket, ${CLAIMS_PER_RUN} claims per row, profile "scale" (2,048 VFs).`,
  });
}

interface BenchHost {
  client: KubeClient;
  kubeconfig: string;
  root: string;
  paths: HostPaths;
  kubelet: FakeKubelet;
}

/** The emulated `scale` host, a control plane with the bench's namespace, and a fake kubelet. */
async function withBenchHost(work: (host: BenchHost) => Promise<void>): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-prepare-"));
  const root = path.join(tmp, "host");
  await buildEmulatedHost({ root, profile: builtinProfiles.scale });
  const paths = new HostPaths({ root });
  fs.mkdirSync(paths.kubeletRegistryDir, { recursive: true });
  const kernel = new EmulatedKernel({ root });
  await kernel.start();
  const kubelet = new FakeKubelet(loadKubeletProtos());
  try {
    await withControlPlane(async (kubeconfig) => {
      const client = KubeClient.load(kubeconfig);
      await createNamespace(client, NAMESPACE).catch(() => undefined);
      try {
        await work({ client, kubeconfig, root, paths, kubelet });
      } finally {
        await client
          .request({ method: "DELETE", path: `/api/v1/namespaces/${NAMESPACE}` })
          .catch(() => undefined);
      }
    });
  } finally {
    kubelet.close();
    await kernel.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface RunningDaemon {
  pid: number;
  nodeName: string;
  /** The DRA gRPC socket. */
  socket: string;
  /** VmRSS once start-up work (the first publish) has settled. */
  idleRssKb: number;
}

/**
 * The daemon as the image runs it, for a fresh Node object on the bench host: registered
 * with the fake kubelet, its start-up settled; stopped (and its Node deleted) after `work`.
 */
async function withDaemon(
  host: BenchHost,
  work: (daemon: RunningDaemon) => Promise<void>,
): Promise<void> {
  const { client, kubeconfig, root, paths, kubelet } = host;
  const nodeName = `bench-prepare-${process.pid}-${randomUUID().slice(0, 4)}`;
  await client.request({
    method: "POST",
    path: "/api/v1/nodes",
    body: { apiVersion: "v1", kind: "Node", metadata: { name: nodeName } },
  });
  const daemon = spawn(
    process.execPath,
    [
      ...DAEMON_NODE_FLAGS,
      CLI,
      "kubelet-plugin",
      "--host-root",
      root,
      "--node-name",
      nodeName,
      "--kubeconfig",
      kubeconfig,
      "--health-port",
      "0",
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "inherit"], env: DAEMON_ENV },
  );
  try {
    const registration = path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`);
    for (;;) {
      if (daemon.exitCode !== null) throw new Error(`the daemon exited (${daemon.exitCode})`);
      if (fs.existsSync(registration)) {
        const ok = await kubelet.register(registration).then(
          () => true,
          () => false,
        );
        if (ok) break;
      }
      await sleep(50);
    }
    await sleep(3_000); // let start-up work (first publish) settle before sampling idle memory
    const idleRssKb = procStatusKb(daemon.pid!, "VmRSS");
    const socket = path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");
    await work({ pid: daemon.pid!, nodeName, socket, idleRssKb });
  } finally {
    if (daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      await new Promise((resolve) => daemon.once("exit", resolve));
    }
    await client
      .request({ method: "DELETE", path: `/api/v1/nodes/${nodeName}` })
      .catch(() => undefined);
  }
}

/** VFs of the host in PCI order, as device names; each measured row takes fresh ones. */
function vfDevices(paths: HostPaths): string[] {
  return fs
    .readdirSync(paths.pciDevices)
    .filter((a) => fs.existsSync(path.join(paths.pciDevice(a), "physfn")))
    .sort()
    .map((a) => a.replace(/[:.]/g, "-"));
}

/** Prepares (timed) and then unprepares `count` fresh 1-VF claims, `concurrency` at a time. */
async function measurePrepare(
  host: BenchHost,
  daemon: RunningDaemon,
  devices: string[],
  vfio: boolean,
  concurrency: number,
): Promise<Measured> {
  const claims: WireClaim[] = [];
  for (let i = 0; i < CLAIMS_PER_RUN; i++) {
    claims.push(await allocatedClaim(host.client, daemon.nodeName, devices.shift()!, vfio));
  }
  const latenciesMs: number[] = [];
  const queue = [...claims];
  const cpuBefore = procCpuMs(daemon.pid);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let claim = queue.shift(); claim; claim = queue.shift()) {
        const start = performance.now();
        const response = await host.kubelet.prepare(daemon.socket, "v1", [claim], 30_000);
        latenciesMs.push(performance.now() - start);
        const error = response.claims[claim.uid]?.error;
        if (error) throw new Error(`prepare of ${claim.name} failed: ${error}`);
      }
    }),
  );
  const cpuMsPerClaim = (procCpuMs(daemon.pid) - cpuBefore) / claims.length;
  for (const claim of claims) await host.kubelet.unprepare(daemon.socket, "v1", [claim]);
  return { mode: vfio ? "vfio-pci" : "kernel driver", concurrency, latenciesMs, cpuMsPerClaim };
}

const daemonLabel = () => `daemon (${path.basename(CLI)} ${DAEMON_NODE_FLAGS.join(" ")})`;

/** NodePrepareResources latency of 1-VF claims through the daemon's gRPC socket. */
export async function main(): Promise<void> {
  await withBenchHost(async (host) => {
    await withDaemon(host, async (daemon) => {
      const devices = vfDevices(host.paths);
      const results: Measured[] = [];
      for (const vfio of [false, true]) {
        for (const concurrency of CONCURRENCY) {
          results.push(await measurePrepare(host, daemon, devices, vfio, concurrency));
        }
      }
      const peakRssKb = procStatusKb(daemon.pid, "VmHWM");
      writePrepareCurve(results);
      console.log(
        `\n${daemonLabel()} RSS idle with 2,048 VFs published: ${mb(daemon.idleRssKb)} MB (target ≤ 85 MB); peak over the runs: ${mb(peakRssKb)} MB`,
      );
    });
  });
}

/**
 * `node dist/bench/prepare.js --idle [daemons]`: only the idle RSS and the kernel-driver
 * concurrency-1 row, for `daemons` fresh daemons one after another (default 5) on one
 * control plane and host, with their medians. Writes no results file.
 */
export async function idleOnly(daemons: number): Promise<void> {
  const rows: (string | number)[][] = [];
  const idle: number[] = [];
  const p50s: number[] = [];
  const cpus: number[] = [];
  await withBenchHost(async (host) => {
    const devices = vfDevices(host.paths);
    for (let i = 0; i < daemons; i++) {
      await withDaemon(host, async (daemon) => {
        const measured = await measurePrepare(host, daemon, devices, false, 1);
        idle.push(daemon.idleRssKb);
        p50s.push(percentile(measured.latenciesMs, 50));
        cpus.push(measured.cpuMsPerClaim);
        rows.push([i + 1, mb(daemon.idleRssKb), ms(p50s.at(-1)!), ms(cpus.at(-1)!)]);
      });
    }
  });
  console.log(
    table(
      ["daemon", "idle RSS MB", "prepare p50 ms (concurrency 1)", "daemon CPU ms per claim"],
      rows,
    ),
  );
  console.log(
    `\n${daemonLabel()}: idle RSS median ${mb(median(idle))} MB (target ≤ 85 MB), prepare p50 median ${ms(median(p50s))} ms, CPU per claim ${ms(median(cpus))} ms, ${daemons} daemons × ${CLAIMS_PER_RUN} claims`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const idle = process.argv.indexOf("--idle");
  if (idle === -1) await main();
  else await idleOnly(Number.parseInt(process.argv[idle + 1] ?? "5", 10));
}
