import { spawnSync } from "node:child_process";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { localCluster } from "../e2e/global-setup.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Kubernetes version the cluster starts on. */
    upgradeFrom: string;
    /** The version its control plane and kubelet are upgraded to. */
    upgradeTo: string;
  }
}

const SCRIPT = path.resolve(import.meta.dirname, "../../hack/local-cluster.sh");

/**
 * An emulated X540 host: its netdev names are not the X710's of the one-node cluster
 * `make demo` leaves, so the suite runs beside it.
 */
const PROFILE = "x540";

/** A Service network of its own (the one-node cluster has 10.0.0.0/24, the multi-node 10.0.1.0/24). */
const SERVICE_CIDR = "10.0.2.0/24";

function version(name: string, fallback: string): string {
  const value = process.env[name] ?? fallback;
  if (!/^v1\.\d+\.\d+$/.test(value)) throw new Error(`${name}=${value}: give one like v1.36.3`);
  return value;
}

/**
 * The upgrade suite starts a one-node cluster on Kubernetes `DRA_SRIOV_UPGRADE_FROM`
 * (default v1.36.3) in `DRA_SRIOV_UPGRADE_STATE` (default /tmp/dra-u) and upgrades it to
 * `DRA_SRIOV_UPGRADE_TO` (default v1.37.2) in its test. Always a fresh cluster: one left
 * there by an earlier run may already be upgraded, so it is taken down first.
 */
export default function setup(project: TestProject): (() => void) | undefined {
  const from = version("DRA_SRIOV_UPGRADE_FROM", "v1.36.3");
  const to = version("DRA_SRIOV_UPGRADE_TO", "v1.37.2");
  project.provide("upgradeFrom", from);
  project.provide("upgradeTo", to);
  const state = path.resolve(process.env["DRA_SRIOV_UPGRADE_STATE"] ?? "/tmp/dra-u");
  const extraEnv = {
    DRA_SRIOV_PROFILE: PROFILE,
    DRA_SRIOV_SERVICE_CIDR: SERVICE_CIDR,
    K8S_VERSION: from,
  };
  const down = spawnSync("bash", [SCRIPT, "down"], {
    env: { ...process.env, ...extraEnv, DRA_SRIOV_CLUSTER_STATE: state },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (down.status !== 0) throw new Error(`hack/local-cluster.sh down of ${state} failed`);
  return localCluster(project, state, 1, extraEnv);
}
