import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, inject, type TestContext } from "vitest";
import { KubeClient, isNotFound, type KubeObject } from "../../lib/kube/client.js";

const execFileAsync = promisify(execFile);

export const repoRoot = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(repoRoot, "hack/local-cluster.sh");
/** The emulated host the demo manifests name (the default state dir's). */
export const DEMO_HOST_ROOT = "/tmp/dra-sriov-cluster/host";

/** `<state>/env.json` as hack/local-cluster.sh writes it (see hack/README.md). */
export interface ClusterEnv {
  stateDir: string;
  kubeconfig: string;
  nodeName: string;
  nodeIP: string;
  driverName: string;
  driverNamespace: string;
  profile: string;
  hostRoot: string;
  kubeletRootDir: string;
  pluginDir: string;
  checkpointFile: string;
  cdiDir: string;
  nriSocket: string;
  netnsDir: string;
  /** The driver's CNI results (its --cni-cache-dir). */
  cniCacheDir: string;
  /** host-local's leases of the demo networks (their ipam.dataDir). */
  ipamDir: string;
  cniBinDir: string;
  /** pods: the driver installed by Helm (as users run it); host: as host processes. */
  driverMode: "pods" | "host";
  helm: string;
  helmRelease: string;
  driverImage: string;
  criEndpoint: string;
  controlPlaneStateDir: string;
  containerdStateDir: string;
  /** The processes hack/local-cluster.sh started (the driver's only in host mode). */
  pids: Partial<
    Record<"emulator" | "vf-switch" | "kubelet" | "controller" | "kubelet-plugin", number | null>
  >;
  logsDir: string;
  ports: {
    kubelet: number;
    kubeletHealthz: number;
    pluginHealth: number;
    controllerHealth: number;
  };
  pluginMetricsURL: string;
  kubectl: string;
  crictl: string;
  ctr: string;
  cli: [string, string];
  kubernetesVersion: string;
  containerdVersion: string;
  /** How many nodes `up --nodes N` made (1 unless asked). */
  nodeCount: number;
  /** Each node's own parts; the first is also what the fields above describe. */
  nodes: ClusterNode[];
}

/** One node of env.json's `nodes`. */
export interface ClusterNode {
  name: string;
  nodeIP: string;
  profile: string;
  hostRoot: string;
  kubeletRootDir: string;
  pluginDir: string;
  checkpointFile: string;
  cdiDir: string;
  nriSocket: string;
  netnsDir: string;
  cniCacheDir: string;
  ipamDir: string;
  cniBinDir: string;
  criEndpoint: string;
  containerdStateDir: string;
  pids: Partial<Record<"emulator" | "vf-switch" | "kubelet", number | null>>;
  logsDir: string;
  ports: { kubelet: number; kubeletHealthz: number };
  pluginMetricsURL: string;
}

/** The running cluster's env.json, read afresh (restarts change the PIDs). */
export function clusterEnv(): ClusterEnv {
  return JSON.parse(fs.readFileSync(inject("clusterEnvFile"), "utf8")) as ClusterEnv;
}

/**
 * Skips a case on a cluster older than Kubernetes 1.`minor`, where the DRA feature it needs
 * (`feature`) is still alpha and off by default (make test-matrix runs 1.34).
 */
export function skipBeforeKubernetes(context: TestContext, minor: number, feature: string): void {
  const version = clusterEnv().kubernetesVersion;
  const match = /^v1\.(\d+)\./.exec(version);
  if (match !== null && Number(match[1]) < minor) {
    context.skip(
      `${feature} is off by default before Kubernetes 1.${minor}; this cluster runs ${version}`,
    );
  }
}

export function apiClient(): KubeClient {
  return KubeClient.load(clusterEnv().kubeconfig);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    }
    await sleep(250);
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws for a non-zero exit. */
export function run(
  file: string,
  args: readonly string[],
  input?: string,
  env?: NodeJS.ProcessEnv,
) {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** The cached helm with the cluster's admin kubeconfig; throws on failure. */
export async function helm(args: readonly string[]): Promise<string> {
  const env = clusterEnv();
  const result = await run(env.helm, ["--kubeconfig", env.kubeconfig, ...args]);
  if (result.code !== 0) throw new Error(`helm ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/**
 * `helm upgrade` of the driver's release with `values` (`key=value`) over the chart as it is
 * now and the release's own values: plain --reuse-values would keep the installed chart's
 * values and miss any value the chart gained since.
 */
export async function upgradeRelease(values: readonly string[]): Promise<void> {
  const env = clusterEnv();
  await helm([
    "upgrade",
    env.helmRelease,
    path.join(repoRoot, "deployments/helm/dra-driver-sriov"),
    "-n",
    env.driverNamespace,
    "--reset-then-reuse-values",
    ...values.flatMap((value) => ["--set", value]),
  ]);
}

/**
 * Upgrades the driver's release with `values` (see upgradeRelease) and returns what rolls it
 * back to the revision it had; a failed upgrade is rolled back at once.
 */
export async function upgradeDriver(values: readonly string[]): Promise<() => Promise<void>> {
  const env = clusterEnv();
  const status = JSON.parse(
    await helm(["status", env.helmRelease, "-n", env.driverNamespace, "-o", "json"]),
  ) as { version: number };
  const rollback = async () => {
    await helm(["rollback", env.helmRelease, String(status.version), "-n", env.driverNamespace]);
  };
  try {
    await upgradeRelease(values);
  } catch (error) {
    await rollback();
    throw error;
  }
  return rollback;
}

/** The cached kubectl with the cluster's admin kubeconfig; throws on failure. */
export async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const env = clusterEnv();
  const result = await run(env.kubectl, ["--kubeconfig", env.kubeconfig, ...args], input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed (exit ${result.code}): ${result.stderr}`);
  }
  return result.stdout;
}

/**
 * hack/local-cluster.sh restart|stop|start PART [--kill]. `extraEnv` reaches the started
 * process where the script passes it on (DRA_SRIOV_FAULT for the kubelet-plugin).
 */
export async function clusterCommand(
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): Promise<void> {
  const env = clusterEnv();
  const result = await run("bash", [SCRIPT, ...args], undefined, {
    ...process.env,
    DRA_SRIOV_CLUSTER_STATE: env.stateDir,
    ...extraEnv,
  });
  if (result.code !== 0) {
    throw new Error(
      `hack/local-cluster.sh ${args.join(" ")} failed (exit ${result.code}):\n${result.stderr}`,
    );
  }
}

/**
 * Where the suite runs a demo scenario whose manifests use `namespace`: a namespace of its
 * own, so that a user's `kubectl apply -f demo/<scenario>/` on the same cluster (the pod
 * `make demo` leaves running) is neither deleted nor counted.
 */
export function e2eNamespace(namespace: string): string {
  return `e2e-${namespace}`;
}

/**
 * A scenario's manifests as one stream, the emulated host's path made this cluster's and
 * its namespaces the suite's (e2eNamespace).
 */
export function scenarioManifests(scenario: string): string {
  const dir = path.join(repoRoot, "demo", scenario);
  const files = fs
    .readdirSync(dir)
    .filter((file) => /\.ya?ml$/.test(file))
    .sort();
  return forThisCluster(
    scenario,
    files.map((file) => readManifest(path.join(dir, file))).join("\n---\n"),
  );
}

/**
 * One manifest of a scenario that is not applied with its directory (`later/pod1.yaml`: a
 * step of its README), made this cluster's and the suite's as scenarioManifests does.
 */
export function scenarioFile(scenario: string, file: string): string {
  return forThisCluster(scenario, readManifest(path.join(repoRoot, "demo", scenario, file)));
}

function readManifest(file: string): string {
  const stateDir = path.dirname(clusterEnv().hostRoot);
  return fs.readFileSync(file, "utf8").replaceAll(path.dirname(DEMO_HOST_ROOT), stateDir);
}

/** Renames the namespaces the scenario's directory declares to the suite's (e2eNamespace). */
function forThisCluster(scenario: string, text: string): string {
  const dir = path.join(repoRoot, "demo", scenario);
  const declared = fs
    .readdirSync(dir)
    .filter((file) => /\.ya?ml$/.test(file))
    .map((file) => fs.readFileSync(path.join(dir, file), "utf8"))
    .join("\n---\n");
  const namespaces = [...declared.matchAll(/^kind: Namespace\nmetadata:\n {2}name: (\S+)$/gm)].map(
    (match) => match[1]!,
  );
  if (namespaces.length === 0) throw new Error(`demo/${scenario} declares no Namespace`);
  return namespaces.reduce(
    (manifests, namespace) =>
      manifests.replace(new RegExp(`(?<=[ /])${namespace}(?=$|/)`, "gm"), e2eNamespace(namespace)),
    text,
  );
}

export async function applyScenario(scenario: string): Promise<void> {
  await kubectl(["apply", "-f", "-"], scenarioManifests(scenario));
}

/** Deletes a scenario's objects and waits until they are gone. */
export async function deleteScenario(scenario: string): Promise<void> {
  await kubectl(
    ["delete", "--ignore-not-found", "--wait=true", "--timeout=120s", "-f", "-"],
    scenarioManifests(scenario),
  );
}

/**
 * A demo scenario's describe scaffolding: the scenario is deleted before its tests (an
 * earlier run's leftovers) and after them. Returns the host's VFs as they were before it
 * was applied (call it inside a test).
 */
export function useScenario(scenario: string): () => Map<string, VfState> {
  let before: Map<string, VfState> | undefined;
  beforeAll(async () => {
    await deleteScenario(scenario);
    before = await hostVfs();
  });
  afterAll(async () => {
    await deleteScenario(scenario);
  });
  return () => before!;
}

/** Deletes a scenario, then checks the node is as it was `before` it (expectNothingLeaked). */
export async function deleteScenarioLeavingNothing(
  scenario: string,
  before: Map<string, VfState>,
): Promise<void> {
  await deleteScenario(scenario);
  await expectNothingLeaked(before);
}

/** Applies a scenario, waits for its pod to be Ready and returns the pod's claim `claimName`. */
export async function applyScenarioForClaim(
  scenario: string,
  namespace: string,
  pod: string,
  claimName: string,
): Promise<Claim> {
  await applyScenario(scenario);
  await waitPodReady(namespace, pod);
  return claimOfPod(namespace, pod, claimName);
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: Condition[];
    resourceClaimStatuses?: { name: string; resourceClaimName?: string }[];
  };
}

export interface DeviceStatus {
  driver: string;
  pool: string;
  device: string;
  conditions?: Condition[] | null;
  data?: Record<string, unknown>;
  networkData?: { interfaceName?: string; ips?: string[]; hardwareAddress?: string };
}

export interface Claim extends KubeObject {
  status?: {
    allocation?: {
      devices?: { results?: { request: string; driver: string; pool: string; device: string }[] };
    };
    reservedFor?: { name: string; uid: string }[];
    devices?: DeviceStatus[];
  };
}

/**
 * The devices of this node's pool that ResourceClaims hold, all of them or those of claims
 * outside the suite's namespaces (`outsideSuite`: pods a user left, such as `make demo`'s).
 */
export async function allocatedDevices(outsideSuite = false): Promise<Set<string>> {
  const env = clusterEnv();
  const claims = await apiClient().request<{ items: Claim[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceclaims",
  });
  return new Set(
    claims.items
      .filter((claim) => !outsideSuite || !(claim.metadata?.namespace ?? "").startsWith("e2e-"))
      .flatMap((claim) => claim.status?.allocation?.devices?.results ?? [])
      .filter((result) => result.driver === env.driverName && result.pool === env.nodeName)
      .map((result) => result.device),
  );
}

export async function getPod(namespace: string, name: string): Promise<Pod> {
  return apiClient().request<Pod>({
    method: "GET",
    path: `/api/v1/namespaces/${namespace}/pods/${name}`,
  });
}

export function podReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * Waits until the driver's release runs one node plugin pod, Ready and not going, whose
 * arguments include `arg` (or, with `present` false, lack it): during a rolling update the
 * old and the new pod run side by side, and the old one's slices win until it is gone.
 */
export async function waitNodePluginArg(arg: string, present = true): Promise<void> {
  const env = clusterEnv();
  interface NodePluginPod {
    metadata?: { deletionTimestamp?: string };
    spec?: { containers: { args?: string[] }[] };
    status?: { conditions?: Condition[] };
  }
  await waitFor(
    `one Ready node plugin pod ${present ? "with" : "without"} ${arg}`,
    async () => {
      const pods = (
        await apiClient().request<{ items: NodePluginPod[] }>({
          method: "GET",
          path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
          query: {
            labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
          },
        })
      ).items;
      const [pod] = pods;
      const ready = pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      const args = pod?.spec?.containers[0]?.args ?? [];
      return pods.length === 1 &&
        pod?.metadata?.deletionTimestamp === undefined &&
        ready &&
        args.includes(arg) === present
        ? true
        : undefined;
    },
    120_000,
  );
}

export async function waitPodReady(namespace: string, name: string): Promise<Pod> {
  return waitFor(`pod ${namespace}/${name} to be Ready`, async () => {
    const pod = await getPod(namespace, name);
    return podReady(pod) ? pod : undefined;
  });
}

/** The claim made for the pod's claim `claimName` (from a template), once it exists. */
export async function claimOfPod(
  namespace: string,
  pod: string,
  claimName: string,
): Promise<Claim> {
  const name = await waitFor(`the claim ${claimName} of pod ${namespace}/${pod}`, async () => {
    const read = await getPod(namespace, pod);
    return read.status?.resourceClaimStatuses?.find((s) => s.name === claimName)?.resourceClaimName;
  });
  return getClaim(namespace, name);
}

export async function getClaim(namespace: string, name: string): Promise<Claim> {
  return apiClient().request<Claim>({
    method: "GET",
    path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${name}`,
  });
}

/** Waits until a claim's status satisfies `done` (the driver writes it in the background). */
export async function waitClaim(
  namespace: string,
  name: string,
  what: string,
  done: (claim: Claim) => boolean,
): Promise<Claim> {
  return waitFor(`claim ${namespace}/${name}: ${what}`, async () => {
    const claim = await getClaim(namespace, name);
    return done(claim) ? claim : undefined;
  });
}

/** Waits until one of our devices of a claim has its networkData (the CNI ADD's outcome). */
export async function waitNetworkData(namespace: string, claim: Claim): Promise<Claim> {
  return waitClaim(namespace, claim.metadata!.name!, "networkData", (c) =>
    ourDevices(c).some((device) => device.networkData !== undefined),
  );
}

/** Our entries of a claim's status.devices. */
export function ourDevices(claim: Claim): DeviceStatus[] {
  const driver = clusterEnv().driverName;
  return (claim.status?.devices ?? []).filter((device) => device.driver === driver);
}

/**
 * Runs a command in a pod's container through the API server and the kubelet
 * (`kubectl exec`). Retried while the kubelet does not know the pod yet (right after it
 * restarted); throws for a non-zero exit unless `allowFailure`.
 */
export async function execIn(
  namespace: string,
  pod: string,
  command: readonly string[],
  options: { allowFailure?: boolean } = {},
): Promise<RunResult> {
  const env = clusterEnv();
  const args = ["--kubeconfig", env.kubeconfig, "-n", namespace, "exec", pod, "--", ...command];
  const result = await waitFor(`kubectl exec in ${namespace}/${pod}`, async () => {
    const attempt = await run(env.kubectl, args);
    if (
      attempt.code !== 0 &&
      /unable to upgrade connection|pod does not exist|container not found/.test(attempt.stderr)
    ) {
      throw new Error(attempt.stderr.trim());
    }
    return attempt;
  });
  if (result.code !== 0 && !options.allowFailure) {
    throw new Error(
      `${command.join(" ")} in ${namespace}/${pod} failed (exit ${result.code}): ${result.stderr}`,
    );
  }
  return result;
}

/** An interface inside a pod: its MAC and IPv4 addresses (CIDR). */
export async function podInterface(
  namespace: string,
  pod: string,
  ifName: string,
): Promise<{ mac: string; ipv4: string[] }> {
  const mac = (
    await execIn(namespace, pod, ["cat", `/sys/class/net/${ifName}/address`])
  ).stdout.trim();
  const addr = (await execIn(namespace, pod, ["ip", "-4", "-o", "addr", "show", "dev", ifName]))
    .stdout;
  const ipv4 = [...addr.matchAll(/inet (\S+)/g)].map((match) => match[1]!);
  return { mac, ipv4 };
}

export async function podEnv(namespace: string, pod: string): Promise<Map<string, string>> {
  const out = (await execIn(namespace, pod, ["env"])).stdout;
  return new Map(
    out
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/** `0000-3b-02-0` → `0000:3b:02.0`. */
export function pciAddressOf(device: string): string {
  const match = /^([0-9a-f]{4})-([0-9a-f]{2})-([0-9a-f]{2})-([0-7])$/.exec(device);
  if (!match) throw new Error(`not a VF device name: ${device}`);
  return `${match[1]}:${match[2]}:${match[3]}.${match[4]}`;
}

/** One VF of the emulated host, as the node's kernel (emulated sysfs) and `ip` show it. */
export interface VfState {
  pciAddress: string;
  /** The PF's PCI address. */
  pf: string;
  driver: string;
  /** The netdev sysfs lists for the VF (none while it is on vfio-pci). */
  netdev: string | null;
  /** Whether that netdev is in the host's network namespace. */
  inHostNamespace: boolean;
  mac: string | null;
}

/** Every VF of the emulated host. */
export async function hostVfs(): Promise<Map<string, VfState>> {
  const devices = path.join(clusterEnv().hostRoot, "sys/bus/pci/devices");
  const links = JSON.parse((await execFileAsync("ip", ["-j", "link", "show"])).stdout) as {
    ifname: string;
    address?: string;
  }[];
  const hostLinks = new Map(links.map((link) => [link.ifname, link.address ?? null]));
  const result = new Map<string, VfState>();
  for (const address of fs.readdirSync(devices).sort()) {
    const dir = path.join(devices, address);
    if (!fs.existsSync(path.join(dir, "physfn"))) continue;
    const netDir = path.join(dir, "net");
    const netdev = fs.existsSync(netDir) ? (fs.readdirSync(netDir)[0] ?? null) : null;
    result.set(address, {
      pciAddress: address,
      pf: path.basename(fs.readlinkSync(path.join(dir, "physfn"))),
      driver: fs.existsSync(path.join(dir, "driver"))
        ? path.basename(fs.readlinkSync(path.join(dir, "driver")))
        : "",
      netdev,
      inHostNamespace: netdev !== null && hostLinks.has(netdev),
      mac:
        netdev === null
          ? null
          : (hostLinks.get(netdev) ?? readTrimmed(path.join(netDir, netdev, "address"))),
    });
  }
  return result;
}

function readTrimmed(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

interface CheckpointFile {
  entries: Record<string, { state?: string; devices?: { pciAddress: string }[] }>;
}

export function readCheckpoint(file: string): CheckpointFile {
  if (!fs.existsSync(file)) return { entries: {} };
  return JSON.parse(fs.readFileSync(file, "utf8")) as CheckpointFile;
}

/**
 * The driver's state on the node, each kind of entry by its key: prepared claims (claim
 * UIDs), attached sandboxes, CDI spec files, CNI results, IPAM leases.
 */
interface NodeEntries {
  prepared: CheckpointFile["entries"];
  attached: CheckpointFile["entries"];
  cdiSpecs: string[];
  cniResults: string[];
  leases: string[];
}

function nodeEntries(): NodeEntries {
  const env = clusterEnv();
  const cdiSpecs = fs
    .readdirSync(env.cdiDir)
    .filter((file) => file.startsWith(`${env.driverName}-`));
  const results = path.join(env.cniCacheDir, "results");
  const leases = fs.existsSync(env.ipamDir)
    ? fs.readdirSync(env.ipamDir).flatMap((network) =>
        fs
          .readdirSync(path.join(env.ipamDir, network))
          .filter((file) => /^[0-9a-f.:]+$/.test(file) && file.includes("."))
          .map((file) => `${network}/${file}`),
      )
    : [];
  return {
    prepared: readCheckpoint(env.checkpointFile).entries,
    attached: readCheckpoint(path.join(env.pluginDir, "attachments.json")).entries,
    cdiSpecs,
    cniResults: fs.existsSync(results) ? fs.readdirSync(results) : [],
    leases,
  };
}

/**
 * What the node held when the suite started: the pods a user left running on the cluster
 * (the `make demo` pod, say). The suite's checks see only what is not in here, so it runs
 * beside them; `recordFoundState` is the suite's first step.
 */
let found: NodeEntries | undefined;

export function recordFoundState(): void {
  found = nodeEntries();
  const held = Object.keys(found.prepared);
  if (held.length > 0) {
    process.stderr.write(
      `e2e: the node already holds prepared claims ${held.join(", ")}: left alone\n`,
    );
  }
}

/** The claims prepared when the suite started that are prepared no more. */
export function foundClaimsLost(): string[] {
  const prepared = nodeEntries().prepared;
  return Object.keys(found?.prepared ?? {}).filter((uid) => !(uid in prepared));
}

/** The suite's own entries: those the node did not hold when it started. */
function ownEntries(): NodeEntries {
  const now = nodeEntries();
  if (found === undefined) return now;
  const was = found;
  const own = <T>(entries: Record<string, T>, before: Record<string, T>) =>
    Object.fromEntries(Object.entries(entries).filter(([key]) => !(key in before)));
  const newOnly = (entries: string[], before: string[]) =>
    entries.filter((entry) => !before.includes(entry));
  return {
    prepared: own(now.prepared, was.prepared),
    attached: own(now.attached, was.attached),
    cdiSpecs: newOnly(now.cdiSpecs, was.cdiSpecs),
    cniResults: newOnly(now.cniResults, was.cniResults),
    leases: newOnly(now.leases, was.leases),
  };
}

/** Prepared claims (the checkpoint's entries) of the suite. */
export function preparedClaims(): CheckpointFile["entries"] {
  return ownEntries().prepared;
}

/** Sandboxes of the suite with VFs attached (the pod-network checkpoint's entries). */
export function attachedSandboxes(): CheckpointFile["entries"] {
  return ownEntries().attached;
}

/** The suite's CDI spec files. */
export function cdiSpecs(): string[] {
  return ownEntries().cdiSpecs;
}

/** CNI results of the suite kept for a later DEL. */
export function cniCacheEntries(): string[] {
  return ownEntries().cniResults;
}

/** Addresses host-local IPAM still holds for the suite in the demo networks' lease directory. */
export function ipamLeases(): string[] {
  return ownEntries().leases;
}

/**
 * What a person checks after deleting every pod: each VF back in the host namespace on the
 * driver it had (compared with `before`), no CDI spec, nothing prepared or attached, no
 * CNI result or address lease left.
 */
export async function expectNothingLeaked(before: Map<string, VfState>): Promise<void> {
  await waitFor(
    "the node to be as it was before the pods",
    async () => {
      const problems: string[] = [];
      const now = await hostVfs();
      for (const [address, was] of before) {
        const is = now.get(address);
        if (is === undefined) {
          problems.push(`VF ${address} is gone`);
          continue;
        }
        if (is.driver !== was.driver)
          problems.push(`VF ${address} is on ${is.driver}, was on ${was.driver}`);
        if (was.inHostNamespace && !is.inHostNamespace) {
          problems.push(`VF ${address}'s netdev ${was.netdev} is not in the host namespace`);
        }
      }
      const prepared = Object.keys(preparedClaims());
      if (prepared.length > 0) problems.push(`claims still prepared: ${prepared.join(", ")}`);
      const attached = Object.keys(attachedSandboxes());
      if (attached.length > 0) problems.push(`sandboxes still attached: ${attached.join(", ")}`);
      const specs = cdiSpecs();
      if (specs.length > 0) problems.push(`CDI specs left: ${specs.join(", ")}`);
      const cache = cniCacheEntries();
      if (cache.length > 0) problems.push(`CNI results left: ${cache.join(", ")}`);
      const leases = ipamLeases();
      if (leases.length > 0) problems.push(`IPAM leases left: ${leases.join(", ")}`);
      if (problems.length > 0) throw new Error(problems.join("; "));
      return true;
    },
    45_000,
  );
}

/** The node plugin as it runs now: a host process, or the DaemonSet's pod and its restarts. */
export interface PluginInstance {
  pid?: number | null;
  pod?: { uid: string; restarts: number };
}

interface PluginPod extends KubeObject {
  metadata?: KubeObject["metadata"] & { deletionTimestamp?: string };
  status?: { containerStatuses?: { restartCount?: number }[] };
}

async function nodePluginPods(): Promise<PluginPod[]> {
  const env = clusterEnv();
  const pods = await apiClient().request<{ items: PluginPod[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
    query: {
      labelSelector: `app.kubernetes.io/instance=${env.helmRelease},app.kubernetes.io/component=node-plugin`,
    },
  });
  return pods.items.filter((pod) => pod.metadata?.deletionTimestamp === undefined);
}

export async function pluginInstance(): Promise<PluginInstance> {
  const env = clusterEnv();
  if (env.driverMode === "host") return { pid: env.pids["kubelet-plugin"] ?? null };
  const [pod, ...others] = await nodePluginPods();
  if (pod === undefined || others.length > 0) {
    throw new Error(`expected one node plugin pod, found ${others.length + (pod ? 1 : 0)}`);
  }
  return {
    pod: {
      uid: pod.metadata!.uid!,
      restarts: pod.status?.containerStatuses?.[0]?.restartCount ?? 0,
    },
  };
}

/** Whether that instance has died since (its process gone, its container restarted). */
export async function pluginDied(instance: PluginInstance): Promise<boolean> {
  if (instance.pod === undefined) return !processAlive(instance.pid ?? null);
  const pod = (await nodePluginPods()).find((p) => p.metadata?.uid === instance.pod!.uid);
  return (pod?.status?.containerStatuses?.[0]?.restartCount ?? Infinity) > instance.pod.restarts;
}

/** Whether a PID is a live process (not a zombie). */
export function processAlive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The value of one series of a Prometheus text exposition, summed over its labels. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === name) sum += Number(match[3]);
  }
  return sum;
}

export async function deleteNamespace(name: string): Promise<void> {
  try {
    await apiClient().request({ method: "DELETE", path: `/api/v1/namespaces/${name}` });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  await waitFor(`namespace ${name} to be gone`, async () => {
    try {
      await apiClient().request({ method: "GET", path: `/api/v1/namespaces/${name}` });
      return undefined;
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  });
}
