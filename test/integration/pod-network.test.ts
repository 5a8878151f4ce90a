import { execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import {
  EmulatedKernel,
  type HostProfile,
  buildEmulatedHost,
  builtinProfiles,
  destroyEmulatedHost,
} from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import type { KubeClient } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { cniTestBinDir } from "../support/cni.js";
import { CriClient, type PodSandboxConfig } from "../support/cri/client.js";
import {
  newStateDir,
  runtimeDown,
  runtimeRestart,
  runtimeTitle,
  runtimeUp,
  testRuntime,
  type RuntimeEnv,
} from "../support/cri/runtime.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";
import { CLI, hasExited, startKubeletPlugin, stopProcess } from "./daemon.js";

const DRIVER = "sriovnetwork.openshift.io";
const runtimeName = testRuntime();

interface ClaimStatus {
  status?: {
    devices?: {
      device: string;
      networkData?: { interfaceName: string; ips?: string[]; hardwareAddress?: string };
      conditions?: { type: string; status: string; message: string }[];
    }[];
  };
}

/**
 * The whole pod-network path on real parts: claims the real scheduler allocated, prepared
 * by the daemon over its kubelet sockets; pod sandboxes started through CRI on a real
 * containerd 2.x (or CRI-O with DRA_SRIOV_RUNTIME=crio), whose NRI events make the daemon
 * run real CNI plugins (host-device via hack/cni/emulated-vf, built by hack/build-cni.sh)
 * that move the emulated VFs' veth netdevs into the pods.
 */
describe(`pod networks through NRI and CNI on ${runtimeTitle(runtimeName)}`, () => {
  let client: KubeClient;
  let tmp: string;
  let root: string;
  let paths: HostPaths;
  let kernel: EmulatedKernel;
  let kubelet: FakeKubelet;
  let runtimeState: string;
  let runtime: RuntimeEnv;
  let cri: CriClient;
  let nodeName: string;
  let namespace: string;
  let daemon: ChildProcess | undefined;
  let logFile: string;

  /**
   * e810, with netdev names of this run's own: netdevs are machine-wide, and the other
   * suites' hosts (x710: ens1f*) or a local cluster on e810 (ens2f*) may hold the usual ones.
   */
  const tag = randomBytes(2).toString("hex");
  const pfNetdevs = [`pn${tag}f0`, `pn${tag}f1`];
  const profile: HostProfile = {
    ...builtinProfiles.e810,
    pfs: builtinProfiles.e810.pfs.map((pf, port) => ({ ...pf, netdev: pfNetdevs[port]! })),
    otherDevices: builtinProfiles.e810.otherDevices.map((device) =>
      device.netdev === undefined ? device : { ...device, netdev: `pn${tag}o` },
    ),
  };

  const registrationSocket = () => path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`);
  const draSocket = () => path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");
  const attachmentsFile = () => path.join(paths.kubeletPluginsDir, DRIVER, "attachments.json");

  async function startDaemon(env: Record<string, string> = {}): Promise<void> {
    daemon = await startKubeletPlugin({
      args: [
        ...["--host-root", root, "--node-name", nodeName, "--namespace", namespace],
        ...["--kubeconfig", inject("kubeconfig"), "--health-port", "0"],
        ...["--cdi-root", runtime.cdiDirs[0]!, "--nri-socket", runtime.nriSocket],
        ...["--cni-bin-dir", `${cniTestBinDir()}:${runtime.cniBinDir}`],
        ...["--cni-cache-dir", path.join(tmp, "cni-cache")],
        "--publish-pfs",
      ],
      logFile,
      kubelet,
      registrationSocket: registrationSocket(),
      env,
    });
    await waitFor("the NRI plugin to connect", async () =>
      fs.readFileSync(logFile, "utf8").includes("synchronizing with the runtime")
        ? true
        : undefined,
    );
  }

  const stopDaemon = () => stopProcess(daemon);

  /** A NetworkAttachmentDefinition of the emulated host's VF plugin. */
  async function createNetwork(name: string, plugin: Record<string, unknown>): Promise<void> {
    const config = { cniVersion: "1.0.0", name, type: "emulated-vf", hostRoot: root, ...plugin };
    await client.request({
      method: "POST",
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name },
        spec: { config: JSON.stringify(config) },
      },
    });
  }

  /** A claim the scheduler allocated, prepared like the kubelet does before a pod starts. */
  async function preparedClaim(
    requests: { name: string; config: Record<string, unknown>; deviceClassName?: string }[],
  ) {
    const claim = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: requests.map(({ name, deviceClassName }) => ({
          name,
          exactly: { deviceClassName: deviceClassName ?? DRIVER },
        })),
        config: requests.map(({ name, config }) => ({
          requests: [name],
          opaque: {
            driver: DRIVER,
            parameters: { apiVersion: API_VERSION, kind: "VfConfig", ...config },
          },
        })),
      },
    );
    const wire = { namespace: claim.namespace, name: claim.name, uid: claim.uid };
    const prepared = await kubelet.prepare(draSocket(), "v1", [wire]);
    expect(prepared.claims[claim.uid]!.error ?? "").toBe("");
    const pod = await client.request<{ metadata: { uid: string } }>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods/${claim.podName}`,
    });
    const devices = prepared.claims[claim.uid]!.devices.map((device) => device.device_name);
    return { ...claim, wire, podUid: pod.metadata.uid, devices };
  }

  /**
   * A pod without shareProcessNamespace: on CRI-O a pod-wide PID namespace needs an infra
   * container, which CRI-O starts with oom_score_adj -998 and runc cannot set without
   * CAP_SYS_RESOURCE (docs/compatibility.md).
   */
  const namespaceOptions = { network: "POD", pid: "CONTAINER", ipc: "POD" } as const;
  function sandboxConfig(claim: { podName: string; podUid: string }): PodSandboxConfig {
    return {
      metadata: { name: claim.podName, uid: claim.podUid, namespace, attempt: 0 },
      hostname: claim.podName,
      linux: { security_context: { namespace_options: namespaceOptions } },
    };
  }

  /**
   * A container that waits until the pod stops. Its namespaces follow the pod's, as the
   * kubelet sends them (CRI-O refuses a pod-wide PID namespace in a pod without one). It
   * ends on SIGTERM: a plain `sleep` as PID 1 ignores it, and CRI-O's StopPodSandbox then
   * waits for the whole call's deadline before it kills.
   */
  async function startShell(sandboxId: string, config: PodSandboxConfig): Promise<string> {
    const id = await cri.createContainer(
      sandboxId,
      {
        metadata: { name: "shell" },
        image: { image: runtime.images.busybox },
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        linux: { security_context: { namespace_options: namespaceOptions } },
      },
      config,
    );
    await cri.startContainer(id);
    return id;
  }

  /** `inet` addresses of an interface inside the container's pod, [] when it is absent. */
  async function podAddresses(container: string, ifName: string): Promise<string[]> {
    const shown = await cri.execSync(container, ["ip", "-o", "-4", "addr", "show", "dev", ifName]);
    if (shown.exitCode !== 0) return [];
    return [...shown.stdout.matchAll(/inet (\S+)/g)].map((match) => match[1]!);
  }

  /** The VF's netdev as the host names it, and whether the host namespace has it. */
  function vfNetdev(device: string): string {
    const pci = device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
    return fs.readdirSync(path.join(paths.pciDevice(pci), "net"))[0]!;
  }
  const inHostNamespace = (netdev: string) => {
    try {
      execFileSync("ip", ["link", "show", "dev", netdev], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  const attachments = (): Record<string, unknown> =>
    fs.existsSync(attachmentsFile())
      ? (
          JSON.parse(fs.readFileSync(attachmentsFile(), "utf8")) as {
            entries: Record<string, unknown>;
          }
        ).entries
      : {};

  async function claimStatus(claim: { namespace: string; name: string }) {
    return client.request<ClaimStatus>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${claim.namespace}/resourceclaims/${claim.name}`,
    });
  }

  /**
   * Ends a pod whose sandbox containerd sends no stop or remove event for: one that ran
   * before a containerd restart (containerd keeps in memory only which pods it announced
   * to plugins). The plugin holds the pod's network namespace, so the VF outlives the
   * sandbox there, and the kubelet's unprepare detaches it back to the host.
   */
  async function releasePodOfForgottenSandbox(
    sandbox: string,
    claim: { wire: { namespace: string; name: string; uid: string }; devices: string[] },
  ): Promise<void> {
    await cri.stopPodSandbox(sandbox);
    await cri.removePodSandbox(sandbox);
    expect(Object.keys(attachments())).toEqual([sandbox]);
    expect(inHostNamespace(vfNetdev(claim.devices[0]!))).toBe(false);
    const unprepared = await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
    expect(unprepared.claims[claim.wire.uid]!.error ?? "").toBe("");
    expect(attachments()).toEqual({});
    expect(inHostNamespace(vfNetdev(claim.devices[0]!))).toBe(true);
    expect(fs.readdirSync(path.join(tmp, "cni-cache", "results"))).toEqual([]);
  }

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pod-network-"));
    root = path.join(tmp, "host");
    logFile = path.join(tmp, "daemon.log");
    await buildEmulatedHost({ root, profile, netdevs: true });
    paths = new HostPaths({ root });
    fs.mkdirSync(paths.kubeletRegistryDir, { recursive: true });
    kernel = new EmulatedKernel({ root });
    await kernel.start();
    runtimeState = newStateDir();
    runtime = runtimeUp(runtimeName, runtimeState);
    cri = new CriClient(runtime.criSocket);
    kubelet = new FakeKubelet(loadKubeletProtos());
    nodeName = uniqueName("pod-network-node");
    namespace = uniqueName("pod-network");
    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass-pf.yaml"),
    );
    await createNetwork("static-net", {
      ipam: { type: "static", addresses: [{ address: "10.77.0.10/24" }] },
    });
    await createNetwork("no-ipam", {});
    await createNetwork("per-pod-ips", { capabilities: { ips: true }, ipam: { type: "static" } });
    await createNetwork("broken-ipam", {
      ipam: { type: "static", addresses: [{ address: "not-an-address" }] },
    });
    await startDaemon();
    await waitFor("the daemon's slices", async () =>
      (await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined,
    );
  }, 180_000);

  afterAll(async () => {
    cri?.close();
    kubelet?.close();
    await stopDaemon();
    if (runtimeState) runtimeDown(runtimeName, runtimeState);
    await kernel?.stop();
    if (root) await destroyEmulatedHost(root);
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    if (process.env["KEEP_DAEMON_LOG"]) process.stderr.write(fs.readFileSync(logFile, "utf8"));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("plugs the VF into the sandbox as the claim's ifName with the network's IP, reports it, and takes it back on stop", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "net1", netAttachDefName: "static-net" } },
    ]);
    const netdev = vfNetdev(claim.devices[0]!);
    const config = sandboxConfig(claim);
    const sandbox = await cri.runPodSandbox(config);
    const shell = await startShell(sandbox, config);
    expect(await podAddresses(shell, "net1")).toEqual(["10.77.0.10/24"]);
    expect(inHostNamespace(netdev)).toBe(false);

    const reported = await waitFor("networkData on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.networkData ? device : undefined;
    });
    expect(reported.networkData).toMatchObject({ interfaceName: "net1", ips: ["10.77.0.10/24"] });
    expect(reported.networkData!.hardwareAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(reported.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=True",
      "NetworkReady=True",
    ]);

    await cri.stopPodSandbox(sandbox);
    expect(inHostNamespace(netdev)).toBe(true);
    expect(attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);
    const unprepared = await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
  });

  it("plugs a whole PF and all its VFs into the sandbox (--publish-pfs) as net1, net1v0, ..., and takes them back on stop", async () => {
    // Pods of earlier tests hold VFs, and a PF is allocatable only while none of its VFs is:
    // they go first (their claims are unprepared already), so this test needs no order.
    await client.request({
      method: "DELETE",
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { gracePeriodSeconds: 0 },
    });
    const claim = await preparedClaim([
      {
        name: "nic",
        deviceClassName: `pf.${DRIVER}`,
        config: { ifName: "net1", netAttachDefName: "no-ipam" },
      },
    ]);
    const [pf] = claim.devices;
    expect(pf).toMatch(/^pf-0000-86-00-[01]$/);
    const pci = pf!.replace(/^pf-(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
    const netdevOf = (address: string) =>
      fs.readdirSync(path.join(paths.pciDevice(address), "net"))[0]!;
    const vfAddresses = fs
      .readdirSync(paths.pciDevice(pci))
      .filter((entry) => /^virtfn\d+$/.test(entry))
      .map((entry) => path.basename(fs.readlinkSync(path.join(paths.pciDevice(pci), entry))));
    expect(vfAddresses).toHaveLength(8);
    const hostNetdevs = [pci, ...vfAddresses].map(netdevOf);
    expect(pfNetdevs).toContain(hostNetdevs[0]);

    const config = sandboxConfig(claim);
    const sandbox = await cri.runPodSandbox(config);
    const shell = await startShell(sandbox, config);
    const shown = await cri.execSync(shell, ["ip", "-o", "link", "show"]);
    const podLinks = [...shown.stdout.matchAll(/^\d+: ([^:@]+)/gm)].map((match) => match[1]!);
    expect(podLinks.filter((name) => name.startsWith("net1")).sort()).toEqual(
      ["net1", ...Array.from({ length: 8 }, (_, index) => `net1v${index}`)].sort(),
    );
    expect(hostNetdevs.filter(inHostNamespace)).toEqual([]);
    const reported = await waitFor("networkData on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.networkData ? device : undefined;
    });
    expect(reported.networkData).toMatchObject({ interfaceName: "net1" });

    await cri.stopPodSandbox(sandbox);
    expect(hostNetdevs.filter(inHostNamespace)).toEqual(hostNetdevs);
    await cri.removePodSandbox(sandbox);
    const unprepared = await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
    // The PF's VFs are free for the other tests again.
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}/pods/${claim.podName}`);
  });

  it("fails the sandbox of a whole PF whose VF count changed since prepare, saying what to do; unprepare puts the count back", async () => {
    await client.request({
      method: "DELETE",
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { gracePeriodSeconds: 0 },
    });
    const claim = await preparedClaim([
      {
        name: "nic",
        deviceClassName: `pf.${DRIVER}`,
        config: { ifName: "net1", netAttachDefName: "no-ipam" },
      },
    ]);
    const pci = claim.devices[0]!.replace(/^pf-(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
    const pfDir = paths.pciDevice(pci);
    const numVfs = path.join(pfDir, "sriov_numvfs");
    const virtfns = () => fs.readdirSync(pfDir).filter((entry) => /^virtfn\d+$/.test(entry));
    expect(virtfns()).toHaveLength(8);
    fs.writeFileSync(numVfs, "0");
    await waitFor("the PF's VFs gone", async () => (virtfns().length === 0 ? true : undefined));
    fs.writeFileSync(numVfs, "4");
    await waitFor("4 VFs", async () => (virtfns().length === 4 ? true : undefined));

    const config = sandboxConfig(claim);
    await expect(cri.runPodSandbox(config)).rejects.toThrow(
      new RegExp(
        `whole PF ${pci} had 8 VFs when the claim was prepared and has 4 now: .*delete the pod`,
      ),
    );
    expect(attachments()).toEqual({});
    const failed = await waitFor("the refusal on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.conditions ? device : undefined;
    });
    expect(failed.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=False",
      "NetworkReady=False",
    ]);
    expect(failed.conditions![1]!.message).toMatch(/sriov_numvfs/);

    const unprepared = await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
    expect(virtfns()).toHaveLength(8);
    expect(fs.readFileSync(numVfs, "utf8").trim()).toBe("8");
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}/pods/${claim.podName}`);
  });

  it("plugs two VFs of one pod, each with the address its VfConfig asks for", async () => {
    const claim = await preparedClaim([
      { name: "a", config: { netAttachDefName: "per-pod-ips", ips: ["10.78.0.11/24"] } },
      { name: "b", config: { netAttachDefName: "per-pod-ips", ips: ["10.78.1.12/24"] } },
    ]);
    const config = sandboxConfig(claim);
    const sandbox = await cri.runPodSandbox(config);
    const shell = await startShell(sandbox, config);
    expect(await podAddresses(shell, "net1")).toEqual(["10.78.0.11/24"]);
    expect(await podAddresses(shell, "net2")).toEqual(["10.78.1.12/24"]);
    await cri.stopPodSandbox(sandbox);
    await cri.removePodSandbox(sandbox);
    for (const device of claim.devices) expect(inHostNamespace(vfNetdev(device))).toBe(true);
    await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
  });

  it("fails the sandbox when the CNI fails, with the plugin's message, leaving the VF on the host", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { netAttachDefName: "broken-ipam" } },
    ]);
    const netdev = vfNetdev(claim.devices[0]!);
    await expect(cri.runPodSandbox(sandboxConfig(claim))).rejects.toThrow(
      /cannot attach VF .* as net1 \(network broken-ipam\)/,
    );
    expect(inHostNamespace(netdev)).toBe(true);
    expect(attachments()).toEqual({});
    const failed = await waitFor("the failure on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.conditions ? device : undefined;
    });
    expect(failed.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=False",
      "NetworkReady=False",
    ]);
    expect(failed.conditions![1]!.message).toMatch(/broken-ipam/);
    await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
  });

  it("attaches a sandbox that started while the plugin was down, once it is back", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "late0", netAttachDefName: "static-net" } },
    ]);
    await stopDaemon();
    const config = sandboxConfig(claim);
    const sandbox = await cri.runPodSandbox(config);
    const shell = await startShell(sandbox, config);
    expect(await podAddresses(shell, "late0")).toEqual([]);
    await startDaemon();
    await waitFor("the VF in the pod", async () =>
      (await podAddresses(shell, "late0")).length > 0 ? true : undefined,
    );
    expect(await podAddresses(shell, "late0")).toEqual(["10.77.0.10/24"]);
    // Synchronize told the runtime about the pod: its stop reaches the plugin again.
    await cri.stopPodSandbox(sandbox);
    expect(inHostNamespace(vfNetdev(claim.devices[0]!))).toBe(true);
    expect(attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);
    await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
  });

  it("finishes an attach the plugin was killed in the middle of, once it is back", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "net1", netAttachDefName: "static-net" } },
    ]);
    await stopDaemon();
    await startDaemon({ DRA_SRIOV_FAULT: "during-attach-after-add" });
    const config = sandboxConfig(claim);
    const started = cri.runPodSandbox(config);
    await waitFor("the plugin to die in the attach", async () =>
      hasExited(daemon) ? true : undefined,
    );
    // The ADD ran; the record still says the attach is under way.
    const [sandbox, entry] = Object.entries(attachments())[0]!;
    expect(entry).toMatchObject({ state: "Attaching" });
    // The runtime gives up on the plugin and starts the sandbox without it.
    expect(await started).toBe(sandbox);
    await startDaemon();
    await waitFor("the attach to be redone", async () =>
      (attachments()[sandbox] as { state?: string } | undefined)?.state === "Attached"
        ? true
        : undefined,
    );
    const shell = await startShell(sandbox, config);
    expect(await podAddresses(shell, "net1")).toEqual(["10.77.0.10/24"]);
    await cri.stopPodSandbox(sandbox);
    await cri.removePodSandbox(sandbox);
    expect(inHostNamespace(vfNetdev(claim.devices[0]!))).toBe(true);
    await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
  });

  it("keeps running pods' VFs across a runtime restart and still detaches them after", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "net1", netAttachDefName: "static-net" } },
    ]);
    const config = sandboxConfig(claim);
    const sandbox = await cri.runPodSandbox(config);
    const shell = await startShell(sandbox, config);
    const before = fs.readFileSync(logFile, "utf8").split("synchronizing with the runtime").length;
    await runtimeRestart(runtimeName, runtimeState);
    await waitFor("the plugin to reconnect and synchronize", async () =>
      fs.readFileSync(logFile, "utf8").split("synchronizing with the runtime").length > before
        ? true
        : undefined,
    );
    expect(await podAddresses(shell, "net1")).toEqual(["10.77.0.10/24"]);
    expect(Object.keys(attachments())).toEqual([sandbox]);
    if (runtimeName === "containerd") {
      await releasePodOfForgottenSandbox(sandbox, claim);
      return;
    }
    // CRI-O restores its pods after a restart and sends their stop like any other's (after
    // it removed the network namespace: the plugin's hold of it keeps the VF there).
    await cri.stopPodSandbox(sandbox);
    expect(attachments()).toEqual({});
    expect(inHostNamespace(vfNetdev(claim.devices[0]!))).toBe(true);
    await cri.removePodSandbox(sandbox);
    const unprepared = await kubelet.unprepare(draSocket(), "v1", [claim.wire]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
  });
});
