import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** `<state>/env.json` of the cluster the suite runs against. */
    clusterEnvFile: string;
  }
}

const repoRoot = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(repoRoot, "hack/local-cluster.sh");

/**
 * A local cluster (hack/local-cluster.sh) of `nodes` nodes in `state` for a suite. One
 * already running there with that many nodes is used and left running; otherwise one is
 * started (building what is missing; a cluster there with another node count is taken down
 * first) and taken down afterwards, its logs kept in `<state>/logs`. One cluster per
 * machine: the emulated hosts' veths carry fixed names.
 */
export function localCluster(
  project: TestProject,
  state: string,
  nodes: number,
  extraEnv: Record<string, string> = {},
): (() => void) | undefined {
  const env = { ...process.env, ...extraEnv, DRA_SRIOV_CLUSTER_STATE: state };
  const envFile = path.join(state, "env.json");
  project.provide("clusterEnvFile", envFile);

  const status = spawnSync("bash", [SCRIPT, "status"], { env, stdio: "ignore" });
  if (status.status === 0 && runningNodes(envFile) === nodes) {
    process.stderr.write(`local cluster: using the one running in ${state} (left running)\n`);
    return undefined;
  }
  const up = spawnSync("bash", [SCRIPT, "up", "--nodes", String(nodes)], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (up.status !== 0 || !fs.existsSync(envFile)) {
    // up stopped what it started; its logs stay for inspection.
    throw new Error(`hack/local-cluster.sh up failed (exit ${up.status}); logs in ${state}/logs`);
  }
  return () => {
    spawnSync("bash", [SCRIPT, "down", "--keep-logs"], { env, stdio: "inherit" });
    process.stderr.write(`local cluster: logs kept in ${state}/logs\n`);
  };
}

/** The node count env.json names (clusters started before it had one: 1). */
function runningNodes(envFile: string): number {
  try {
    const env = JSON.parse(fs.readFileSync(envFile, "utf8")) as { nodeCount?: unknown };
    return typeof env.nodeCount === "number" ? env.nodeCount : 1;
  } catch {
    return 0;
  }
}

/**
 * The end-to-end suite runs against one real single-node cluster: control plane,
 * containerd, kubelet, the emulated SR-IOV host and the driver, in
 * `DRA_SRIOV_CLUSTER_STATE` (default /tmp/dra-sriov-cluster).
 */
export default function setup(project: TestProject): (() => void) | undefined {
  return localCluster(
    project,
    path.resolve(process.env["DRA_SRIOV_CLUSTER_STATE"] ?? "/tmp/dra-sriov-cluster"),
    1,
  );
}
