import type { NodeDevice } from "./input.js";

/** Why the scheduler cannot allocate a free device: a counter set others used up. */
export interface CounterBlock {
  counterSet: string;
  /** The allocated devices that use the set (a whole PF, or VFs of it). */
  heldDevices: string[];
}

/**
 * The free devices whose shared counters are used up by allocated ones, as the scheduler
 * counts them (KEP-4815): a device fits only when, for each counter it consumes, what the
 * allocated devices of its pool consume of that set plus its own amount stays within the
 * set's value. With whole PFs: a PF while any of its VFs is allocated, each VF while the PF
 * is. A counter whose set no slice publishes is left to the scheduler (not a block here).
 */
export function counterBlocks(
  devices: readonly NodeDevice[],
  held: (device: NodeDevice) => boolean,
): Map<string, CounterBlock> {
  const key = (pool: string, set: string, counter: string) => `${pool}\u0000${set}\u0000${counter}`;
  const used = new Map<string, bigint>();
  const users = new Map<string, string[]>();
  for (const device of devices.filter(held)) {
    for (const use of device.consumes) {
      const at = key(device.pool, use.counterSet, use.counter);
      used.set(at, (used.get(at) ?? 0n) + use.amount);
      users.set(at, [...(users.get(at) ?? []), device.name]);
    }
  }
  const blocks = new Map<string, CounterBlock>();
  for (const device of devices) {
    if (held(device)) continue;
    const short = device.consumes.find(
      (use) =>
        use.capacity !== undefined &&
        (used.get(key(device.pool, use.counterSet, use.counter)) ?? 0n) + use.amount > use.capacity,
    );
    if (short === undefined) continue;
    blocks.set(device.name, {
      counterSet: short.counterSet,
      heldDevices: users.get(key(device.pool, short.counterSet, short.counter)) ?? [],
    });
  }
  return blocks;
}
