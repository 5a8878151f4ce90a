import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parse, stringify } from "yaml";
import type { ExpectedInventory, HostUsedNetdev } from "./layout.js";
import { expectedInventory, hostLayout, hostUsedNetdevs } from "./layout.js";
import { EmulatedMachine } from "./machine.js";
import { VethPairs } from "./netdevs.js";
import { procNetIfInet6, procNetIpv6Route, procNetRoute } from "./proc-net.js";
import type { HostProfile } from "./profile.js";
import { ProfileError, validateProfile, vfDriverOf } from "./profile.js";
import { isMissing, listDirectory, readText } from "./sysfs-tree.js";

/** Marks a directory as an emulated host and records how it was built. */
export const MARKER_FILE = ".dra-sriov-emulated-host";
/** Holds the pid of the emulated kernel serving a root. */
const KERNEL_LOCK_FILE = ".dra-sriov-emulated-kernel";
/** The serving emulated kernel's socket for host changes (changes.ts). */
const KERNEL_SOCKET_FILE = ".dra-sriov-emulated-kernel.sock";

export function kernelSocketPath(root: string): string {
  return path.join(root, KERNEL_SOCKET_FILE);
}

export interface BuildOptions {
  /** Directory to build the host in: new, empty, or an earlier emulated host (rebuilt). */
  root: string;
  profile: HostProfile;
  /** Real veth pairs for VF netdevs (root only). */
  netdevs?: boolean;
}

export interface BuildSummary {
  /** The root as resolved (symlinks followed). */
  root: string;
  bootId: string;
  netdevs: boolean;
  /** What discovery should find on the fresh host. */
  inventory: ExpectedInventory;
}

/** What the marker file records: enough for the emulated kernel to act on the tree. */
export interface HostRecord {
  netdevs: boolean;
  profile: HostProfile;
}

/**
 * Builds the emulated host under `root` in the state a kernel shows after boot with the
 * profile's VFs created. Rebuilding an emulated host starts over (a new boot id: a reboot);
 * any other non-empty directory is refused.
 */
export async function buildEmulatedHost(options: BuildOptions): Promise<BuildSummary> {
  const root = resolveHostRoot(options.root);
  const netdevs = options.netdevs ?? false;
  if (netdevs) checkNetdevsPossible(root);
  if (listDirectory(root).length > 0) await removeEmulatedHost(root, "rebuild");
  fs.mkdirSync(root, { recursive: true });
  // The marker goes first so a build that fails halfway can still be rebuilt or destroyed.
  writeHostRecord(root, { netdevs, profile: options.profile });

  const { profile } = options;
  const layout = hostLayout(profile);
  const machine = new EmulatedMachine(root, layout, netdevs);
  await createDevices(machine, profile);
  await createProcNet(machine, root, hostUsedNetdevs(profile, layout));
  const bootId = randomUUID();
  const bootIdFile = path.join(root, "proc/sys/kernel/random/boot_id");
  fs.mkdirSync(path.dirname(bootIdFile), { recursive: true });
  fs.writeFileSync(bootIdFile, `${bootId}\n`);
  return { root, bootId, netdevs, inventory: expectedInventory(profile) };
}

/** Every device in its boot state: fixed devices by address, then each PF's VFs. */
async function createDevices(machine: EmulatedMachine, profile: HostProfile): Promise<void> {
  const { layout, tree } = machine;
  tree.createSkeleton(layout.drivers);
  await machine.addDevices(layout.fixedDevices, (device) => device.nativeDriver);
  for (const pf of profile.pfs) {
    const pfDevice = layout.byAddress.get(pf.pciAddress)!;
    await machine.addVfs(pfDevice, pf.numVfs, (vf) => vfDriverOf(pf, vf.physfn!.index));
    machine.writeNumVfs(pfDevice, pf.numVfs);
  }
  await machine.nodes.createFixed();
}

/**
 * Host-used VFs are up and hold addresses: synthetic `/proc/net` files show them, or with
 * veths the real addresses do and `proc/net` is the host's own.
 */
async function createProcNet(
  machine: EmulatedMachine,
  root: string,
  hostUsed: readonly HostUsedNetdev[],
): Promise<void> {
  for (const netdev of hostUsed) {
    const device = machine.layout.byAddress.get(netdev.pciAddress)!;
    machine.tree.writeLink(device, { adminUp: true, cablePlugged: true });
  }
  const procNet = path.join(root, "proc/net");
  fs.mkdirSync(path.dirname(procNet), { recursive: true });
  if (machine.veths === undefined) {
    fs.mkdirSync(procNet);
    fs.writeFileSync(path.join(procNet, "route"), procNetRoute(hostUsed));
    fs.writeFileSync(path.join(procNet, "if_inet6"), procNetIfInet6(hostUsed));
    fs.writeFileSync(path.join(procNet, "ipv6_route"), procNetIpv6Route(hostUsed));
    return;
  }
  await machine.veths.addHostAddresses(
    hostUsed.map((netdev) => ({
      ifname: netdev.netdev,
      ipv4Cidr: `${netdev.ipv4}/24`,
      ipv6Cidr: `${netdev.ipv6}/64`,
    })),
  );
  // Absolute on purpose: the veths live in the real host network namespace.
  fs.symlinkSync("/proc/self/net", procNet);
}

/**
 * Removes an emulated host: its veth pairs (only links carrying its alias) and the whole
 * directory. A missing root is nothing to do; a directory that is not an emulated host is
 * refused.
 */
export async function destroyEmulatedHost(root: string): Promise<void> {
  const resolved = resolveHostRoot(root);
  if (!fs.existsSync(resolved)) return;
  await removeEmulatedHost(resolved, "destroy");
  fs.rmSync(resolved, { recursive: true, force: true });
}

async function removeEmulatedHost(root: string, purpose: "rebuild" | "destroy"): Promise<void> {
  if (!fs.existsSync(path.join(root, MARKER_FILE))) {
    throw new Error(
      purpose === "rebuild"
        ? `refusing to build an emulated host in ${root}: the directory is not empty and has no ${MARKER_FILE} from an earlier build; choose an empty or new directory`
        : `refusing to delete ${root}: it has no ${MARKER_FILE}, so it is not an emulated host`,
    );
  }
  const kernelPid = servingKernelPid(root);
  if (kernelPid !== undefined) {
    throw new Error(
      `cannot ${purpose} ${root}: an emulated kernel (pid ${kernelPid}) is serving it; stop it first`,
    );
  }
  let netdevs: boolean;
  try {
    netdevs = readHostRecord(root).netdevs;
  } catch {
    // An unreadable record may hide veths: look for them whenever we could delete them.
    netdevs = process.getuid?.() === 0;
  }
  if (netdevs) {
    const left = await new VethPairs(root).removeAll();
    if (left.length > 0) {
      throw new Error(`could not delete network interfaces ${left.join(", ")} (needs root)`);
    }
  }
  for (const entry of listDirectory(root)) {
    fs.rmSync(path.join(root, entry), { recursive: true, force: true });
  }
}

/**
 * The absolute, symlink-free form of a host root. `/` (or anything resolving to it) is
 * refused: the emulator writes into and deletes below its root.
 */
export function resolveHostRoot(root: string): string {
  if (root.trim() === "") throw new Error("the emulated host root must not be empty");
  const absolute = path.resolve(root);
  const resolved = realpathOfLongestExisting(absolute);
  if (resolved === path.parse(resolved).root) {
    throw new Error(
      `refusing to use ${JSON.stringify(root)} as an emulated host root: it is the real "/"; ` +
        "give a dedicated directory such as /tmp/dra-sriov-host",
    );
  }
  return resolved;
}

function realpathOfLongestExisting(absolute: string): string {
  try {
    return fs.realpathSync(absolute);
  } catch (error) {
    const parent = path.dirname(absolute);
    if (!isMissing(error) || parent === absolute) throw error;
    return path.join(realpathOfLongestExisting(parent), path.basename(absolute));
  }
}

function checkNetdevsPossible(root: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "--netdevs creates network interfaces and needs root: run as root or leave it out",
    );
  }
  // The root goes into `ip -batch` link aliases inside double quotes.
  if (!/^[^"\\\s]{1,200}$/.test(root)) {
    throw new Error(
      `--netdevs needs a host root without quotes, backslashes or whitespace, at most 200 characters: ${JSON.stringify(root)}`,
    );
  }
}

function writeHostRecord(root: string, record: HostRecord): void {
  const header =
    "# An emulated SR-IOV host built by dra-driver-sriov; delete it with the emulate teardown.\n";
  fs.writeFileSync(path.join(root, MARKER_FILE), header + stringify(record));
}

export function readHostRecord(root: string): HostRecord {
  const file = path.join(root, MARKER_FILE);
  const text = readText(file);
  if (text === undefined) {
    throw new Error(`${root} is not an emulated host (no ${MARKER_FILE}): build one first`);
  }
  const record = parse(text) as unknown;
  if (typeof record !== "object" || record === null || !("profile" in record)) {
    throw new ProfileError(file, ["(top level): must be a mapping with netdevs and profile"]);
  }
  const { netdevs, profile } = record as { netdevs?: unknown; profile: unknown };
  return { netdevs: netdevs === true, profile: validateProfile(profile, file) };
}

/** The pid of a live emulated kernel serving `root`, if any. */
export function servingKernelPid(root: string): number | undefined {
  const pid = Number(readText(path.join(root, KERNEL_LOCK_FILE))?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}

/** Claims `root` for an emulated kernel; throws if another live one holds it. */
export function lockKernel(root: string): void {
  const pid = servingKernelPid(root);
  if (pid !== undefined) {
    throw new Error(
      `an emulated kernel (pid ${pid}${pid === process.pid ? ", this process" : ""}) already serves ${root}`,
    );
  }
  fs.writeFileSync(path.join(root, KERNEL_LOCK_FILE), `${process.pid}\n`);
}

export function unlockKernel(root: string): void {
  fs.rmSync(path.join(root, KERNEL_LOCK_FILE), { force: true });
}
