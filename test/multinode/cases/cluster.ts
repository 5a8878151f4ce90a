import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { builtinProfiles, type BuiltinProfileName } from "../../../pkg/emulator/profiles.js";
import type { KubeObject } from "../../../lib/kube/client.js";
import { apiClient, clusterEnv, processAlive } from "../../e2e/support.js";
import { attribute, clusterNodes, publishedDevices } from "../support.js";

interface Node extends KubeObject {
  status?: {
    conditions?: { type: string; status: string }[];
    addresses?: { type: string; address: string }[];
  };
}

interface PluginPod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

/** The cluster itself: several nodes, each its own kubelet, containerd, host and plugin. */
describe("a local cluster of several nodes", () => {
  it("has every node Ready with its own kubelet, containerd and emulated host", async () => {
    const nodes = clusterNodes();
    expect(nodes.length).toBe(clusterEnv().nodeCount);
    expect(new Set(nodes.map((node) => node.profile)).size).toBe(nodes.length);
    for (const key of ["nodeIP", "hostRoot", "kubeletRootDir", "criEndpoint"] as const) {
      expect(new Set(nodes.map((node) => node[key])).size, key).toBe(nodes.length);
    }
    const kubeletPids = nodes.map((node) => node.pids.kubelet ?? null);
    expect(new Set(kubeletPids).size).toBe(nodes.length);
    for (const pid of kubeletPids) expect(processAlive(pid)).toBe(true);
    for (const node of nodes) {
      const object = await apiClient().request<Node>({
        method: "GET",
        path: `/api/v1/nodes/${node.name}`,
      });
      expect(object.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
      expect(object.status?.addresses).toContainEqual({ type: "InternalIP", address: node.nodeIP });
    }
  });

  it("runs one Ready node plugin pod per node", async () => {
    const env = clusterEnv();
    const pods = await apiClient().request<{ items: PluginPod[] }>({
      method: "GET",
      path: `/api/v1/namespaces/${env.driverNamespace}/pods`,
      query: { labelSelector: "app.kubernetes.io/component=node-plugin" },
    });
    expect(pods.items.map((pod) => pod.spec?.nodeName).sort()).toEqual(
      clusterNodes()
        .map((node) => node.name)
        .sort(),
    );
    for (const pod of pods.items) {
      expect(pod.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    }
  });

  it("publishes for each node the VFs of its own profile, and only those", async () => {
    for (const node of clusterNodes()) {
      const profile = builtinProfiles[node.profile as BuiltinProfileName];
      expect(profile, `profile ${node.profile}`).toBeDefined();
      const devices = await publishedDevices(node.name);
      // Every VF of the profile but those the host uses (an address on the host).
      const expected = profile.pfs.reduce(
        (sum, pf) => sum + pf.numVfs - (pf.hostUsedVfs ?? []).length,
        0,
      );
      expect(devices.length, `devices of ${node.name} (${node.profile})`).toBe(expected);
      // Each one a VF of this node's own emulated host.
      const ownVfs = fs
        .readdirSync(path.join(node.hostRoot, "sys/bus/pci/devices"))
        .filter((address) =>
          fs.existsSync(path.join(node.hostRoot, "sys/bus/pci/devices", address, "physfn")),
        )
        .map((address) => address.replace(/[:.]/g, "-"));
      expect(ownVfs).toEqual(expect.arrayContaining(devices.map((device) => device.name)));
      const pfNames = new Set(devices.map((device) => attribute(device, "PFName")));
      expect([...pfNames].sort()).toEqual(profile.pfs.map((pf) => pf.netdev).sort());
    }
  });
});
