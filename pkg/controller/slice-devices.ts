import { deviceFromAttributes } from "../devices/attributes.js";
import { isPfDevice, type Device, type PfDevice, type VfDevice } from "../devices/model.js";
import type { KubeObject } from "../../lib/kube/client.js";

/** A published device the controller could not read back; it is left out of conflict checks. */
export interface UnreadableDevice {
  slice: string;
  node: string;
  device: string;
  problem: string;
}

/** A device taint as read back from a slice (its time left out; every field checked). */
export interface PublishedTaint {
  key: string;
  value: string;
  effect: string;
}

export interface PublishedDevices {
  /** Node name → the VFs its pool publishes. */
  byNode: Map<string, VfDevice[]>;
  /**
   * Node name → the whole PFs its pool publishes (`--publish-pfs`), each with the addresses
   * of its VFs that the node publishes too; absent for a node without any.
   */
  pfsByNode: Map<string, PfDevice[]>;
  /** Node name → device name → its taints; only devices that have any. */
  taints: Map<string, Map<string, PublishedTaint[]>>;
  /** Pool name → the node that publishes it (what an allocation result names). */
  poolNodes: Map<string, string>;
  unreadable: UnreadableDevice[];
}

/** Taints read per device; the API allows a handful, more is not something to print. */
const MAX_TAINTS_PER_DEVICE = 16;
/** Longest taint key (prefix + name) and value kept; the API's limits are lower. */
const MAX_TAINT_TEXT = 320;

/** The part of a ResourceSlice read here; everything is checked, since it comes off the wire. */
export interface SliceFields {
  name: string;
  driver: string;
  nodeName: string;
  poolName: string;
  generation: number;
  devices: {
    name: string;
    attributes: Record<string, unknown>;
    capacity: Record<string, unknown>;
    taints: PublishedTaint[];
    /** What the device takes of the pool's counter sets (`consumesCounters`). */
    consumesCounters: CounterSet[];
  }[];
  /** The pool's counter sets this slice holds (`sharedCounters`). */
  sharedCounters: CounterSet[];
}

/** A counter set as read back: its name and each counter's whole-number value. */
export interface CounterSet {
  name: string;
  counters: Map<string, bigint>;
}

/** Counter sets read per slice or device, and counters per set; the API allows fewer. */
const MAX_COUNTER_SETS = 64;
const MAX_COUNTERS = 64;

/**
 * The VFs and whole PFs each node publishes, read back from the driver's ResourceSlices. Only the newest
 * generation of each pool counts: during a pool update, slices of the old generation may
 * still be listed, and consumers must never mix the two.
 */
export function publishedDevicesByNode(
  slices: Iterable<KubeObject>,
  driverName: string,
): PublishedDevices {
  const result: PublishedDevices = {
    byNode: new Map(),
    pfsByNode: new Map(),
    taints: new Map(),
    poolNodes: new Map(),
    unreadable: [],
  };
  for (const pool of newestPoolSlices(slices, driverName)) {
    for (const slice of pool) {
      result.poolNodes.set(slice.poolName, slice.nodeName);
      let devices = result.byNode.get(slice.nodeName);
      if (devices === undefined) {
        devices = [];
        result.byNode.set(slice.nodeName, devices);
      }
      for (const device of slice.devices) {
        const read = deviceFromAttributes(device.name, device.attributes, driverName);
        if (typeof read === "string") {
          result.unreadable.push({
            slice: slice.name,
            node: slice.nodeName,
            device: device.name,
            problem: read,
          });
          continue;
        }
        if (isPfDevice(read)) {
          const pfs = result.pfsByNode.get(slice.nodeName) ?? [];
          result.pfsByNode.set(slice.nodeName, pfs);
          pfs.push(read);
        } else devices.push(read);
        if (device.taints.length === 0) continue;
        let taints = result.taints.get(slice.nodeName);
        if (taints === undefined) {
          taints = new Map();
          result.taints.set(slice.nodeName, taints);
        }
        taints.set(device.name, device.taints);
      }
    }
  }
  for (const [node, pfs] of result.pfsByNode) {
    const vfs = result.byNode.get(node) ?? [];
    for (const pf of pfs) {
      pf.vfAddresses = vfs
        .filter((vf) => vf.pf.pciAddress === pf.pf.pciAddress)
        .sort((a, b) => a.vf.vfID - b.vf.vfID)
        .map((vf) => vf.vf.pciAddress);
    }
  }
  return result;
}

/** Node name → every device it publishes, VFs then whole PFs: what filters are applied to. */
export function allDevicesByNode(published: PublishedDevices): Map<string, Device[]> {
  return new Map(
    [...published.byNode].map(([node, vfs]) => [
      node,
      [...vfs, ...(published.pfsByNode.get(node) ?? [])],
    ]),
  );
}

/**
 * The readable slices of `driverName`, grouped by pool, keeping only each pool's newest
 * generation: during a pool update, slices of the old generation may still be listed, and
 * consumers must never mix the two. Pools and slices keep the order they were listed in.
 */
export function newestPoolSlices(
  slices: Iterable<KubeObject>,
  driverName: string,
): SliceFields[][] {
  const newestByPool = new Map<string, SliceFields[]>();
  for (const object of slices) {
    const slice = sliceFields(object);
    if (slice === undefined || slice.driver !== driverName) continue;
    const pool = `${slice.nodeName}/${slice.poolName}`;
    const kept = newestByPool.get(pool);
    const keptGeneration = kept?.[0]?.generation ?? -1;
    if (kept === undefined || slice.generation > keptGeneration) newestByPool.set(pool, [slice]);
    else if (slice.generation === keptGeneration) kept.push(slice);
  }
  return [...newestByPool.values()];
}

function sliceFields(object: KubeObject): SliceFields | undefined {
  const spec: unknown = (object as { spec?: unknown }).spec;
  if (!isRecord(spec) || !isRecord(spec["pool"])) return undefined;
  const { driver, nodeName, devices } = spec;
  const { name: poolName, generation } = spec["pool"];
  if (
    typeof driver !== "string" ||
    typeof nodeName !== "string" ||
    typeof poolName !== "string" ||
    typeof generation !== "number"
  ) {
    return undefined;
  }
  return {
    name: object.metadata?.name ?? "",
    driver,
    nodeName,
    poolName,
    generation,
    devices: (Array.isArray(devices) ? devices : []).flatMap((device: unknown) =>
      isRecord(device) && typeof device["name"] === "string"
        ? [
            {
              name: device["name"],
              attributes: isRecord(device["attributes"]) ? device["attributes"] : {},
              capacity: isRecord(device["capacity"]) ? device["capacity"] : {},
              taints: taintsOf(device["taints"]),
              consumesCounters: counterSetsOf(device["consumesCounters"], "counterSet"),
            },
          ]
        : [],
    ),
    sharedCounters: counterSetsOf(spec["sharedCounters"], "name"),
  };
}

/**
 * Well-formed counter sets (`sharedCounters` entries name theirs in `name`, a device's
 * `consumesCounters` in `counterSet`); a counter whose value is not a whole number of at
 * most 18 digits (ours are VF counts) is left out.
 */
function counterSetsOf(value: unknown, nameField: "name" | "counterSet"): CounterSet[] {
  if (!Array.isArray(value)) return [];
  return value.slice(0, MAX_COUNTER_SETS).flatMap((set: unknown) => {
    if (!isRecord(set) || typeof set[nameField] !== "string" || !isRecord(set["counters"])) {
      return [];
    }
    const counters = new Map<string, bigint>();
    for (const [name, counter] of Object.entries(set["counters"]).slice(0, MAX_COUNTERS)) {
      const quantity = isRecord(counter) ? counter["value"] : undefined;
      if (typeof quantity === "string" && /^\d{1,18}$/.test(quantity)) {
        counters.set(name, BigInt(quantity));
      }
    }
    return [{ name: set[nameField], counters }];
  });
}

/** The well-formed taints of a device, at most MAX_TAINTS_PER_DEVICE; others are skipped. */
function taintsOf(value: unknown): PublishedTaint[] {
  if (!Array.isArray(value)) return [];
  const text = (member: unknown) =>
    typeof member === "string" && member.length <= MAX_TAINT_TEXT ? member : undefined;
  return value.slice(0, MAX_TAINTS_PER_DEVICE).flatMap((taint: unknown) => {
    if (!isRecord(taint)) return [];
    const key = text(taint["key"]);
    const effect = text(taint["effect"]);
    const taintValue = taint["value"] === undefined ? "" : text(taint["value"]);
    return key === undefined || effect === undefined || taintValue === undefined
      ? []
      : [{ key, value: taintValue, effect }];
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
