import path from "node:path";
import type { TestProject } from "vitest/node";
import { localCluster } from "../e2e/global-setup.js";

/** The node count of the multi-node suite: one node of each profile. */
export const MULTINODE_NODES = 3;

/**
 * The nodes' profiles: none is the one-node cluster's x710, whose netdev names would clash,
 * so the suite runs beside a one-node cluster `make demo` left running.
 */
const PROFILES = "e810 cx6dx x540";

/**
 * The Service network: the host routes each cluster's `kubernetes` ClusterIP to its own API
 * server, so it must not be the one-node cluster's (10.0.0.0/24).
 */
const SERVICE_CIDR = "10.0.1.0/24";

/**
 * The multi-node suite runs against a local cluster of three nodes (e810, cx6dx, x540) in
 * `DRA_SRIOV_MULTINODE_STATE` (default /tmp/dra-nodes; short, as the nodes' socket paths name it), apart from the one-node
 * suite's state dir.
 */
export default function setup(project: TestProject): (() => void) | undefined {
  return localCluster(
    project,
    path.resolve(process.env["DRA_SRIOV_MULTINODE_STATE"] ?? "/tmp/dra-nodes"),
    MULTINODE_NODES,
    { DRA_SRIOV_PROFILES: PROFILES, DRA_SRIOV_SERVICE_CIDR: SERVICE_CIDR },
  );
}
