import { createHash } from "node:crypto";
import { canonical } from "../../lib/util/canonical-json.js";
import type { ResourceSlice } from "./render.js";

/** A ResourceSlice as read back from the API server (only what the plan compares). */
export interface PublishedSlice {
  metadata: { name: string; uid?: string; resourceVersion?: string };
  spec: {
    driver: string;
    nodeName?: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    devices?: {
      name: string;
      attributes?: Record<string, unknown>;
      taints?: unknown[];
      consumesCounters?: unknown[];
    }[];
    sharedCounters?: unknown[];
  };
}

/**
 * What the publisher keeps of each slice it reads back: identity, pool and a digest of the
 * rest. The slices themselves (~100 KB of objects for 128 VFs) are not kept in memory.
 */
export interface KeptSlice {
  metadata: { name: string; uid?: string; resourceVersion?: string };
  pool: { name: string; generation: number; resourceSliceCount: number };
  /** Digest of what the plan compares: driver, node, pool name and size, devices, counter sets. */
  content: string;
}

export function keptSliceOf(slice: PublishedSlice): KeptSlice {
  const { name, uid, resourceVersion } = slice.metadata;
  return {
    metadata: {
      name,
      ...(uid !== undefined ? { uid } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    pool: slice.spec.pool,
    content: contentDigest(slice.spec),
  };
}

export interface SlicePlan {
  /** Generation every slice of the pool carries after the plan is applied. */
  generation: number;
  create: ResourceSlice[];
  /** Desired content plus the resourceVersion of the object it replaces. */
  update: { slice: ResourceSlice; resourceVersion: string | undefined }[];
  delete: KeptSlice[];
}

/**
 * Decides the writes that turn the published slices of one pool into the desired ones.
 * Unchanged content costs nothing. Any change bumps the pool generation and rewrites
 * every slice of the pool, as the API requires ("whenever a driver changes something
 * about one or more of the resources in a pool, it must change the generation in all
 * ResourceSlices"), so consumers never mix old and new slices; stale slices are deleted.
 */
export function planSlices(
  desired: readonly ResourceSlice[],
  published: readonly KeptSlice[],
): SlicePlan {
  const current = new Map(published.map((slice) => [slice.metadata.name, slice]));
  const generations = published.map((slice) => slice.pool.generation);
  const maxGeneration = generations.length ? Math.max(...generations) : 0;
  const unchanged =
    published.length === desired.length &&
    new Set(generations).size === 1 &&
    desired.every((slice) => {
      const existing = current.get(slice.metadata.name);
      return existing !== undefined && contentDigest(slice.spec) === existing.content;
    });
  if (unchanged) return { generation: maxGeneration, create: [], update: [], delete: [] };

  const generation = maxGeneration + 1;
  const plan: SlicePlan = { generation, create: [], update: [], delete: [] };
  const wanted = new Set<string>();
  for (const slice of desired) {
    const next = withGeneration(slice, generation);
    wanted.add(slice.metadata.name);
    const existing = current.get(slice.metadata.name);
    if (existing)
      plan.update.push({ slice: next, resourceVersion: existing.metadata.resourceVersion });
    else plan.create.push(next);
  }
  plan.delete = published.filter((slice) => !wanted.has(slice.metadata.name));
  return plan;
}

function withGeneration(slice: ResourceSlice, generation: number): ResourceSlice {
  return { ...slice, spec: { ...slice.spec, pool: { ...slice.spec.pool, generation } } };
}

/**
 * Digest of driver, node, pool name and size, devices (attributes, taints, counters
 * consumed) and counter sets — generation aside. The server omits empty lists; so does the
 * renderer, and both sides are read the same way here.
 */
function contentDigest(spec: PublishedSlice["spec"]): string {
  const nonEmpty = (key: string, list: unknown[] | undefined) =>
    list !== undefined && list.length > 0 ? { [key]: list } : {};
  const content = {
    driver: spec.driver,
    nodeName: spec.nodeName ?? null,
    pool: { name: spec.pool.name, resourceSliceCount: spec.pool.resourceSliceCount },
    sharedCounters: spec.sharedCounters ?? [],
    devices: (spec.devices ?? []).map(({ name, attributes, taints, consumesCounters }) => ({
      name,
      attributes: attributes ?? {},
      ...nonEmpty("taints", taints),
      ...nonEmpty("consumesCounters", consumesCounters),
    })),
  };
  return createHash("sha256").update(canonical(content)).digest("hex");
}

/**
 * Whether the server stored a slice without the counters we sent: what kube-apiserver does
 * with `sharedCounters` and `consumesCounters` while DRAPartitionableDevices is off (it
 * drops the fields on write instead of refusing the slice).
 */
export function countersDropped(sent: ResourceSlice, stored: PublishedSlice): boolean {
  const sentSets = (sent.spec.sharedCounters ?? []).length > 0;
  const sentConsumption = (sent.spec.devices ?? []).some(
    (device) => (device.consumesCounters ?? []).length > 0,
  );
  const storedSets = (stored.spec.sharedCounters ?? []).length > 0;
  const storedConsumption = (stored.spec.devices ?? []).some(
    (device) => (device.consumesCounters ?? []).length > 0,
  );
  return (sentSets && !storedSets) || (sentConsumption && !storedConsumption);
}
