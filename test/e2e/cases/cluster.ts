import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import {
  apiClient,
  clusterEnv,
  deleteNamespace,
  execIn,
  hostVfs,
  helm,
  processAlive,
  repoRoot,
  run,
  waitPodReady,
} from "../support.js";

/** Words that start a command line but are the shell's own, not programs to find on PATH. */
const SHELL_WORDS = new Set([
  "eval",
  "export",
  "cd",
  "for",
  "do",
  "done",
  "echo",
  "sleep",
  "until",
]);

/**
 * The programs the demos' READMEs type at the start of a command line in their `sh` blocks
 * (not paths such as `hack/local-cluster.sh`, nor the shell's own words).
 */
function demoReadmePrograms(): Map<string, string> {
  const programs = new Map<string, string>();
  const demoDir = path.join(repoRoot, "demo");
  const readmes = fs
    .readdirSync(demoDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join("demo", entry.name, "README.md"))
    .filter((file) => fs.existsSync(path.join(repoRoot, file)));
  for (const file of readmes) {
    const text = fs.readFileSync(path.join(repoRoot, file), "utf8");
    for (const block of text.matchAll(/^```(?:sh|bash)\n([\s\S]*?)^```/gm)) {
      let continued = false;
      for (const line of block[1]!.split("\n")) {
        const word = /^\s*([A-Za-z0-9_./-]+)/.exec(line)?.[1];
        if (!continued && word && !word.includes("/") && !SHELL_WORDS.has(word)) {
          programs.set(word, file);
        }
        continued = line.trimEnd().endsWith("\\");
      }
    }
  }
  return programs;
}

interface Node extends KubeObject {
  status?: {
    nodeInfo?: { kubeletVersion?: string; containerRuntimeVersion?: string };
    addresses?: { type: string; address: string }[];
  };
}

interface DriverPod extends KubeObject {
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    containers: {
      image: string;
      imagePullPolicy?: string;
      securityContext?: { privileged?: boolean; capabilities?: { add?: string[] } };
    }[];
  };
  status?: { phase?: string };
}

interface Slice extends KubeObject {
  spec: { driver: string; nodeName?: string; devices?: { name: string }[] };
}

/** The cluster itself: a real kubelet on containerd, the driver publishing the node's VFs. */
describe("the local cluster", () => {
  const namespace = "e2e-plain";

  afterAll(async () => {
    await deleteNamespace(namespace);
  });

  it("exports a PATH on which every program the demos' READMEs type is found", async () => {
    const programs = demoReadmePrograms();
    expect([...programs.keys()]).toEqual(expect.arrayContaining(["kubectl", "helm"]));
    // As a new user's shell: the line `up` prints for a running cluster, eval'ed over a
    // PATH of the system's directories only.
    const script = [
      'eval "$(bash "$0/hack/local-cluster.sh" up | tail -n 1)"',
      'for p in "$@"; do command -v "$p" >/dev/null || echo "missing: $p"; done',
    ].join("\n");
    const result = await run("bash", ["-c", script, repoRoot, ...programs.keys()], undefined, {
      PATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
      HOME: process.env["HOME"] ?? "/root",
      DRA_SRIOV_CLUSTER_STATE: clusterEnv().stateDir,
    });
    expect(result.code, result.stderr).toBe(0);
    const missing = result.stdout
      .split("\n")
      .filter((line) => line.startsWith("missing: "))
      .map((line) => `${line.slice(9)} (${programs.get(line.slice(9))})`);
    expect(missing).toEqual([]);
  });

  it("runs every part, with the node registered by a real kubelet on containerd", async () => {
    const env = clusterEnv();
    for (const [part, pid] of Object.entries(env.pids)) {
      expect(processAlive(pid ?? null), `${part} (pid ${pid})`).toBe(true);
    }
    const node = await apiClient().request<Node>({
      method: "GET",
      path: `/api/v1/nodes/${env.nodeName}`,
    });
    expect(node.status?.nodeInfo?.kubeletVersion).toBe(env.kubernetesVersion);
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toBe(
      `containerd://${env.containerdVersion.replace(/^v/, "")}`,
    );
    expect(node.status?.addresses).toContainEqual({ type: "InternalIP", address: env.nodeIP });
    // The driver registered with the kubelet through its plugin registry.
    const registry = path.join(env.kubeletRootDir, "plugins_registry");
    expect(fs.readdirSync(registry).some((file) => file.startsWith(env.driverName))).toBe(true);
  });

  it.runIf(clusterEnv().driverMode === "pods")(
    "runs the driver from its Helm release: the node plugin and controller as pods of the imported image, unprivileged",
    async () => {
      const env = clusterEnv();
      const release = JSON.parse(
        await helm(["status", env.helmRelease, "-n", env.driverNamespace, "-o", "json"]),
      ) as { info?: { status?: string } };
      expect(release.info?.status).toBe("deployed");
      const pods = await apiClient().request<{ items: DriverPod[] }>({
        method: "GET",
        path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
        query: { labelSelector: `app.kubernetes.io/instance=${env.helmRelease}` },
      });
      const byComponent = new Map(
        pods.items.map((pod) => [pod.metadata?.labels?.["app.kubernetes.io/component"], pod]),
      );
      for (const component of ["node-plugin", "controller"]) {
        const pod = byComponent.get(component);
        expect(pod?.status?.phase, component).toBe("Running");
        expect(pod?.spec?.nodeName).toBe(env.nodeName);
        const container = pod!.spec!.containers[0]!;
        expect(container.image).toBe(env.driverImage);
        expect(container.imagePullPolicy).toBe("Never");
        expect(container.securityContext?.privileged ?? false).toBe(false);
      }
      // The chart's defaults, not widened for the test cluster.
      expect(
        byComponent.get("node-plugin")!.spec!.containers[0]!.securityContext?.capabilities?.add,
      ).toEqual(["NET_ADMIN", "SYS_ADMIN"]);
      expect(byComponent.get("node-plugin")!.spec!.hostNetwork).toBe(true);
    },
  );

  it("publishes every VF of the emulated host except the one the host uses", async () => {
    const env = clusterEnv();
    const slices = await apiClient().request<{ items: Slice[] }>({
      method: "GET",
      path: "/apis/resource.k8s.io/v1/resourceslices",
      query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
    });
    const published = slices.items.flatMap((slice) => slice.spec.devices ?? []).map((d) => d.name);
    const vfs = [...(await hostVfs()).keys()];
    // X710 profile: 2 PFs × 8 VFs; VF 7 of ens1f1 holds an address on the host.
    expect(vfs).toHaveLength(16);
    expect(published.sort()).toEqual(
      vfs
        .filter((address) => address !== "0000:3b:0a.7")
        .map((address) => address.replace(/[:.]/g, "-"))
        .sort(),
    );
  });

  it("runs a pod without VFs on the primary network, and kubectl exec reaches it", async () => {
    const client = apiClient();
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
    });
    await client.request({
      method: "POST",
      path: `/api/v1/namespaces/${namespace}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "plain" },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "app",
              image: "localhost/dra-sriov/busybox:local",
              command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
            },
          ],
        },
      },
    });
    const pod = await waitPodReady(namespace, "plain");
    expect(pod.spec?.nodeName).toBe(clusterEnv().nodeName);
    const links = (await execIn(namespace, "plain", ["ip", "-o", "link"])).stdout;
    expect(links).toContain("eth0");
    expect(links).not.toContain("net1");
  });
});
