import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Claim } from "../support.js";
import {
  apiClient,
  deleteNamespace,
  getPod,
  preparedClaims,
  waitFor,
  type Condition,
} from "../support.js";

const NS = "e2e-unschedulable";

/** More VFs than the node has: the scheduler says why, and nothing reaches the node. */
describe("a pod asking for more VFs than the node has", () => {
  beforeAll(async () => {
    await deleteNamespace(NS);
    const client = apiClient();
    await client.request({
      method: "POST",
      path: "/api/v1/namespaces",
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
    });
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${NS}/resourceclaimtemplates`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaimTemplate",
        metadata: { name: "sixteen" },
        spec: {
          spec: {
            devices: {
              // 16 VFs; the node publishes 15.
              requests: [
                {
                  name: "vfs",
                  exactly: { deviceClassName: "sriovnetwork.openshift.io", count: 16 },
                },
              ],
            },
          },
        },
      },
    });
    await client.request({
      method: "POST",
      path: `/api/v1/namespaces/${NS}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "greedy" },
        spec: {
          containers: [
            {
              name: "app",
              image: "localhost/dra-sriov/busybox:local",
              command: ["sleep", "86400"],
              resources: { claims: [{ name: "vfs" }] },
            },
          ],
          resourceClaims: [{ name: "vfs", resourceClaimTemplateName: "sixteen" }],
        },
      },
    });
  });

  afterAll(async () => {
    await deleteNamespace(NS);
  });

  it("stays Pending with the scheduler's reason, its claim unallocated", async () => {
    const scheduled = await waitFor("the scheduler's verdict", async () => {
      const pod = await getPod(NS, "greedy");
      return pod.status?.conditions?.find((c: Condition) => c.type === "PodScheduled");
    });
    expect(scheduled).toMatchObject({ status: "False", reason: "Unschedulable" });
    // 1.34's allocator searches until its time limit before it gives up on this claim.
    expect(scheduled.message).toMatch(
      /cannot allocate all claims|timed out trying to allocate devices/,
    );
    const pod = await getPod(NS, "greedy");
    expect(pod.status?.phase).toBe("Pending");
    expect(pod.spec?.nodeName).toBeUndefined();
    const claims = await apiClient().request<{ items: Claim[] }>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${NS}/resourceclaims`,
    });
    for (const claim of claims.items) expect(claim.status?.allocation).toBeUndefined();
    expect(preparedClaims()).toEqual({});
  });
});
