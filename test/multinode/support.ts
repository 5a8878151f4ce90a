/**
 * What the multi-node cases share on top of the end-to-end suite's support: the nodes of
 * env.json, what each publishes, what each has prepared, and pods pinned or spread.
 */
import fs from "node:fs";
import { isNotFound, type KubeObject } from "../../lib/kube/client.js";
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
  if (nodes.length < 2) throw new Error(`the multi-node suite needs a cluster of several nodes, found ${nodes.length}`);
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

/** Waits until the object is gone (404). */
export async function waitGone(what: string, apiPath: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `${what} to be gone`,
    async () => {
      try {
        await apiClient().request({ method: "GET", path: apiPath });
        return undefined;
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
    },
    timeoutMs,
  );
}
