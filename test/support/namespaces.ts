import type { KubeClient } from "../../lib/kube/client.js";

// Free of vitest, so the benchmarks (built into dist/ with tsconfig.build.json) use it too.

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.request({
    method: "POST",
    path: "/api/v1/namespaces",
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name } },
  });
}
