import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { inject } from "vitest";
import { parse } from "yaml";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { KubeClient, isNotFound, type KubeObject } from "../../lib/kube/client.js";
export { createReadyNode } from "../support/nodes.js";

export const repoRoot = path.resolve(import.meta.dirname, "../..");

export function testClient(): KubeClient {
  return KubeClient.load(inject("kubeconfig"));
}

/** A short random suffix so tests sharing one control plane never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
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
    await sleep(100);
  }
}

export async function deleteIgnoringMissing(client: KubeClient, objectPath: string): Promise<void> {
  try {
    await client.request({ method: "DELETE", path: objectPath, query: { gracePeriodSeconds: 0 } });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

export { createNamespace } from "../support/namespaces.js";

/** Creates an object unless one of that name exists (cluster-wide fixtures such as the DeviceClass). */
export async function createIfMissing(
  client: KubeClient,
  collectionPath: string,
  object: KubeObject,
): Promise<void> {
  try {
    await client.request({ method: "POST", path: collectionPath, body: object });
  } catch (error) {
    if (!(error instanceof Error && "status" in error && error.status === 409)) throw error;
  }
}

export function loadManifest(relativePath: string): KubeObject {
  return parse(fs.readFileSync(path.join(repoRoot, relativePath), "utf8")) as KubeObject;
}

interface PodWithClaims extends KubeObject {
  status?: { resourceClaimStatuses?: { name: string; resourceClaimName?: string }[] };
}
interface AllocatedClaim extends KubeObject {
  status?: { allocation?: unknown };
}

/**
 * A pod that never runs (there is no kubelet), pinned to `nodeName` by node selector so the
 * real scheduler places it there, with one claim named `net`.
 */
export async function createPinnedPod(
  client: KubeClient,
  pod: { namespace: string; nodeName: string; name: string },
  claim: { resourceClaimName: string } | { resourceClaimTemplateName: string },
): Promise<void> {
  await client.request({
    method: "POST",
    path: `/api/v1/namespaces/${pod.namespace}/pods`,
    body: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: pod.name },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": pod.nodeName },
        containers: [
          {
            name: "app",
            image: "registry.invalid/never-pulled",
            resources: { claims: [{ name: "net" }] },
          },
        ],
        resourceClaims: [{ name: "net", ...claim }],
      },
    },
  });
}

/**
 * Creates a ResourceClaimTemplate and a pod pinned to `nodeName` using it, and waits until
 * the real scheduler allocated the claim. Returns the claim as the kubelet names it.
 */
export async function allocateForPod(
  client: KubeClient,
  target: { namespace: string; nodeName: string },
  devices: { requests: unknown[]; config?: unknown[]; constraints?: unknown[] },
): Promise<{ namespace: string; name: string; uid: string; podName: string }> {
  const { namespace, nodeName } = target;
  const name = uniqueName("pod");
  await client.request({
    method: "POST",
    path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates`,
    body: {
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaimTemplate",
      metadata: { name },
      spec: { spec: { devices } },
    },
  });
  await createPinnedPod(client, { namespace, nodeName, name }, { resourceClaimTemplateName: name });
  const claimName = await waitFor(`the claim of pod ${name}`, async () => {
    const pod = await client.request<PodWithClaims>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods/${name}`,
    });
    return pod.status?.resourceClaimStatuses?.[0]?.resourceClaimName;
  });
  const claim = await waitFor(`allocation of claim ${claimName}`, async () => {
    const read = await client.request<AllocatedClaim>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claimName}`,
    });
    return read.status?.allocation ? read : undefined;
  });
  return { namespace, name: claimName, uid: claim.metadata!.uid!, podName: name };
}

/** This driver's ResourceSlices for one node, as the API server has them now. */
export async function listNodeSlices<T extends KubeObject>(
  client: KubeClient,
  driver: string,
  nodeName: string,
): Promise<T[]> {
  const list = await client.request<{ items: T[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${driver},spec.nodeName=${nodeName}` },
  });
  return list.items;
}

/** Deletes a test namespace; its pods first, forced, since no kubelet confirms their end. */
export async function deleteTestNamespace(client: KubeClient, namespace: string): Promise<void> {
  await client
    .request({
      method: "DELETE",
      path: `/api/v1/namespaces/${namespace}/pods`,
      query: { gracePeriodSeconds: 0 },
    })
    .catch(() => undefined);
  await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}`);
}

/**
 * A DeviceClass `name` of the driver's VFs whose config makes every VF it hands out a
 * vfio-pci VF (a FromClass VfConfig).
 */
export async function createVfioDeviceClass(
  client: KubeClient,
  name: string,
  driverName = "sriovnetwork.openshift.io",
): Promise<void> {
  await client.request({
    method: "POST",
    path: "/apis/resource.k8s.io/v1/deviceclasses",
    body: {
      apiVersion: "resource.k8s.io/v1",
      kind: "DeviceClass",
      metadata: { name },
      spec: {
        selectors: [{ cel: { expression: `device.driver == "${driverName}"` } }],
        config: [
          {
            opaque: {
              driver: driverName,
              parameters: { apiVersion: API_VERSION, kind: "VfConfig", driver: "vfio-pci" },
            },
          },
        ],
      },
    },
  });
}

interface PodScheduling extends KubeObject {
  status?: { conditions?: { type: string; status: string; message?: string }[] };
}

/**
 * What the real scheduler did with a pod whose claim it had to allocate: "allocated" once
 * the claim has an allocation, "refused" once the pod's PodScheduled condition is False
 * because the claim cannot be allocated (unschedulable, or an error of the DRA filter: a CEL
 * runtime error, a constraint an "All" request cannot meet). A refusal
 * for another reason (the claim not seen yet) is waited past: the scheduler retries.
 */
export async function schedulingOutcome(
  client: KubeClient,
  namespace: string,
  podName: string,
  claimName: string,
  timeoutMs = 60_000,
): Promise<{ outcome: "allocated" } | { outcome: "refused"; message: string }> {
  let seen = "no PodScheduled condition";
  return waitFor(
    `the scheduler to allocate or refuse the claim of pod ${podName}`,
    async () => {
      const claim = await client.request<AllocatedClaim>({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claimName}`,
      });
      if (claim.status?.allocation) return { outcome: "allocated" as const };
      const pod = await client.request<PodScheduling>({
        method: "GET",
        path: `/api/v1/namespaces/${namespace}/pods/${podName}`,
      });
      const condition = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
      const message = condition?.message ?? "";
      if (condition !== undefined) seen = `PodScheduled=${condition.status}: ${message}`;
      return condition?.status === "False" &&
        /cannot allocate all claims|"DynamicResources" filter plugin/.test(message)
        ? { outcome: "refused" as const, message }
        : undefined;
    },
    timeoutMs,
  ).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)} (last: ${seen})`);
  });
}
