import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

const repoRoot = path.resolve(import.meta.dirname, "../..");

/**
 * Starts one real control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler) for the whole integration suite, building the binaries first when the
 * cache lacks them, and stops it by PID afterwards. Set DRA_SRIOV_TEST_KUBECONFIG to run
 * against a control plane you started yourself (`hack/control-plane.sh up`).
 */
export default function setup(project: TestProject): (() => void) | undefined {
  const existing = process.env["DRA_SRIOV_TEST_KUBECONFIG"];
  if (existing) {
    project.provide("kubeconfig", existing);
    return undefined;
  }
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-it-"));
  const env = { ...process.env, DRA_SRIOV_STATE: state };
  const up = spawnSync("bash", [path.join(repoRoot, "hack/control-plane.sh"), "up"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (up.status !== 0) {
    throw new Error(`hack/control-plane.sh up failed (exit ${up.status}); logs in ${state}/logs`);
  }
  const { kubeconfig } = JSON.parse(fs.readFileSync(path.join(state, "env.json"), "utf8")) as {
    kubeconfig: string;
  };
  project.provide("kubeconfig", kubeconfig);
  return () => {
    spawnSync("bash", [path.join(repoRoot, "hack/control-plane.sh"), "down", "--keep-logs"], {
      env,
      stdio: "inherit",
    });
    process.stderr.write(`control plane logs kept in ${state}/logs\n`);
  };
}
