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
  const { used, users } = counterUse(devices, held);
  const blocks = new Map<string, CounterBlock>();
  for (const device of devices) {
    if (held(device)) continue;
    const short = device.consumes.find(
      (use) =>
        use.capacity !== undefined &&
        (used.get(counterKey(device, use)) ?? 0n) + use.amount > use.capacity,
    );
    if (short === undefined) continue;
    blocks.set(device.name, {
      counterSet: short.counterSet,
      heldDevices: users.get(counterKey(device, short)) ?? [],
    });
  }
  return blocks;
}

/**
 * What a free device takes of each counter, with what allocated devices leave of it: the
 * search adds up its own picks against `left`, as the scheduler does within one claim (a
 * claim asking for a whole PF and one of its VFs does not fit).
 */
export function countersLeft(
  device: NodeDevice,
  used: ReadonlyMap<string, bigint>,
): { key: string; amount: bigint; left: bigint }[] {
  return device.consumes.flatMap((use) => {
    if (use.capacity === undefined) return [];
    const key = counterKey(device, use);
    return [{ key, amount: use.amount, left: use.capacity - (used.get(key) ?? 0n) }];
  });
}

/** Per counter of each pool, what the allocated devices consume of it and which they are. */
export function counterUse(
  devices: readonly NodeDevice[],
  held: (device: NodeDevice) => boolean,
): { used: Map<string, bigint>; users: Map<string, string[]> } {
  const used = new Map<string, bigint>();
  const users = new Map<string, string[]>();
  for (const device of devices.filter(held)) {
    for (const use of device.consumes) {
      const at = counterKey(device, use);
      used.set(at, (used.get(at) ?? 0n) + use.amount);
      users.set(at, [...(users.get(at) ?? []), device.name]);
    }
  }
  return { used, users };
}

function counterKey(
  device: Pick<NodeDevice, "pool">,
  use: Pick<NodeDevice["consumes"][number], "counterSet" | "counter">,
): string {
  return `${device.pool}\u0000${use.counterSet}\u0000${use.counter}`;
}
