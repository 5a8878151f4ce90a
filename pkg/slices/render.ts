import { deviceAttributes, type AttributeValue } from "../devices/attributes.js";
import { isPfDevice, type Device, type PfDevice } from "../devices/model.js";
import { compare, DEFAULT_PUBLISH_ORDER, publishOrder, type PublishOrder } from "./order.js";

/** API limit on devices per ResourceSlice. */
export const MAX_DEVICES_PER_SLICE = 128;
/** Lower limit the API applies once devices carry taints or consume counters. */
export const MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS = 64;
/** API limit on counter sets (`sharedCounters`) per ResourceSlice. */
export const MAX_COUNTER_SETS_PER_SLICE = 8;
/** The one counter of a PF's counter set: one unit per VF, all of them for the whole PF. */
export const VF_COUNTER = "vfs";

/** A `resource.k8s.io/v1` Counter: a quantity, which we always write as a whole number. */
export interface Counter {
  value: string;
}

/** A `resource.k8s.io/v1` CounterSet; ours is named after the PF device. */
export interface CounterSet {
  name: string;
  counters: Record<string, Counter>;
}

/** A `resource.k8s.io/v1` DeviceCounterConsumption. */
export interface CounterConsumption {
  counterSet: string;
  counters: Record<string, Counter>;
}

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
  /** Only for the VFs and the PF of a PF published whole. */
  consumesCounters?: CounterConsumption[];
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
    /** Exactly one of devices and sharedCounters (the API forbids both, even an empty list). */
    devices?: SliceDevice[];
    sharedCounters?: CounterSet[];
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
  /** The order the scheduler meets the devices in (see publishOrder); spread by default. */
  order?: PublishOrder;
}

/**
 * Renders a node's devices as the slices of one pool named after the node.
 * Pure and deterministic: devices in publish order (`order`), split into slices of at most
 * `maxDevicesPerSlice` (64 while any device of the pool has a taint or consumes counters,
 * the API's limit then), slice names derived from node, driver and index. The scheduler
 * reads a pool's slices sorted by name (`-10` before `-2`), so the chunks of the order go to
 * the device slices in that name order: it meets the devices in publish order whatever the
 * number of slices. A node with no devices still gets one empty slice, so consumers can
 * tell "no devices" from "not published".
 *
 * A whole PF (PfDevice) with VFs makes the pool partitionable: a counter set named after
 * the PF holds `vfs` = its VF count, each of its VFs consumes 1 and the PF consumes all, so
 * the scheduler never gives out the PF together with any of its VFs. Counter sets go in
 * slices of their own (at most 8 each), ahead of the device slices.
 */
export function renderSlices(devices: readonly Device[], options: RenderOptions): ResourceSlice[] {
  const requested = options.maxDevicesPerSlice ?? MAX_DEVICES_PER_SLICE;
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_DEVICES_PER_SLICE) {
    throw new Error(`maxDevicesPerSlice must be 1..${MAX_DEVICES_PER_SLICE}, got ${requested}`);
  }
  const taints = options.taints ?? new Map<string, readonly DeviceTaint[]>();
  const counterSets = counterSetsOf(devices);
  const tainted = devices.some((device) => (taints.get(device.name)?.length ?? 0) > 0);
  const limit =
    tainted || counterSets.byPf.size > 0
      ? Math.min(requested, MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS)
      : requested;
  const ordered = publishOrder(devices, options.order ?? DEFAULT_PUBLISH_ORDER);
  const specs: Pick<ResourceSlice["spec"], "devices" | "sharedCounters">[] = [];
  const sets = [...counterSets.byPf.values()];
  for (let start = 0; start < sets.length; start += MAX_COUNTER_SETS_PER_SLICE) {
    specs.push({ sharedCounters: sets.slice(start, start + MAX_COUNTER_SETS_PER_SLICE) });
  }
  const sliceDevice = (device: Device): SliceDevice => {
    const deviceTaints = taints.get(device.name) ?? [];
    const consumes = counterSets.consumption(device);
    return {
      name: device.name,
      attributes: deviceAttributes(device, options.driverName),
      ...(deviceTaints.length > 0 ? { taints: [...deviceTaints] } : {}),
      ...(consumes === undefined ? {} : { consumesCounters: [consumes] }),
    };
  };
  const chunks: SliceDevice[][] = [];
  for (let start = 0; start < ordered.length; start += limit) {
    chunks.push(ordered.slice(start, start + limit).map(sliceDevice));
  }
  const first = specs.length;
  const byName = chunks.map((_, chunk) => first + chunk);
  byName.sort((a, b) =>
    compare(
      sliceName(options.nodeName, options.driverName, a),
      sliceName(options.nodeName, options.driverName, b),
    ),
  );
  for (const [chunk, index] of byName.entries()) specs[index] = { devices: chunks[chunk]! };
  if (specs.length === 0) specs.push({ devices: [] });
  return specs.map((content, index) => ({
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceSlice",
    metadata: { name: sliceName(options.nodeName, options.driverName, index) },
    spec: {
      driver: options.driverName,
      nodeName: options.nodeName,
      pool: {
        name: options.nodeName,
        generation: options.generation,
        resourceSliceCount: specs.length,
      },
      ...content,
    },
  }));
}

/**
 * One counter set per published whole PF that has VFs (a PF without VFs shares nothing),
 * keyed by the PF's PCI address, and what each device consumes from it.
 */
function counterSetsOf(devices: readonly Device[]): {
  byPf: Map<string, CounterSet>;
  consumption: (device: Device) => CounterConsumption | undefined;
} {
  const pfs: PfDevice[] = devices.filter(isPfDevice).filter((pf) => pf.vfAddresses.length > 0);
  pfs.sort((a, b) => compare(a.pf.pciAddress, b.pf.pciAddress));
  const takenVfs = new Set(pfs.flatMap((pf) => pf.vfAddresses));
  const byPf = new Map(
    pfs.map((pf): [string, CounterSet] => [
      pf.pf.pciAddress,
      { name: pf.name, counters: vfCounter(pf.vfAddresses.length) },
    ]),
  );
  const consumption = (device: Device): CounterConsumption | undefined => {
    const set = byPf.get(device.pf.pciAddress);
    if (set === undefined) return undefined;
    if (isPfDevice(device)) return { counterSet: set.name, counters: set.counters };
    // A VF the PF does not take along (one discovery did not list with it) shares nothing.
    return takenVfs.has(device.vf.pciAddress)
      ? { counterSet: set.name, counters: vfCounter(1) }
      : undefined;
  };
  return { byPf, consumption };
}

function vfCounter(value: number): Record<string, Counter> {
  return { [VF_COUNTER]: { value: String(value) } };
}

const MAX_NAME_LENGTH = 253;

/** `<node>-<driver>-<index>`, shortened with a stable hash when the node name is very long. */
export function sliceName(nodeName: string, driverName: string, index: number): string {
  const name = `${nodeName}-${driverName}-${index}`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  const suffix = `-${fnv1a(nodeName)}-${driverName}-${index}`;
  return nodeName.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/[-.]+$/, "") + suffix;
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
