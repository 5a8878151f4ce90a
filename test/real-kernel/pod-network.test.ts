import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { KubeClient } from "../../pkg/kube/client.js";
import { loadKubeletProtos } from "../../pkg/kubeletplugin/protos.js";
import { FakeKubelet } from "../../pkg/kubeletplugin/testing/fake-kubelet.js";
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
import { Guest, PF_ADDRESS } from "./support/guest.js";

const DRIVER = "sriovnetwork.openshift.io";
const NUM_VFS = 4;
/** Everything in the guest's fresh tmpfs /run; the state dir short for socket paths. */
const CONTAINERD_STATE = "/run/ctrd";
const CDI_ROOT = `${CONTAINERD_STATE}/cdi`;
const NRI_SOCKET = `${CONTAINERD_STATE}/nri/nri.sock`;
const CRI_SOCKET = `${CONTAINERD_STATE}/containerd.sock`;
const KUBELET_DIR = "/run/kubelet";
const CNI_CACHE = "/run/cni-cache";
const DAEMON_LOG = "/run/kubelet-plugin.log";
const REGISTRATION_SOCKET = `${KUBELET_DIR}/plugins_registry/${DRIVER}-reg.sock`;
const DRA_SOCKET = `${KUBELET_DIR}/plugins/${DRIVER}/dra.sock`;
const ATTACHMENTS = `${KUBELET_DIR}/plugins/${DRIVER}/attachments.json`;
/** Debian's CNI plugins: the real host-device, with static IPAM. */
const CNI_BIN_DIR = "/usr/lib/cni";
const NETWORK = "vf-static";
const ADDRESS = { local: "10.56.0.10", prefixlen: 24 };

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
  let nodeName: string;
  let namespace: string;
  let workDir: string;
  const timings: string[] = [];

  const daemonLog = () => guest.read(DAEMON_LOG).catch((error: unknown) => String(error));

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
  const attachments = async (): Promise<Record<string, unknown>> =>
    (
      JSON.parse(await guest.sh(`cat ${ATTACHMENTS} 2>/dev/null || echo '{"entries":{}}'`)) as {
        entries: Record<string, unknown>;
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

  beforeAll(async () => {
    client = testClient();
    kubelet = new FakeKubelet(loadKubeletProtos());
    nodeName = uniqueName("real-kernel-net");
    namespace = uniqueName("real-kernel-net");
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-rk-net-"));
    const guestKubeconfig = path.join(workDir, "kubeconfig");
    fs.writeFileSync(
      guestKubeconfig,
      fs
        .readFileSync(inject("kubeconfig"), "utf8")
        .replace(/https:\/\/127\.0\.0\.1:/g, "https://kubernetes:"),
    );

    guest = await Guest.boot({
      kernel: inject("guestKernel"),
      initramfs: inject("guestInitramfs"),
      consoleLog: path.join(workDir, "console.log"),
    });
    timings.push(`guest boot: ${guest.bootMs} ms`);
    await guest.sh(`echo ${NUM_VFS} > /sys/bus/pci/devices/${PF_ADDRESS}/sriov_numvfs`);
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
    await client.request({
      method: "POST",
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: { name: NETWORK },
        spec: {
          config: JSON.stringify({
            cniVersion: "1.0.0",
            name: NETWORK,
            type: "host-device",
            ipam: {
              type: "static",
              addresses: [{ address: `${ADDRESS.local}/${ADDRESS.prefixlen}` }],
            },
          }),
        },
      },
    });

    await guest.sh(`mkdir -p ${KUBELET_DIR}/plugins_registry`);
    await time("daemon start to NRI synchronized", async () => {
      await guest.spawnCli(
        "daemon",
        [
          "kubelet-plugin",
          ...["--node-name", nodeName, "--kubeconfig", guestKubeconfig],
          ...["--namespace", namespace, "--kubelet-dir", KUBELET_DIR, "--cdi-root", CDI_ROOT],
          ...["--nri-socket", NRI_SOCKET, "--cni-bin-dir", CNI_BIN_DIR],
          ...["--cni-cache-dir", CNI_CACHE, "--log-level", "debug"],
        ],
        { logFile: DAEMON_LOG },
      );
      const registration = await guest.relay(7001, REGISTRATION_SOCKET);
      await waitFor(
        "the daemon in the guest to register",
        () => kubelet.register(registration).then(() => true),
        180_000,
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\nthe daemon's log:\n${await daemonLog()}`);
      });
      kubelet.close();
      kubelet = new FakeKubelet(loadKubeletProtos());
      draEndpoint = await guest.relay(7002, DRA_SOCKET);
      await waitFor(
        "the daemon's NRI plugin to synchronize with containerd",
        async () =>
          (await daemonLog()).includes("synchronizing with the runtime") ? true : undefined,
        120_000,
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\nthe daemon's log:\n${await daemonLog()}`);
      });
    });
    // The registration socket is done with: the port now reaches containerd's CRI.
    const criSocket = path.join(workDir, "cri.sock");
    forwarder = await unixSocketForwarder(criSocket, await guest.relay(7001, CRI_SOCKET));
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
    const allocated = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }],
        config: [
          {
            requests: ["vf"],
            opaque: {
              driver: DRIVER,
              parameters: {
                apiVersion: API_VERSION,
                kind: "VfConfig",
                ifName: "net1",
                netAttachDefName: NETWORK,
              },
            },
          },
        ],
      },
    );
    const claim = { namespace, name: allocated.name, uid: allocated.uid };
    const prepared = await kubelet.prepare(draEndpoint, "v1", [claim], 120_000);
    const result = prepared.claims[claim.uid]!;
    if (result.error) throw new Error(`prepare failed: ${result.error}\n${await daemonLog()}`);
    const pci = pciOf(result.devices[0]!.device_name);
    const [hostName, ...others] = await netdevsOf(pci);
    expect(others).toEqual([]);
    const before = (await links()).find((link) => link.ifname === hostName)!;
    expect(before).toMatchObject({ parentbus: "pci", parentdev: pci });
    const mac = before.address;
    expect(await listing(CDI_ROOT)).toEqual([`${DRIVER}-vf_${claim.uid}.json`]);

    // The sandbox of the pod the claim is reserved for, as the kubelet asks for it.
    const pod = await client.request<{ metadata: { uid: string } }>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods/${allocated.podName}`,
    });
    const config: PodSandboxConfig = {
      metadata: { name: allocated.podName, uid: pod.metadata.uid, namespace, attempt: 0 },
      hostname: allocated.podName,
      linux: {
        security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    };
    const sandbox = await time("RunPodSandbox with the VF", () =>
      cri.runPodSandbox(config).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\nthe daemon's log:\n${await daemonLog()}`);
      }),
    );
    const netns = await sandboxNetns(sandbox);

    const inPod = await links(netns);
    const net1 = inPod.find((link) => link.ifname === "net1");
    expect(net1).toMatchObject({ parentbus: "pci", parentdev: pci, address: mac });
    expect(net1!.addr_info!.filter((a) => a.family === "inet")).toEqual([
      expect.objectContaining(ADDRESS),
    ]);
    const inHost = await links();
    expect(inHost.filter((link) => link.parentdev === pci)).toEqual([]);
    expect(inHost.map((link) => link.ifname)).not.toContain(hostName);

    const reported = await waitFor("networkData on the claim", async () => {
      const read = await client.request<ClaimStatus>({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`,
      });
      const device = read.status?.devices?.[0];
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
    const back = (await links()).filter((link) => link.parentdev === pci);
    expect(back.map((link) => ({ ifname: link.ifname, address: link.address }))).toEqual([
      { ifname: hostName, address: mac },
    ]);
    expect(back[0]!.addr_info ?? []).toEqual([]);
    expect(await netdevsOf(pci)).toEqual([hostName]);
    expect(await attachments()).toEqual({});
    await cri.removePodSandbox(sandbox);

    const unprepared = await kubelet.unprepare(draEndpoint, "v1", [claim]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
    expect(await listing(CDI_ROOT)).toEqual([]);
    expect(await listing(`${CNI_CACHE}/results`)).toEqual([]);
    expect(await netdevsOf(pci)).toEqual([hostName]);
  });
});
