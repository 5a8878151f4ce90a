import path from "node:path";
import { interfaceNameRule } from "../../api/v1alpha1/formats.js";
import { writeSysfs } from "./driver-binding.js";
import type { HostPaths } from "./paths.js";
import { listDirectory, readAttribute } from "./sysfs.js";

/** IFF_UP in a netdev's `flags`: the administrative state `ip link set up|down` changes. */
const IFF_UP = 0x1;

/** A PCI function's netdev in the host network namespace, as sysfs shows it. */
export interface NetdevLink {
  name: string;
  /** Administratively up (IFF_UP), whatever the carrier says. */
  up: boolean;
}

/**
 * The function's netdev in the node's network namespace: the one entry of
 * `/sys/bus/pci/devices/<address>/net/` that is a valid interface name, with IFF_UP from
 * its `flags`. Undefined when it has none here (unbound, on vfio-pci, or moved into a pod).
 */
export function readNetdevLink(paths: HostPaths, pciAddress: string): NetdevLink | undefined {
  const netDir = path.join(paths.pciDevice(pciAddress), "net");
  const name = (listDirectory(netDir) ?? [])
    .filter((entry) => interfaceNameRule.check(entry) === undefined)
    .sort()[0];
  if (name === undefined) return undefined;
  const flags = parseFlags(readAttribute(path.join(netDir, name, "flags")));
  return flags === undefined ? undefined : { name, up: (flags & IFF_UP) !== 0 };
}

/** `flags` as sysfs prints it (`0x1003`); undefined when it is not a hex number. */
export function parseFlags(text: string | undefined): number | undefined {
  const trimmed = text?.trim() ?? "";
  return /^0x[0-9a-f]{1,8}$/i.test(trimmed) ? Number.parseInt(trimmed, 16) : undefined;
}

/** `flags` with IFF_UP set or cleared and every other bit as it was, as sysfs takes it. */
export function flagsWithUp(flags: number, up: boolean): string {
  return `0x${(up ? flags | IFF_UP : flags & ~IFF_UP).toString(16)}`;
}

/**
 * Sets the netdev administratively up or down through its writable sysfs `flags` (the kernel
 * applies it as dev_change_flags, as `ip link set` does); nothing when it already is.
 */
export async function setNetdevUp(
  paths: HostPaths,
  pciAddress: string,
  up: boolean,
): Promise<void> {
  const link = readNetdevLink(paths, pciAddress);
  if (link === undefined) {
    throw new Error(
      `${pciAddress} has no network interface in the node's namespace (still in a pod's?), so its link cannot be set ${up ? "up" : "down"}`,
    );
  }
  if (link.up === up) return;
  const file = path.join(paths.pciDevice(pciAddress), "net", link.name, "flags");
  await writeSysfs(file, flagsWithUp(parseFlags(readAttribute(file))!, up));
}
