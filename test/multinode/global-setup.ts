import { spawnSync } from "node:child_process";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { localCluster } from "../e2e/global-setup.js";

/** The node count of the multi-node suite: one node of each profile (x710, e810, cx6dx). */
export const MULTINODE_NODES = 3;

const repoRoot = path.resolve(import.meta.dirname, "../..");

/**
 * The multi-node suite runs against a local cluster of three nodes (x710, e810, cx6dx) in
 * `DRA_SRIOV_MULTINODE_STATE` (default /tmp/dra-nodes: short, as the nodes' socket paths
 * name it). Only one local cluster runs on a machine (the emulated VFs' names and the
 * `kubernetes` Service's route are the machine's), so a one-node cluster still running in
 * `DRA_SRIOV_CLUSTER_STATE` (`make demo` leaves one) stops the suite with what to do.
 */
export default function setup(project: TestProject): (() => void) | undefined {
  const oneNode = path.resolve(process.env["DRA_SRIOV_CLUSTER_STATE"] ?? "/tmp/dra-sriov-cluster");
  const state = path.resolve(process.env["DRA_SRIOV_MULTINODE_STATE"] ?? "/tmp/dra-nodes");
  if (oneNode !== state) {
    const status = spawnSync("bash", [path.join(repoRoot, "hack/local-cluster.sh"), "status"], {
      env: { ...process.env, DRA_SRIOV_CLUSTER_STATE: oneNode },
      stdio: "ignore",
    });
    if (status.status === 0) {
      throw new Error(
        `a local cluster runs in ${oneNode}, and only one runs per machine: take it down ` +
          `(DRA_SRIOV_CLUSTER_STATE=${oneNode} hack/local-cluster.sh down), then run make test-multinode`,
      );
    }
  }
  return localCluster(project, state, MULTINODE_NODES);
}
