/**
 * What the multi-node cases share on top of the end-to-end suite's support: the nodes of
 * env.json, what each publishes, what each has prepared, and pods pinned or spread.
 */
import fs from "node:fs";
import type { KubeObject } from "../../lib/kube/client.js";
import type { HostProfile } from "../../pkg/emulator/profile.js";
import { builtinProfiles, type BuiltinProfileName } from "../../pkg/emulator/profiles.js";
import {
  apiClient,
  clusterEnv,
  kubectl,
  readCheckpoint,
  waitFor,
  type ClusterNode,
} from "../e2e/support.js";

export function clusterNodes(): ClusterNode[] {
  const nodes = clusterEnv().nodes;
  if (nodes.length < 2)
    throw new Error(`the multi-node suite needs a cluster of several nodes, found ${nodes.length}`);
  return nodes;
}

export function nodeNamed(name: string): ClusterNode {
  const node = clusterNodes().find((candidate) => candidate.name === name);
  if (node === undefined) throw new Error(`no node ${name} in env.json`);
  return node;
}

export interface SliceDevice {
  name: string;
  attributes?: Record<string, { string?: string; int?: number; bool?: boolean; version?: string }>;
}

interface Slice extends KubeObject {
  spec: { driver: string; nodeName?: string; pool: { name: string }; devices?: SliceDevice[] };
}

/** The devices our driver publishes for a node now, over all its slices. */
export async function publishedDevices(node: string): Promise<SliceDevice[]> {
  const env = clusterEnv();
  const slices = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${node}` },
  });
  return slices.items.flatMap((slice) => slice.spec.devices ?? []);
}

/** A string attribute of a published device, in the driver's own domain. */
export function attribute(device: SliceDevice, name: string): string | undefined {
  return device.attributes?.[`${clusterEnv().driverName}/${name}`]?.string;
}

/** The claim UIDs a node's plugin holds prepared (its checkpoint). */
export function preparedOn(node: ClusterNode): string[] {
  return Object.keys(readCheckpoint(node.checkpointFile).entries);
}

/** CDI spec files of our driver on a node. */
export function cdiSpecsOn(node: ClusterNode): string[] {
  const env = clusterEnv();
  return readDir(node.cdiDir).filter((file) => file.startsWith(`${env.driverName}-`));
}

function readDir(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

export async function createNamespace(name: string): Promise<void> {
  await kubectl(["create", "namespace", name]);
}

export interface PodInfo extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

/** The pods of a namespace (optionally by label selector). */
export async function podsIn(namespace: string, selector?: string): Promise<PodInfo[]> {
  const list = await apiClient().request<{ items: PodInfo[] }>({
    method: "GET",
    path: `/api/v1/namespaces/${namespace}/pods`,
    query: selector === undefined ? {} : { labelSelector: selector },
  });
  return list.items;
}

export function isReady(pod: PodInfo): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/** Applies objects (as one kubectl List). */
export async function apply(objects: readonly object[]): Promise<void> {
  await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
}

/** The emulated profile of a node. */
export function profileOf(node: ClusterNode): HostProfile {
  if (!Object.hasOwn(builtinProfiles, node.profile)) {
    throw new Error(`node ${node.name} runs profile ${node.profile}, not a builtin one`);
  }
  return builtinProfiles[node.profile as BuiltinProfileName];
}

/** A claim template for one VF that `cel` picks, with an optional VfConfig. */
export function vfClaimTemplate(
  namespace: string,
  name: string,
  cel: string,
  vfConfig?: Record<string, unknown>,
): object {
  const driver = clusterEnv().driverName;
  return {
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceClaimTemplate",
    metadata: { name, namespace },
    spec: {
      spec: {
        devices: {
          requests: [
            {
              name: "vf",
              exactly: { deviceClassName: driver, selectors: [{ cel: { expression: cel } }] },
            },
          ],
          ...(vfConfig === undefined
            ? {}
            : {
                config: [
                  {
                    requests: ["vf"],
                    opaque: {
                      driver,
                      parameters: {
                        apiVersion: `${driver}/v1alpha1`,
                        kind: "VfConfig",
                        ...vfConfig,
                      },
                    },
                  },
                ],
              }),
        },
      },
    },
  };
}

/** CEL for a VF of the PF with this netdev name. */
export function onPf(pfName: string): string {
  return `device.attributes["${clusterEnv().driverName}"].PFName == "${pfName}"`;
}

/** A pod spec whose container sleeps holding the claim of `template`. */
export function podSpecWithClaim(template: string): Record<string, unknown> {
  return {
    terminationGracePeriodSeconds: 5,
    containers: [
      {
        name: "app",
        image: "localhost/dra-sriov/busybox:local",
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
        resources: { claims: [{ name: "vf" }] },
      },
    ],
    resourceClaims: [{ name: "vf", resourceClaimTemplateName: template }],
  };
}

export function pod(namespace: string, name: string, template: string): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: podSpecWithClaim(template),
  };
}

/** A Deployment of `replicas` pods, each with its own claim from `template`. */
export function deployment(
  namespace: string,
  name: string,
  template: string,
  replicas: number,
  spread: Record<string, unknown>,
): object {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...podSpecWithClaim(template),
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              labelSelector: { matchLabels: labels },
              ...spread,
            },
          ],
        },
      },
    },
  };
}

interface ClaimObject extends KubeObject {
  status?: {
    allocation?: { devices?: { results?: { driver: string; pool: string; device: string }[] } };
  };
}

interface PodClaims extends PodInfo {
  status?: PodInfo["status"] & {
    resourceClaimStatuses?: { name: string; resourceClaimName?: string }[];
  };
}

/** The claim a pod got from its template (by the pod's claim name `vf`). */
export async function claimOf(namespace: string, podName: string): Promise<ClaimObject> {
  const name = await waitFor(`the claim of ${namespace}/${podName}`, async () => {
    const read = await apiClient().request<PodClaims>({
      method: "GET",
      path: `/api/v1/namespaces/${namespace}/pods/${podName}`,
    });
    return read.status?.resourceClaimStatuses?.find((s) => s.name === "vf")?.resourceClaimName;
  });
  return apiClient().request<ClaimObject>({
    method: "GET",
    path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${name}`,
  });
}

/** The pools (our driver's: node names) a claim's allocation took devices from. */
export function allocatedPools(claim: ClaimObject): string[] {
  const driver = clusterEnv().driverName;
  return (claim.status?.allocation?.devices?.results ?? [])
    .filter((result) => result.driver === driver)
    .map((result) => result.pool);
}

/** Waits until no node's plugin holds any of these claims prepared. */
export async function waitUnprepared(claimUids: readonly string[]): Promise<void> {
  await waitFor(`claims ${claimUids.join(", ")} to be unprepared on every node`, () => {
    const held = clusterNodes().flatMap((node) =>
      preparedOn(node)
        .filter((uid) => claimUids.includes(uid))
        .map((uid) => `${uid} on ${node.name}`),
    );
    if (held.length > 0) throw new Error(`still prepared: ${held.join(", ")}`);
    return true;
  });
}

/** Waits until the namespace's pods of `selector` are `count`, all Ready. */
export async function waitPodsReady(
  namespace: string,
  selector: string,
  count: number,
): Promise<PodInfo[]> {
  return waitFor(
    `${count} Ready pods ${selector} in ${namespace}`,
    async () => {
      const pods = (await podsIn(namespace, selector)).filter(
        (p) =>
          (p.metadata as { deletionTimestamp?: string } | undefined)?.deletionTimestamp ===
          undefined,
      );
      return pods.length === count && pods.every(isReady) ? pods : undefined;
    },
    180_000,
  );
}
