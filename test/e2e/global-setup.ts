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
 * The end-to-end suite runs against one real single-node cluster (hack/local-cluster.sh):
 * control plane, containerd, kubelet, the emulated SR-IOV host and the driver. A cluster
 * already running in the state dir (`DRA_SRIOV_CLUSTER_STATE`, default
 * /tmp/dra-sriov-cluster) is used and left running; otherwise one is started (building
 * what is missing) and taken down afterwards, its logs kept in `<state>/logs`. One cluster
 * per machine: the emulated host's veths carry fixed names.
 */
export default function setup(project: TestProject): (() => void) | undefined {
  const state = path.resolve(process.env["DRA_SRIOV_CLUSTER_STATE"] ?? "/tmp/dra-sriov-cluster");
  const env = { ...process.env, DRA_SRIOV_CLUSTER_STATE: state };
  const envFile = path.join(state, "env.json");
  project.provide("clusterEnvFile", envFile);

  const status = spawnSync("bash", [SCRIPT, "status"], { env, stdio: "ignore" });
  if (status.status === 0) {
    process.stderr.write(`e2e: using the cluster running in ${state} (left running)\n`);
    return undefined;
  }
  const up = spawnSync("bash", [SCRIPT, "up"], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (up.status !== 0 || !fs.existsSync(envFile)) {
    // up stopped what it started; its logs stay for inspection.
    throw new Error(`hack/local-cluster.sh up failed (exit ${up.status}); logs in ${state}/logs`);
  }
  return () => {
    spawnSync("bash", [SCRIPT, "down", "--keep-logs"], { env, stdio: "inherit" });
    process.stderr.write(`e2e: cluster logs kept in ${state}/logs\n`);
  };
}
