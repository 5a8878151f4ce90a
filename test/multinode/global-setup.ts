import path from "node:path";
import type { TestProject } from "vitest/node";
import { localCluster } from "../e2e/global-setup.js";

/** The node count of the multi-node suite: one node of each profile. */
export const MULTINODE_NODES = 3;

/**
 * The multi-node suite runs against a local cluster of three nodes (x710, e810, cx6dx) in
 * `DRA_SRIOV_MULTINODE_STATE` (default /tmp/dra-nodes; short, as the nodes' socket paths name it), apart from the one-node
 * suite's state dir.
 */
export default function setup(project: TestProject): (() => void) | undefined {
  return localCluster(
    project,
    path.resolve(process.env["DRA_SRIOV_MULTINODE_STATE"] ?? "/tmp/dra-nodes"),
    MULTINODE_NODES,
  );
}
