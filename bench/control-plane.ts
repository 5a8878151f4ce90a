import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const script = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../hack/control-plane.sh",
);

/**
 * Runs `work` against a real control plane: the one named by $DRA_SRIOV_TEST_KUBECONFIG
 * or $KUBECONFIG, else one started for the benchmark (hack/control-plane.sh) and stopped after.
 */
export async function withControlPlane(work: (kubeconfig: string) => Promise<void>): Promise<void> {
  const given = process.env["DRA_SRIOV_TEST_KUBECONFIG"] ?? process.env["KUBECONFIG"];
  if (given) return work(given);
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-bench-"));
  const env = { ...process.env, DRA_SRIOV_STATE: state };
  const up = spawnSync("bash", [script, "up"], { env, stdio: ["ignore", "ignore", "inherit"] });
  if (up.status !== 0) throw new Error(`hack/control-plane.sh up failed; logs in ${state}/logs`);
  try {
    await work(path.join(state, "kubeconfig"));
  } finally {
    spawnSync("bash", [script, "down"], { env, stdio: "inherit" });
  }
}
