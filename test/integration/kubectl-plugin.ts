import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./kube.js";

const BUNDLE = path.join(repoRoot, "dist/bundle/kubectl-sriov.mjs");
const run = promisify(execFile);

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The plugin as an operator installs it: the bundle copied once onto a PATH directory under
 * `work` as `kubectl-sriov`. Returns a runner using the pinned node, `kubeconfig` and
 * HOME=`work`.
 */
export function installKubectlSriov(
  work: string,
  defaultKubeconfig: string,
): (args: string[], kubeconfig?: string) => Promise<PluginRun> {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "make bundle" first`);
  const bin = path.join(work, "bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.copyFileSync(BUNDLE, path.join(bin, "kubectl-sriov"));
  fs.chmodSync(path.join(bin, "kubectl-sriov"), 0o755);
  return async (args, kubeconfig = defaultKubeconfig) => {
    try {
      const { stdout, stderr } = await run("kubectl-sriov", args, {
        env: {
          PATH: `${bin}:${path.dirname(process.execPath)}`,
          KUBECONFIG: kubeconfig,
          HOME: work,
        },
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as PluginRun;
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };
}
