import { isPfDevice, pciAddressOf, type Device, type VfDevice } from "../devices/model.js";

/**
 * The order a pool's devices are published in, which is the order the scheduler tries
 * them: its allocator is first fit over slices sorted by name and the devices of each
 * slice as listed (k8s.io/dynamic-resource-allocation structured allocator).
 * - `spread`: VFs interleaved across PFs (the first VF of every PF, then the second, ...),
 *   so single-VF claims land on the PFs in turn;
 * - `pack`: by PCI address (a whole PF right before its VFs), so claims fill one PF before
 *   the next.
 */
export const PUBLISH_ORDERS = ["spread", "pack"] as const;
export type PublishOrder = (typeof PUBLISH_ORDERS)[number];
export const DEFAULT_PUBLISH_ORDER: PublishOrder = "spread";

/**
 * The devices in publish order; a pure function of the set of devices (never of the order
 * they were discovered in), so rediscovering the same host renders the same slices.
 *
 * `spread` interleaves within each resourceName (the unit a class or filter usually
 * selects): a VF's round is its rank among the VFs of its PF that carry its resourceName,
 * and each round lists PFs by PCI address, so every prefix of a resourceName's VFs takes
 * from each PF at most one more than from any other that still has VFs. Whole PFs come
 * first, by PCI address (a VF claim never matches them; their own claims take the first free).
 */
export function publishOrder(devices: readonly Device[], order: PublishOrder): Device[] {
  const byAddress = [...devices].sort((a, b) => compare(pciAddressOf(a), pciAddressOf(b)));
  if (order === "pack") return byAddress;
  const wholePfs = byAddress.filter(isPfDevice);
  const vfs = byAddress.filter((device): device is VfDevice => !isPfDevice(device));
  const taken = new Map<string, number>();
  const ranked = vfs.map((vf) => {
    const group = `${vf.pf.pciAddress} ${vf.resourceName ?? ""}`;
    const round = taken.get(group) ?? 0;
    taken.set(group, round + 1);
    return { vf, round };
  });
  ranked.sort(
    (a, b) =>
      a.round - b.round ||
      compare(a.vf.resourceName ?? "", b.vf.resourceName ?? "") ||
      compare(a.vf.pf.pciAddress, b.vf.pf.pciAddress),
  );
  return [...wholePfs, ...ranked.map(({ vf }) => vf)];
}

/** Strings by UTF-16 code units, as Go's `cmp.Compare` does for ASCII names. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
