import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dirname, "../../..");

/** The container runtimes the tests can start: hack/containerd.sh and hack/crio.sh. */
export type RuntimeName = "containerd" | "crio";

/**
 * What `<state>/env.json` of hack/containerd.sh and hack/crio.sh both hold (documented in
 * hack/README.md): enough to drive the runtime through CRI and to connect an NRI plugin.
 */
export interface RuntimeEnv {
  stateDir: string;
  /** The runtime's PID. */
  pid: number;
  /** The CRI socket (path) and its `unix://` form, as the kubelet takes it. */
  criSocket: string;
  criEndpoint: string;
  /** Where external NRI plugins connect. */
  nriSocket: string;
  /** Pre-installed NRI plugins (started by the runtime) and their configs. */
  nriPluginDir: string;
  nriPluginConfigDir: string;
  /** The runtime's NRI plugin request / registration timeouts, e.g. "2s". */
  nriPluginRequestTimeout: string;
  nriPluginRegistrationTimeout: string;
  /** The CDI spec directories the runtime reads (one, inside the state dir). */
  cdiDirs: string[];
  /** Where the runtime keeps pods' network namespaces. */
  netnsDir: string;
  cniConfDir: string;
  cniBinDir: string;
  /** Name of the primary network, its bridge, subnet (CIDR) and the bridge's address. */
  cniNetwork: string;
  bridge: string;
  subnet: string;
  gateway: string;
  images: { pause: string; busybox: string };
  runcRoot: string;
  logFile: string;
  configFile: string;
  crictl: string;
  /** The runtime's version as pinned, e.g. "v2.4.2" (containerd) or "v1.34.0" (CRI-O). */
  version: string;
}

interface Script {
  /** The script under hack/ and the variable naming its state dir. */
  file: string;
  stateVariable: string;
}

const SCRIPTS: Record<RuntimeName, Script> = {
  containerd: { file: "hack/containerd.sh", stateVariable: "DRA_SRIOV_CONTAINERD_STATE" },
  crio: { file: "hack/crio.sh", stateVariable: "DRA_SRIOV_CRIO_STATE" },
};

/**
 * The runtime the runtime-neutral suites (NRI, pod network) start: DRA_SRIOV_RUNTIME, `crio`
 * for CRI-O (`make test-crio`), `containerd` (the default) otherwise.
 */
export function testRuntime(): RuntimeName {
  const value = process.env["DRA_SRIOV_RUNTIME"] ?? "";
  if (value === "" || value === "containerd") return "containerd";
  if (value === "crio") return "crio";
  throw new Error(`DRA_SRIOV_RUNTIME=${value}: use containerd (the default) or crio`);
}

/** How the runtime's name reads in test titles. */
export function runtimeTitle(name: RuntimeName): string {
  return name === "crio" ? "CRI-O" : "containerd";
}

/** A state dir short enough for the limits on socket paths. */
export function newStateDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-ctrd-"));
}

function scriptEnv(name: RuntimeName, stateDir: string): NodeJS.ProcessEnv {
  return { ...process.env, [SCRIPTS[name].stateVariable]: stateDir };
}

function readEnv<T extends RuntimeEnv>(stateDir: string): T {
  return JSON.parse(fs.readFileSync(path.join(stateDir, "env.json"), "utf8")) as T;
}

function run(name: RuntimeName, args: string[], stateDir: string): void {
  const script = SCRIPTS[name].file;
  const result = spawnSync("bash", [path.join(repoRoot, script), ...args], {
    env: scriptEnv(name, stateDir),
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (result.status !== 0) {
    throw new Error(
      `${script} ${args.join(" ")} failed (exit ${result.status}):\n${result.stderr}`,
    );
  }
}

/**
 * Starts the runtime with its script's `up` (building it and the images first when the cache
 * lacks them: minutes on a fresh machine) and returns its env.json.
 */
export function runtimeUp<T extends RuntimeEnv = RuntimeEnv>(
  name: RuntimeName,
  stateDir: string,
): T {
  run(name, ["up"], stateDir);
  return readEnv<T>(stateDir);
}

/**
 * The script's `restart`: stops the runtime alone (SIGTERM, or SIGKILL like a crash with
 * `kill`; nothing when it is not running) and starts it again on the same state; pods and
 * containers keep running. Returns the rewritten env.json (a new `pid`).
 *
 * Asynchronous on purpose: while it runs, this process's event loop sees the old
 * connections close, so gRPC clients reconnect on their next call instead of sending it on
 * a connection that is already gone.
 */
export async function runtimeRestart<T extends RuntimeEnv = RuntimeEnv>(
  name: RuntimeName,
  stateDir: string,
  options: { kill?: boolean } = {},
): Promise<T> {
  const script = SCRIPTS[name].file;
  const args = options.kill ? ["restart", "--kill"] : ["restart"];
  const child = spawn("bash", [path.join(repoRoot, script), ...args], {
    env: scriptEnv(name, stateDir),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const [status] = (await once(child, "close")) as [number | null];
  if (status !== 0) {
    throw new Error(`${script} ${args.join(" ")} failed (exit ${status}):\n${stderr}`);
  }
  return readEnv<T>(stateDir);
}

/** The script's `down`: removes every pod, stops everything, removes the state dir. */
export function runtimeDown(name: RuntimeName, stateDir: string, keepLogs = false): void {
  run(name, keepLogs ? ["down", "--keep-logs"] : ["down"], stateDir);
}
