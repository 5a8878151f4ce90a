import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CdiSpecStore } from "../../lib/cdi/store.js";
import { minimumCdiVersion, qualifiedDeviceName, type CdiSpec } from "../../lib/cdi/spec.js";
import { CriClient, type ContainerConfig, type PodSandboxConfig } from "../support/cri/client.js";
import { mountsUnder, processAlive, processesMentioning } from "../support/cri/containerd.js";
import {
  newStateDir,
  runtimeDown,
  runtimeRestart,
  runtimeTitle,
  runtimeUp,
  testRuntime,
  type RuntimeEnv,
} from "../support/cri/runtime.js";

const CDI_KIND = "sriovnetwork.openshift.io/vf";
const runtime = testRuntime();

/** Whether `ip` lies in the IPv4 `cidr`. */
function inSubnet(ip: string, cidr: string): boolean {
  const toNumber = (address: string) =>
    address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toNumber(ip) / size) === Math.floor(toNumber(base!) / size);
}

/**
 * A real containerd 2.x (hack/containerd.sh), or CRI-O with DRA_SRIOV_RUNTIME=crio
 * (hack/crio.sh), driven through CRI the way the kubelet drives it: pods on the primary
 * bridge network, containers from our locally built images, CDI injection from the spec
 * dir our driver writes to, and the NRI socket our NRI plugin connects to. Nothing is
 * pulled.
 */
describe(`${runtimeTitle(runtime)} through CRI`, () => {
  let stateDir: string;
  let env: RuntimeEnv;
  let cri: CriClient;
  let pods: string[] = [];

  beforeAll(() => {
    stateDir = newStateDir();
    env = runtimeUp(runtime, stateDir);
    cri = new CriClient(env.criSocket);
  });

  afterAll(() => {
    cri?.close();
    // Idempotent: a no-op when the last test already took it down.
    if (stateDir) runtimeDown(runtime, stateDir);
  });

  /**
   * As the kubelet sends them for a pod without host namespaces or shareProcessNamespace
   * (which CRI-O cannot run here: docs/compatibility.md).
   */
  const namespaceOptions = { network: "POD", pid: "CONTAINER", ipc: "POD" } as const;

  function podConfig(name: string): PodSandboxConfig {
    return {
      metadata: { name, uid: randomUUID(), namespace: "dra-sriov-test", attempt: 0 },
      hostname: name,
      labels: { "dra-sriov-test": name },
      linux: { security_context: { namespace_options: namespaceOptions } },
    };
  }

  async function runPod(name: string): Promise<{ id: string; config: PodSandboxConfig }> {
    const config = podConfig(name);
    const id = await cri.runPodSandbox(config);
    pods.push(id);
    return { id, config };
  }

  function busybox(name: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
    return {
      metadata: { name },
      image: { image: env.images.busybox },
      // Ends on SIGTERM (a plain sleep as PID 1 ignores it: CRI-O's StopPodSandbox then
      // waits out the call's deadline).
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
      // The pod's namespaces, as the kubelet sends them.
      linux: { security_context: { namespace_options: namespaceOptions } },
      ...extra,
    };
  }

  async function startBusybox(
    pod: { id: string; config: PodSandboxConfig },
    name: string,
    extra: Partial<ContainerConfig> = {},
  ): Promise<string> {
    const id = await cri.createContainer(pod.id, busybox(name, extra), pod.config);
    await cri.startContainer(id);
    return id;
  }

  /**
   * The processes that keep containers running without the runtime: containerd's shims
   * (their command line names its socket) or CRI-O's conmon (it names the state dir).
   */
  function monitors(): number[] {
    const needle = runtime === "crio" ? "conmon" : "containerd-shim";
    return processesMentioning(`${env.stateDir}/`).filter(
      (pid) => pid !== env.pid && processesMentioning(needle).includes(pid),
    );
  }

  async function removePod(id: string): Promise<void> {
    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
    pods = pods.filter((pod) => pod !== id);
  }

  it("serves CRI v1 with our images and nothing else", async () => {
    const version = await cri.version();
    expect(version.runtime_name).toBe(runtime === "crio" ? "cri-o" : "containerd");
    expect(version.runtime_api_version).toBe("v1");
    // CRI-O reports its version without the v.
    expect(`v${version.runtime_version.replace(/^v/, "")}`).toBe(env.version);

    const images = await cri.listImages();
    const tags = images.flatMap((image) => image.repo_tags).sort();
    expect(tags).toEqual([env.images.busybox, env.images.pause].sort());
    // The runtime pins the sandbox image it is configured with: ours.
    expect((await cri.imageStatus(env.images.pause))?.pinned).toBe(true);
    expect(await cri.imageStatus("localhost/dra-sriov/absent:local")).toBeNull();
  });

  it("runs a pod on the primary network and execs in its busybox container", async () => {
    const pod = await runPod("network");
    const status = (await cri.podSandboxStatus(pod.id)).status!;
    expect(status.state).toBe("SANDBOX_READY");
    expect(status.linux?.namespaces?.options).toEqual({
      network: "POD",
      pid: "CONTAINER",
      ipc: "POD",
      target_id: "",
    });
    const podIP = status.network!.ip;
    expect(inSubnet(podIP, env.subnet)).toBe(true);
    expect(podIP).not.toBe(env.gateway);

    // ping needs NET_RAW: containerd's default capabilities have it, CRI-O's do not, so the
    // container asks for it as a pod's securityContext.capabilities.add would.
    const container = await startBusybox(pod, "shell", {
      linux: {
        security_context: {
          namespace_options: namespaceOptions,
          capabilities: { add_capabilities: ["NET_RAW"] },
        },
      },
    });
    expect((await cri.containerStatus(container)).status?.state).toBe("CONTAINER_RUNNING");

    const addr = await cri.execSync(container, ["ip", "-4", "addr", "show", "dev", "eth0"]);
    expect(addr.exitCode).toBe(0);
    expect(addr.stdout).toContain(`inet ${podIP}/${env.subnet.split("/")[1]}`);
    // The pod's netns is wired to the bridge: the host answers on the gateway address.
    const ping = await cri.execSync(container, ["ping", "-c", "1", "-W", "5", env.gateway]);
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);
    // A failing command reports its exit code, not an RPC error.
    expect((await cri.execSync(container, ["sh", "-c", "exit 7"])).exitCode).toBe(7);

    await cri.stopContainer(container, 0);
    const stopped = (await cri.containerStatus(container)).status!;
    expect(stopped.state).toBe("CONTAINER_EXITED");
    await cri.removeContainer(container);
    await removePod(pod.id);
    expect((await cri.listPodSandbox()).map((p) => p.id)).not.toContain(pod.id);
    // Its rootfs, shm and network namespace are unmounted with it.
    expect(mountsUnder(env.stateDir).filter((m) => m.includes(pod.id))).toEqual([]);
  });

  it("injects CDI devices named in CDI_devices and in cdi.k8s.io annotations", async () => {
    const claimUid = randomUUID();
    const spec: Omit<CdiSpec, "cdiVersion"> = {
      kind: CDI_KIND,
      devices: [
        {
          name: `${claimUid}-field`,
          containerEdits: {
            env: ["DRA_SRIOV_TEST_FIELD=from-cdi-devices"],
            deviceNodes: [{ path: "/dev/dra-sriov-test", hostPath: "/dev/null" }],
          },
        },
        {
          name: `${claimUid}-annotation`,
          containerEdits: { env: ["DRA_SRIOV_TEST_ANNOTATION=from-annotation"] },
        },
      ],
    };
    // Written the way the driver writes its specs, into the dir the runtime reads.
    const store = new CdiSpecStore(env.cdiDirs[0]!, CDI_KIND);
    store.write(claimUid, { cdiVersion: minimumCdiVersion(spec), ...spec });
    try {
      const pod = await runPod("cdi");
      const byField = await startBusybox(pod, "by-field", {
        CDI_devices: [{ name: qualifiedDeviceName(CDI_KIND, `${claimUid}-field`) }],
      });
      const byAnnotation = await startBusybox(pod, "by-annotation", {
        annotations: {
          "cdi.k8s.io/dra-sriov-test": qualifiedDeviceName(CDI_KIND, `${claimUid}-annotation`),
        },
      });

      const fieldEnv = (await cri.execSync(byField, ["env"])).stdout.split("\n");
      expect(fieldEnv).toContain("DRA_SRIOV_TEST_FIELD=from-cdi-devices");
      expect(fieldEnv.some((line) => line.startsWith("DRA_SRIOV_TEST_ANNOTATION="))).toBe(false);
      // The device node is there, with /dev/null's numbers (char 1, 3).
      const node = await cri.execSync(byField, ["stat", "-c", "%F %t:%T", "/dev/dra-sriov-test"]);
      expect(node.stdout.trim()).toBe("character special file 1:3");

      const annotationEnv = (await cri.execSync(byAnnotation, ["env"])).stdout.split("\n");
      expect(annotationEnv).toContain("DRA_SRIOV_TEST_ANNOTATION=from-annotation");
      expect(annotationEnv.some((line) => line.startsWith("DRA_SRIOV_TEST_FIELD="))).toBe(false);

      // A device no spec describes fails the container, not silently ignored.
      await expect(
        cri.createContainer(
          pod.id,
          busybox("unknown-device", {
            CDI_devices: [{ name: qualifiedDeviceName(CDI_KIND, `${claimUid}-absent`) }],
          }),
          pod.config,
        ),
      ).rejects.toThrow(/unresolvable CDI devices/);

      await removePod(pod.id);
    } finally {
      store.remove(claimUid);
    }
  });

  it("listens for NRI plugins on the socket in env.json", async () => {
    expect(env.nriSocket).toBe(path.join(env.stateDir, "nri/nri.sock"));
    expect(fs.statSync(env.nriSocket).isSocket()).toBe(true);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(env.nriSocket);
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", reject);
    });
  });

  it("restarts the runtime alone, after a crash too, and keeps the pods running", async () => {
    const pod = await runPod("survivor");
    const container = await startBusybox(pod, "sleeper");
    const podIP = (await cri.podSandboxStatus(pod.id)).status!.network!.ip;
    const shims = monitors();
    expect(shims.length).toBeGreaterThan(0);

    for (const kill of [true, false]) {
      const before = env.pid;
      env = await runtimeRestart(runtime, stateDir, { kill });
      expect(env.pid).not.toBe(before);
      expect(processAlive(before)).toBe(false);
      expect(shims.every(processAlive)).toBe(true);
      const status = (await cri.podSandboxStatus(pod.id)).status!;
      expect(status.state).toBe("SANDBOX_READY");
      expect(status.network!.ip).toBe(podIP);
      expect((await cri.containerStatus(container)).status?.state).toBe("CONTAINER_RUNNING");
      expect((await cri.execSync(container, ["true"])).exitCode).toBe(0);
    }
    await removePod(pod.id);
  });

  it("down removes running pods, stops every process and leaves nothing behind", async () => {
    const pod = await runPod("left-running");
    await startBusybox(pod, "sleeper");
    const shims = monitors();
    expect(shims.length).toBeGreaterThan(0);
    expect(mountsUnder(env.stateDir).length).toBeGreaterThan(0);
    expect(fs.existsSync(`/sys/class/net/${env.bridge}`)).toBe(true);

    cri.close();
    runtimeDown(runtime, stateDir);
    pods = [];

    expect(processAlive(env.pid)).toBe(false);
    expect(shims.filter(processAlive)).toEqual([]);
    expect(processesMentioning(env.stateDir)).toEqual([]);
    expect(mountsUnder(env.stateDir)).toEqual([]);
    expect(fs.existsSync(env.stateDir)).toBe(false);
    expect(fs.existsSync(`${env.stateDir}.lock`)).toBe(false);
    expect(fs.existsSync(`/sys/class/net/${env.bridge}`)).toBe(false);
    const cniResults = "/var/lib/cni/results";
    const cached = fs.existsSync(cniResults) ? fs.readdirSync(cniResults) : [];
    expect(cached.filter((name) => name.startsWith(`${env.cniNetwork}-`))).toEqual([]);
    // Where each runtime puts a pod that names no cgroup parent.
    const cgroup = runtime === "crio" ? `crio-${pod.id}` : `k8s.io/${pod.id}`;
    for (const hierarchy of ["memory", "pids", "unified"]) {
      expect(fs.existsSync(`/sys/fs/cgroup/${hierarchy}/${cgroup}`)).toBe(false);
    }
  });
});
