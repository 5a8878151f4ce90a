import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dirname, "../../..");
const SCRIPT = path.join(repoRoot, "hack/containerd.sh");

/** `<state>/env.json` as hack/containerd.sh writes it (documented in hack/README.md). */
export interface ContainerdEnv {
  stateDir: string;
  /** containerd's PID. */
  pid: number;
  /** containerd's gRPC socket (path): containerd API, CRI runtime and image service. */
  containerdSocket: string;
  /** The same socket, for CRI clients (path). */
  criSocket: string;
  /** `unix://` + criSocket, as the kubelet's --container-runtime-endpoint takes it. */
  criEndpoint: string;
  ttrpcSocket: string;
  /** Where external NRI plugins connect. */
  nriSocket: string;
  /** Pre-installed NRI plugins (started by containerd) and their configs. */
  nriPluginDir: string;
  nriPluginConfigDir: string;
  /** containerd's NRI plugin_request_timeout / plugin_registration_timeout, e.g. "2s". */
  nriPluginRequestTimeout: string;
  nriPluginRegistrationTimeout: string;
  /** The CDI spec directories containerd reads (one, inside the state dir). */
  cdiDirs: string[];
  cniConfDir: string;
  cniBinDir: string;
  /** Name of the primary network, its bridge, subnet (CIDR) and the bridge's address. */
  cniNetwork: string;
  bridge: string;
  subnet: string;
  gateway: string;
  /** The containerd namespace CRI uses and the images are imported into. */
  namespace: string;
  images: { pause: string; busybox: string };
  runcRoot: string;
  logFile: string;
  configFile: string;
  containerdBinDir: string;
  ctr: string;
  crictl: string;
  containerdVersion: string;
}

/** A state dir short enough for containerd's limits on socket paths. */
export function newStateDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-ctrd-"));
}

function run(args: string[], stateDir: string): void {
  const result = spawnSync("bash", [SCRIPT, ...args], {
    env: { ...process.env, DRA_SRIOV_CONTAINERD_STATE: stateDir },
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (result.status !== 0) {
    throw new Error(
      `hack/containerd.sh ${args.join(" ")} failed (exit ${result.status}):\n${result.stderr}`,
    );
  }
}

/**
 * Starts containerd with hack/containerd.sh up (building it and the images first when the
 * cache lacks them: minutes on a fresh machine) and returns its env.json.
 */
export function containerdUp(stateDir: string): ContainerdEnv {
  run(["up"], stateDir);
  return JSON.parse(fs.readFileSync(path.join(stateDir, "env.json"), "utf8")) as ContainerdEnv;
}

/**
 * hack/containerd.sh restart: stops containerd alone (SIGTERM, or SIGKILL like a crash
 * with `kill`) and starts it again on the same state; pods and containers keep running in
 * their shims. Returns the rewritten env.json (a new `pid`).
 *
 * Asynchronous on purpose: while it runs, this process's event loop sees the old
 * connections close, so gRPC clients reconnect on their next call instead of sending it on
 * a connection that is already gone.
 */
export async function containerdRestart(
  stateDir: string,
  options: { kill?: boolean } = {},
): Promise<ContainerdEnv> {
  const args = options.kill ? ["restart", "--kill"] : ["restart"];
  const child = spawn("bash", [SCRIPT, ...args], {
    env: { ...process.env, DRA_SRIOV_CONTAINERD_STATE: stateDir },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const [status] = (await once(child, "close")) as [number | null];
  if (status !== 0) {
    throw new Error(`hack/containerd.sh ${args.join(" ")} failed (exit ${status}):\n${stderr}`);
  }
  return JSON.parse(fs.readFileSync(path.join(stateDir, "env.json"), "utf8")) as ContainerdEnv;
}

/** hack/containerd.sh down: removes every pod, stops everything, removes the state dir. */
export function containerdDown(stateDir: string, keepLogs = false): void {
  run(keepLogs ? ["down", "--keep-logs"] : ["down"], stateDir);
}

/** Mount points under `dir` in this mount namespace. */
export function mountsUnder(dir: string): string[] {
  const prefix = `${dir}/`;
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(prefix));
}

/** PIDs of live (non-zombie) processes whose command line contains `needle`. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Whether a process with this PID is alive (not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
