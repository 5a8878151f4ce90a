import type { KubeClient, KubeObject } from "../../lib/kube/client.js";

// Free of vitest, so the benchmarks (built into dist/ with tsconfig.build.json) use it too.

/**
 * A Node as a plain API object. With no kubelet to report status, we set what the
 * scheduler needs: allocatable pods, and Ready so the node lifecycle controller does not taint it.
 */
export async function createReadyNode(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<KubeObject> {
  const node = await client.request<KubeObject>({
    method: "POST",
    path: "/api/v1/nodes",
    body: {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels } },
    },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const resources = { cpu: "8", memory: "16Gi", pods: "110" };
  await client.request({
    method: "PATCH",
    path: `/api/v1/nodes/${name}/status`,
    contentType: "application/merge-patch+json",
    body: {
      status: {
        capacity: resources,
        allocatable: resources,
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "test node",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
  });
  return node;
}
