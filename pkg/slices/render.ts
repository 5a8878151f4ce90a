import { deviceAttributes, type AttributeValue } from "../devices/attributes.js";
import type { VfDevice } from "../devices/model.js";

/** API limit on devices per ResourceSlice. */
export const MAX_DEVICES_PER_SLICE = 128;
/** Lower limit the API applies once devices carry taints or consume counters. */
export const MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS = 64;

/** A `resource.k8s.io/v1` DeviceTaint: the scheduler keeps claims off the device unless they tolerate it. */
export interface DeviceTaint {
  key: string;
  value: string;
  effect: "NoSchedule" | "NoExecute";
  /**
   * RFC 3339, whole seconds. Set by us, never left to the API server: a server-set time would
   * make every rendering differ from what is published and rewrite the pool forever.
   */
  timeAdded: string;
}

export interface SliceDevice {
  name: string;
  attributes: Record<string, AttributeValue>;
  /** Only when the device has any (an empty list would differ from the server's absent one). */
  taints?: DeviceTaint[];
}

/** A `resource.k8s.io/v1` ResourceSlice, as much of it as this driver writes. */
export interface ResourceSlice {
  apiVersion: "resource.k8s.io/v1";
  kind: "ResourceSlice";
  metadata: { name: string };
  spec: {
    driver: string;
    nodeName: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    devices: SliceDevice[];
  };
}

export interface RenderOptions {
  driverName: string;
  nodeName: string;
  /** Pool generation; bumped by the publisher whenever the pool's content changes. */
  generation: number;
  maxDevicesPerSlice?: number;
  /** Taints by device name (an unhealthy device's); none by default. */
  taints?: ReadonlyMap<string, readonly DeviceTaint[]>;
}

/**
 * Renders a node's devices as the slices of one pool named after the node.
 * Pure and deterministic: devices sorted by PCI address, split into slices of at most
 * `maxDevicesPerSlice` (64 while any device of the pool has a taint, the API's limit then),
 * slice names derived from node, driver and index. A node with no devices still gets one
 * empty slice, so consumers can tell "no devices" from "not published".
 */
export function renderSlices(
  devices: readonly VfDevice[],
  options: RenderOptions,
): ResourceSlice[] {
  const requested = options.maxDevicesPerSlice ?? MAX_DEVICES_PER_SLICE;
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_DEVICES_PER_SLICE) {
    throw new Error(`maxDevicesPerSlice must be 1..${MAX_DEVICES_PER_SLICE}, got ${requested}`);
  }
  const taints = options.taints ?? new Map<string, readonly DeviceTaint[]>();
  const tainted = devices.some((device) => (taints.get(device.name)?.length ?? 0) > 0);
  const limit = tainted
    ? Math.min(requested, MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS)
    : requested;
  const sorted = [...devices].sort((a, b) => compare(a.vf.pciAddress, b.vf.pciAddress));
  const chunks: VfDevice[][] = [];
  for (let start = 0; start < sorted.length; start += limit) {
    chunks.push(sorted.slice(start, start + limit));
  }
  if (chunks.length === 0) chunks.push([]);
  return chunks.map((chunk, index) => ({
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceSlice",
    metadata: { name: sliceName(options.nodeName, options.driverName, index) },
    spec: {
      driver: options.driverName,
      nodeName: options.nodeName,
      pool: {
        name: options.nodeName,
        generation: options.generation,
        resourceSliceCount: chunks.length,
      },
      devices: chunk.map((device) => {
        const deviceTaints = taints.get(device.name) ?? [];
        return {
          name: device.name,
          attributes: deviceAttributes(device, options.driverName),
          ...(deviceTaints.length > 0 ? { taints: [...deviceTaints] } : {}),
        };
      }),
    },
  }));
}

const MAX_NAME_LENGTH = 253;

/** `<node>-<driver>-<index>`, shortened with a stable hash when the node name is very long. */
export function sliceName(nodeName: string, driverName: string, index: number): string {
  const name = `${nodeName}-${driverName}-${index}`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  const suffix = `-${fnv1a(nodeName)}-${driverName}-${index}`;
  return nodeName.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/[-.]+$/, "") + suffix;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** 32-bit FNV-1a as 8 hex digits: short, stable, no crypto needed. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}
