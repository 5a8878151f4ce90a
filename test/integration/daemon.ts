import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { repoRoot, waitFor } from "./kube.js";

/** The built CLI, as the suites run the node daemon. */
export const CLI = path.join(repoRoot, "dist/cmd/dra-driver-sriov/main.js");

/**
 * Starts `kubelet-plugin` with `args` in its own process, appending its output to
 * `logFile`, and waits until the kubelet can register it. A killed predecessor leaves its
 * socket file behind until the new daemon replaces it, so registering is retried.
 */
export async function startKubeletPlugin(options: {
  args: readonly string[];
  logFile: string;
  kubelet: FakeKubelet;
  registrationSocket: string;
  env?: Record<string, string>;
}): Promise<ChildProcess> {
  const log = fs.openSync(options.logFile, "a");
  const daemon = spawn(process.execPath, [CLI, "kubelet-plugin", ...options.args], {
    stdio: ["ignore", log, log],
    env: { ...process.env, ...options.env },
  });
  fs.closeSync(log);
  await waitFor("registration with the kubelet", async () =>
    fs.existsSync(options.registrationSocket)
      ? options.kubelet.register(options.registrationSocket).then(
          () => true,
          () => undefined,
        )
      : undefined,
  );
  return daemon;
}

/** SIGTERM and the exit code; a process that already ended gives its code at once. */
export async function stopProcess(child: ChildProcess | undefined): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    return child?.exitCode ?? null;
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  return exited;
}

/** Whether the process has ended. */
export function hasExited(child: ChildProcess | undefined): boolean {
  return child !== undefined && (child.exitCode !== null || child.signalCode !== null);
}
