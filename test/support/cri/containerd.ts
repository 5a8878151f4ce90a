import fs from "node:fs";
import { runtimeDown, runtimeRestart, runtimeUp, type RuntimeEnv } from "./runtime.js";

/** `<state>/env.json` as hack/containerd.sh writes it (documented in hack/README.md). */
export interface ContainerdEnv extends RuntimeEnv {
  /** containerd's gRPC socket (path): containerd API and CRI (criSocket is the same). */
  containerdSocket: string;
  ttrpcSocket: string;
  /** The containerd namespace CRI uses and the images are imported into. */
  namespace: string;
  containerdBinDir: string;
  ctr: string;
  containerdVersion: string;
}

export { newStateDir } from "./runtime.js";

/**
 * Starts containerd with hack/containerd.sh up (building it and the images first when the
 * cache lacks them: minutes on a fresh machine) and returns its env.json.
 */
export function containerdUp(stateDir: string): ContainerdEnv {
  return runtimeUp<ContainerdEnv>("containerd", stateDir);
}

/**
 * hack/containerd.sh restart: stops containerd alone (SIGTERM, or SIGKILL like a crash
 * with `kill`) and starts it again on the same state; pods and containers keep running in
 * their shims. Returns the rewritten env.json (a new `pid`); see runtimeRestart.
 */
export function containerdRestart(
  stateDir: string,
  options: { kill?: boolean } = {},
): Promise<ContainerdEnv> {
  return runtimeRestart<ContainerdEnv>("containerd", stateDir, options);
}

/** hack/containerd.sh down: removes every pod, stops everything, removes the state dir. */
export function containerdDown(stateDir: string, keepLogs = false): void {
  runtimeDown("containerd", stateDir, keepLogs);
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
