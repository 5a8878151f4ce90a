import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { isNotFound, type KubeClient } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { CriClient, type PodSandboxConfig } from "../support/cri/client.js";
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
} from "../integration/kube.js";
import {
  containerdUpInGuest,
  prepareGuestForContainers,
  unixSocketForwarder,
} from "./support/containerd.js";
import {
  guestDaemonLog,
  KUBELET_DIR,
  startGuestDaemon,
  writeGuestKubeconfig,
} from "./support/daemon.js";
import { enableVfs } from "./support/sriov.js";
import { Guest } from "./support/guest.js";

const DRIVER = "sriovnetwork.openshift.io";
const NUM_VFS = 4;
/** Everything in the guest's fresh tmpfs /run; the state dir short for socket paths. */
const CONTAINERD_STATE = "/run/ctrd";
const CDI_ROOT = `${CONTAINERD_STATE}/cdi`;
const NRI_SOCKET = `${CONTAINERD_STATE}/nri/nri.sock`;
const CRI_SOCKET = `${CONTAINERD_STATE}/containerd.sock`;
const CNI_CACHE = "/run/cni-cache";
const ATTACHMENTS = `${KUBELET_DIR}/plugins/${DRIVER}/attachments.json`;
/** Debian's CNI plugins: the real host-device, with static IPAM. */
const CNI_BIN_DIR = "/usr/lib/cni";
const NETWORK = "vf-static";
const ADDRESS = { local: "10.56.0.10", prefixlen: 24 };
/** Static IPAM taking the addresses from each VfConfig's `ips` (runtimeConfig). */
const PER_POD_IPS = "vf-per-pod-ips";
const BROKEN_IPAM = "vf-broken-ipam";

/** `ip -j -d addr` of one link, the fields the test reads. */
interface Link {
  ifname: string;
  address: string;
  ifalias?: string;
  parentbus?: string;
  parentdev?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

interface ClaimStatus {
  status?: {
    devices?: {
      device: string;
      networkData?: { interfaceName: string; ips?: string[]; hardwareAddress?: string };
      conditions?: { type: string; status: string }[];
    }[];
  };
}

const pciOf = (device: string) => device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");

/**
 * The pod-network step on real VFs, as a node runs it: containerd 2.x (CRI, NRI, CDI) in
 * the QEMU guest, the node daemon there as its NRI plugin, Debian's host-device CNI plugin
 * moving the igbvf netdev of the claim's VF into the pod sandbox CRI starts.
 */
describe("pod networks on real VFs (QEMU igb, containerd in the guest)", () => {
  let guest: Guest;
  let client: KubeClient;
  let kubelet: FakeKubelet;
  let cri: CriClient;
  let forwarder: { close(): Promise<void> } | undefined;
  let draEndpoint: string;
  /** The host's address of containerd's socket (relay port 7001, once the daemon registered). */
  let criEndpoint: string;
  let nodeName: string;
  let namespace: string;
  let workDir: string;
  let guestKubeconfig: string;
  const timings: string[] = [];

  const daemonLog = () => guestDaemonLog(guest);

  /** `ip -j -d addr` in a network namespace (the guest's own when none is given). */
  async function links(netns?: string): Promise<Link[]> {
    const ip = "ip -j -d addr show";
    const out = await guest.sh(netns ? `nsenter --net=${JSON.stringify(netns)} ${ip}` : ip);
    return JSON.parse(out) as Link[];
  }

  const netdevsOf = async (pci: string) =>
    (await guest.sh(`ls /sys/bus/pci/devices/${pci}/net 2>/dev/null || true`))
      .split("\n")
      .filter(Boolean);
  const listing = async (dir: string) =>
    (await guest.sh(`ls ${dir} 2>/dev/null || true`)).split("\n").filter(Boolean);
  const attachments = async (): Promise<Record<string, { state?: string }>> =>
    (
      JSON.parse(await guest.sh(`cat ${ATTACHMENTS} 2>/dev/null || echo '{"entries":{}}'`)) as {
        entries: Record<string, { state?: string }>;
      }
    ).entries;

  /** The network namespace containerd made for a sandbox, as its verbose status tells. */
  async function sandboxNetns(sandbox: string): Promise<string> {
    const status = await cri.podSandboxStatus(sandbox, true);
    const info = JSON.parse(status.info["info"] ?? "{}") as {
      runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
    };
    const network = info.runtimeSpec?.linux?.namespaces?.find((ns) => ns.type === "network");
    if (!network?.path) throw new Error(`sandbox ${sandbox} has no network namespace path`);
    return network.path;
  }

  async function time<T>(what: string, run: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const result = await run();
    timings.push(`${what}: ${Date.now() - started} ms`);
    return result;
  }

  /**
   * The kubelet-plugin in the guest as the DaemonSet runs it, with containerd's NRI socket;
   * registered with the kubelet (the relay port 7001 is lent back to the registration
   * socket for that, then given to CRI again) and synchronized with containerd.
   */
  async function startDaemon(env: Record<string, string> = {}): Promise<void> {
    const started = (await daemonLog()).split("synchronizing with the runtime").length;
    kubelet?.close();
    ({ kubelet, draEndpoint } = await startGuestDaemon(guest, {
      nodeName,
      namespace,
      kubeconfig: guestKubeconfig,
      args: [
        ...["--cdi-root", CDI_ROOT, "--nri-socket", NRI_SOCKET, "--cni-bin-dir", CNI_BIN_DIR],
        ...["--cni-cache-dir", CNI_CACHE],
      ],
      env,
      registrationTimeoutMs: 180_000,
    }));
    criEndpoint = await guest.relay(7001, CRI_SOCKET);
    await waitFor(
      "the daemon's NRI plugin to synchronize with containerd",
      async () =>
        (await daemonLog()).split("synchronizing with the runtime").length > started
          ? true
          : undefined,
      120_000,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\nthe daemon's log:\n${await daemonLog()}`);
    });
  }

  async function createNetwork(name: string, plugin: Record<string, unknown>): Promise<void> {
    await client.request({
      method: "POST",
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name },
        spec: {
          config: JSON.stringify({ cniVersion: "1.0.0", name, type: "host-device", ...plugin }),
        },
      },
    });
  }

  interface PreparedClaim {
    wire: { namespace: string; name: string; uid: string };
    podName: string;
    podUid: string;
    /** The VFs' PCI addresses, in request order. */
    vfs: string[];
  }

  /** A claim the scheduler allocated, prepared like the kubelet does before a pod starts. */
  async function preparedClaim(
    requests: { name: string; config: Record<string, unknown> }[],
  ): Promise<PreparedClaim> {
    const claim = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: requests.map(({ name }) => ({ name, exactly: { deviceClassName: DRIVER } })),
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
    const prepared = await kubelet.prepare(draEndpoint, "v1", [wire], 120_000);
    const result = prepared.claims[claim.uid]!;
    if (result.error) throw new Error(`prepare failed: ${result.error}\n${await daemonLog()}`);
    const pod = await client.request<{ metadata: { uid: string } }>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods/${claim.podName}`,
    });
    const byRequest = new Map(result.devices.map((d) => [d.request_names[0], d.device_name]));
    const vfs = requests.map(({ name }) => pciOf(byRequest.get(name)!));
    return { wire, podName: claim.podName, podUid: pod.metadata.uid, vfs };
  }

  /**
   * Unprepares like the kubelet after the pod ended, then deletes the pod: the garbage
   * collector removes its claim and the scheduler may give the VFs to the next test.
   */
  async function release(claim: PreparedClaim): Promise<void> {
    const unprepared = await kubelet.unprepare(draEndpoint, "v1", [claim.wire]);
    expect(unprepared.claims[claim.wire.uid]!.error ?? "").toBe("");
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}/pods/${claim.podName}`);
    await waitFor(`claim ${claim.wire.name} to be deleted`, () =>
      client
        .request({
          method: "GET",
          path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.wire.name}`,
        })
        .then(
          () => undefined,
          (error: unknown) => (isNotFound(error) ? true : Promise.reject(error)),
        ),
    );
  }

  /** The sandbox of the pod the claim is reserved for, as the kubelet asks for it. */
  function sandboxConfig(claim: PreparedClaim): PodSandboxConfig {
    return {
      metadata: { name: claim.podName, uid: claim.podUid, namespace, attempt: 0 },
      hostname: claim.podName,
      linux: {
        security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    };
  }

  const claimStatus = (claim: PreparedClaim) =>
    client.request<ClaimStatus>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.wire.name}`,
    });

  /** The guest's links of a VF, by its PCI address. */
  const hostLinksOf = async (pci: string) =>
    (await links()).filter((link) => link.parentdev === pci);
  const inet = (link: Link | undefined) =>
    (link?.addr_info ?? [])
      .filter((a) => a.family === "inet")
      .map((a) => `${a.local}/${a.prefixlen}`);

  beforeAll(async () => {
    client = testClient();
    kubelet = new FakeKubelet(loadKubeletProtos());
    nodeName = uniqueName("real-kernel-net");
    namespace = uniqueName("real-kernel-net");
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-rk-net-"));
    guestKubeconfig = writeGuestKubeconfig(inject("kubeconfig"), workDir);

    guest = await Guest.boot({
      kernel: inject("guestKernel"),
      initramfs: inject("guestInitramfs"),
      consoleLog: path.join(workDir, "console.log"),
    });
    timings.push(`guest boot: ${guest.bootMs} ms`);
    await enableVfs(guest, NUM_VFS);
    await time("bridge/veth modules and cgroup2", () => prepareGuestForContainers(guest));
    // Under TCG the plugin answers NRI in seconds, not containerd's default 2 s.
    const { ms } = await containerdUpInGuest(guest, CONTAINERD_STATE, {
      DRA_SRIOV_NRI_REQUEST_TIMEOUT: "120s",
      DRA_SRIOV_NRI_REGISTRATION_TIMEOUT: "120s",
    });
    timings.push(`containerd up in the guest (hack/containerd.sh up): ${ms} ms`);

    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    await createNetwork(NETWORK, {
      ipam: { type: "static", addresses: [{ address: `${ADDRESS.local}/${ADDRESS.prefixlen}` }] },
    });
    await createNetwork(PER_POD_IPS, { capabilities: { ips: true }, ipam: { type: "static" } });
    await createNetwork(BROKEN_IPAM, {
      ipam: { type: "static", addresses: [{ address: "not-an-address" }] },
    });
    await guest.sh(`mkdir -p ${KUBELET_DIR}/plugins_registry`);
    await time("daemon start to NRI synchronized", () => startDaemon());
    // CRI through a unix socket on the host, for the CriClient: relay port 7001 to containerd.
    const criSocket = path.join(workDir, "cri.sock");
    forwarder = await unixSocketForwarder(criSocket, criEndpoint);
    cri = new CriClient(criSocket, { callTimeoutMs: 180_000 });
    await waitFor(
      "the guest's slices",
      async () => ((await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined),
      60_000,
    );
  });

  afterAll(async () => {
    cri?.close();
    kubelet?.close();
    await forwarder?.close();
    if (guest) {
      if (process.env["KEEP_DAEMON_LOG"]) process.stderr.write(await daemonLog());
      await guest.stop("daemon").catch(() => undefined);
      await guest.shutdown();
    }
    if (client) {
      await deleteTestNamespace(client, namespace);
      await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    }
    // KEEP_WORKDIR=1 keeps the guest's console log (and the kubeconfig) for a look after a failure.
    if (workDir && !process.env["KEEP_WORKDIR"])
      fs.rmSync(workDir, { recursive: true, force: true });
    process.stderr.write(`real-kernel pod network timings:\n  ${timings.join("\n  ")}\n`);
  });

  it("moves the VF's igbvf netdev into the sandbox as net1 with the static address, reports it, and gives it back on stop", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "net1", netAttachDefName: NETWORK } },
    ]);
    const pci = claim.vfs[0]!;
    const [before, ...others] = await hostLinksOf(pci);
    expect(others).toEqual([]);
    expect(await netdevsOf(pci)).toEqual([before!.ifname]);
    const { ifname: hostName, address: mac } = before!;
    expect(await listing(CDI_ROOT)).toEqual([`${DRIVER}-vf_${claim.wire.uid}.json`]);

    const sandbox = await time("RunPodSandbox with the VF", () =>
      cri.runPodSandbox(sandboxConfig(claim)).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\nthe daemon's log:\n${await daemonLog()}`);
      }),
    );
    const net1 = (await links(await sandboxNetns(sandbox))).find((link) => link.ifname === "net1");
    expect(net1).toMatchObject({ parentbus: "pci", parentdev: pci, address: mac });
    expect(inet(net1)).toEqual([`${ADDRESS.local}/${ADDRESS.prefixlen}`]);
    expect(await hostLinksOf(pci)).toEqual([]);
    expect((await links()).map((link) => link.ifname)).not.toContain(hostName);

    const reported = await waitFor("networkData on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.networkData ? device : undefined;
    });
    expect(reported.networkData).toEqual({
      interfaceName: "net1",
      ips: [`${ADDRESS.local}/${ADDRESS.prefixlen}`],
      hardwareAddress: mac,
    });
    expect(reported.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=True",
      "NetworkReady=True",
    ]);

    await time("StopPodSandbox", () => cri.stopPodSandbox(sandbox));
    const back = await hostLinksOf(pci);
    expect(back.map((link) => ({ ifname: link.ifname, address: link.address }))).toEqual([
      { ifname: hostName, address: mac },
    ]);
    expect(inet(back[0])).toEqual([]);
    expect(await netdevsOf(pci)).toEqual([hostName]);
    expect(await attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);

    await release(claim);
    expect(await listing(CDI_ROOT)).toEqual([]);
    expect(await listing(`${CNI_CACHE}/results`)).toEqual([]);
    expect(await netdevsOf(pci)).toEqual([hostName]);
  });

  it("plugs two VFs of one pod side by side, each with the address its VfConfig asks for", async () => {
    const claim = await preparedClaim([
      { name: "a", config: { netAttachDefName: PER_POD_IPS, ips: ["10.57.0.11/24"] } },
      { name: "b", config: { netAttachDefName: PER_POD_IPS, ips: ["10.57.1.12/24"] } },
    ]);
    const names = await Promise.all(claim.vfs.map(netdevsOf));
    const sandbox = await time("RunPodSandbox with two VFs", () =>
      cri.runPodSandbox(sandboxConfig(claim)),
    );
    const inPod = await links(await sandboxNetns(sandbox));
    const plugged = ["net1", "net2"].map((ifname) => inPod.find((link) => link.ifname === ifname));
    expect(plugged.map((link) => link?.parentdev)).toEqual(claim.vfs);
    expect(plugged.map(inet)).toEqual([["10.57.0.11/24"], ["10.57.1.12/24"]]);
    await cri.stopPodSandbox(sandbox);
    await cri.removePodSandbox(sandbox);
    expect(await Promise.all(claim.vfs.map(netdevsOf))).toEqual(names);
    await release(claim);
    expect(await listing(`${CNI_CACHE}/results`)).toEqual([]);
  });

  it("fails the sandbox when the IPAM fails after host-device moved the VF, and has the VF back on the host", async () => {
    const claim = await preparedClaim([{ name: "vf", config: { netAttachDefName: BROKEN_IPAM } }]);
    const pci = claim.vfs[0]!;
    const [hostName] = await netdevsOf(pci);
    await expect(cri.runPodSandbox(sandboxConfig(claim))).rejects.toThrow(
      `cannot attach VF ${pci} of claim ${namespace}/${claim.wire.name} as net1 (network ${BROKEN_IPAM})`,
    );
    expect(await netdevsOf(pci)).toEqual([hostName]);
    expect(await attachments()).toEqual({});
    const failed = await waitFor("the failure on the claim", async () => {
      const device = (await claimStatus(claim)).status?.devices?.[0];
      return device?.conditions ? device : undefined;
    });
    expect(failed.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=False",
      "NetworkReady=False",
    ]);
    await release(claim);
    expect(await listing(`${CNI_CACHE}/results`)).toEqual([]);
  });

  it("attaches a sandbox that started while the daemon was down, once it is back", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "late0", netAttachDefName: NETWORK } },
    ]);
    const pci = claim.vfs[0]!;
    const [hostName] = await netdevsOf(pci);
    expect((await guest.stop("daemon")).code).toBe(0);
    const sandbox = await cri.runPodSandbox(sandboxConfig(claim));
    const netns = await sandboxNetns(sandbox);
    expect((await links(netns)).map((link) => link.ifname)).toEqual(["lo", "eth0"]);
    await time("daemon restart to NRI synchronized", () => startDaemon());
    const late0 = await waitFor("the VF in the pod", async () =>
      (await links(netns)).find((link) => link.ifname === "late0"),
    );
    expect(late0).toMatchObject({ parentdev: pci });
    expect(inet(late0)).toEqual([`${ADDRESS.local}/${ADDRESS.prefixlen}`]);
    // Synchronize told containerd about the pod: its stop reaches the daemon again.
    await cri.stopPodSandbox(sandbox);
    expect(await netdevsOf(pci)).toEqual([hostName]);
    expect(await attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);
    await release(claim);
  });

  it("finishes an attach the daemon was killed in the middle of (host-device's ADD done), once it is back", async () => {
    const claim = await preparedClaim([
      { name: "vf", config: { ifName: "net1", netAttachDefName: NETWORK } },
    ]);
    const pci = claim.vfs[0]!;
    const [hostName] = await netdevsOf(pci);
    expect((await guest.stop("daemon")).code).toBe(0);
    await startDaemon({ DRA_SRIOV_FAULT: "during-attach-after-add" });
    // The fault kills the daemon right after the ADD; containerd then starts the sandbox
    // without its plugin.
    const sandbox = await cri.runPodSandbox(sandboxConfig(claim));
    expect((await guest.stop("daemon")).signal).toBe("SIGKILL");
    expect(await attachments()).toEqual({
      [sandbox]: expect.objectContaining({ state: "Attaching" }),
    });
    const netns = await sandboxNetns(sandbox);
    expect((await links(netns)).find((link) => link.ifname === "net1")).toMatchObject({
      parentdev: pci,
    });

    await startDaemon();
    await waitFor("the attach to be finished", async () =>
      (await attachments())[sandbox]?.state === "Attached" ? true : undefined,
    );
    const net1 = (await links(netns)).find((link) => link.ifname === "net1");
    expect(net1).toMatchObject({ parentdev: pci });
    expect(inet(net1)).toEqual([`${ADDRESS.local}/${ADDRESS.prefixlen}`]);
    await cri.stopPodSandbox(sandbox);
    expect(await netdevsOf(pci)).toEqual([hostName]);
    expect(await attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);
    await release(claim);
    expect(await listing(`${CNI_CACHE}/results`)).toEqual([]);
  });
});
