import { execFile } from "node:child_process";
import type { Logger } from "pino";
import { isPciAddress } from "./pci-address.js";

/**
 * The e-switch mode as the kernel reports it, through devlink: iproute2's `devlink` tool
 * (Node.js has no netlink sockets; the tool is the kernel's own userspace for it), run as
 * `devlink -j dev eswitch show <handle>`. What it prints and how it exits, seen on a real
 * kernel (Debian's 6.1 in the real-kernel tier's guest, iproute2 6.1.0):
 *
 *   an instance (netdevsim):      exit 0, {"dev":{"netdevsim/netdevsim10":{"mode":"legacy"}}}
 *                                  ({"mode":"switchdev"} after `devlink dev eswitch set ... mode
 *                                  switchdev`; drivers may add "inline-mode", "encap-mode")
 *   a PCI device without one (igb), or no such device:
 *                                  exit 1, stdout {"dev":{}}, stderr "kernel answers: No such device"
 *   a kernel without devlink:      exit 1, stderr "Failed to connect to devlink Netlink"
 *   devlink not installed:         spawn fails with ENOENT
 */

export type EswitchMode = "legacy" | "switchdev";

/** What devlink says of one device's e-switch. */
export type EswitchAnswer =
  | { kind: "mode"; mode: EswitchMode }
  /** No devlink instance for the device (or one without e-switch operations). */
  | { kind: "no-eswitch" }
  /** No devlink at all here: the tool is not installed, or the kernel has no devlink. */
  | { kind: "unavailable"; reason: string }
  | { kind: "failed"; reason: string };

/** How one run of the devlink tool ended. */
export type DevlinkOutcome =
  | { kind: "exited"; code: number; stdout: string; stderr: string }
  | { kind: "not-installed" }
  /** Killed (timeout, output limit) or not started for another reason than a missing binary. */
  | { kind: "failed"; reason: string };

/** Reads the e-switch mode of the devlink instance a handle names. */
export type EswitchReader = (handle: string) => Promise<EswitchAnswer>;

/** `bus/device`, as devlink names an instance: `pci/0000:3b:00.0`, `netdevsim/netdevsim10`. */
const DEVLINK_HANDLE = /^[a-z][a-z0-9_]{0,31}\/[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const ESWITCH_MODES: readonly EswitchMode[] = ["legacy", "switchdev"];
/** The answer for one device is a few dozen bytes; anything near this is not devlink's. */
const MAX_OUTPUT_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
/** What the operator installs to get the tool. */
export const DEVLINK_PACKAGE_HINT =
  "install iproute2's devlink (Debian/Ubuntu: apt-get install iproute2; Fedora/RHEL: dnf install iproute)";

/** Throws unless `handle` is a devlink handle, so it can never become another argument. */
export function checkDevlinkHandle(handle: string): string {
  if (!DEVLINK_HANDLE.test(handle)) {
    throw new Error(
      `${JSON.stringify(handle)} is not a devlink handle (bus/device, e.g. pci/0000:3b:00.0)`,
    );
  }
  return handle;
}

/** The devlink handle of a PCI device: `pci/<address>`. */
export function pciDevlinkHandle(address: string): string {
  if (!isPciAddress(address)) throw new Error(`${JSON.stringify(address)} is not a PCI address`);
  return `pci/${address}`;
}

/** First line of what a tool printed on stderr, cut short: for messages, never for decisions. */
function firstLine(text: string): string {
  return (text.trim().split("\n")[0] ?? "").slice(0, 200);
}

/**
 * What `devlink -j dev eswitch show <handle>` printed, read as untrusted data: only a JSON
 * object with the handle's entry and a known mode is a mode.
 */
export function parseEswitchShow(handle: string, outcome: DevlinkOutcome): EswitchAnswer {
  if (outcome.kind === "not-installed") {
    return { kind: "unavailable", reason: `devlink is not installed: ${DEVLINK_PACKAGE_HINT}` };
  }
  if (outcome.kind === "failed") return { kind: "failed", reason: outcome.reason };
  if (outcome.code !== 0) {
    // The kernel's errno through iproute2's "kernel answers: <strerror>" (LC_ALL=C).
    if (/No such device|Operation not supported/.test(outcome.stderr))
      return { kind: "no-eswitch" };
    if (outcome.stderr.includes("Failed to connect to devlink Netlink")) {
      return {
        kind: "unavailable",
        reason: "the kernel has no devlink (netlink family devlink missing: CONFIG_NET_DEVLINK)",
      };
    }
    return {
      kind: "failed",
      reason: `devlink exited ${outcome.code}: ${firstLine(outcome.stderr) || "no message"}`,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(outcome.stdout);
  } catch {
    return { kind: "failed", reason: `devlink printed no JSON: ${firstLine(outcome.stdout)}` };
  }
  const dev = isObject(parsed) ? parsed["dev"] : undefined;
  const entry = isObject(dev) && Object.hasOwn(dev, handle) ? dev[handle] : undefined;
  if (!isObject(entry)) {
    return { kind: "failed", reason: `devlink printed no entry for ${handle}` };
  }
  const mode = entry["mode"];
  const known = ESWITCH_MODES.find((candidate) => candidate === mode);
  if (known === undefined) {
    return {
      kind: "failed",
      reason: `devlink reports e-switch mode ${JSON.stringify(mode)}, not legacy or switchdev`,
    };
  }
  return { kind: "mode", mode: known };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface DevlinkRunOptions {
  /** The tool: looked up in PATH unless a path. */
  binary?: string;
  timeoutMs?: number;
}

/** Runs devlink with `args` (no shell), bounded in time and output, in the C locale. */
export function runDevlink(
  args: readonly string[],
  options: DevlinkRunOptions = {},
): Promise<DevlinkOutcome> {
  return new Promise((resolve) => {
    execFile(
      options.binary ?? "devlink",
      args,
      {
        encoding: "utf8",
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: MAX_OUTPUT_BYTES,
        // Messages in English whatever the node's locale: parseEswitchShow reads them.
        env: { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ kind: "exited", code: 0, stdout, stderr });
          return;
        }
        const { code } = error as { code?: unknown };
        if (code === "ENOENT") resolve({ kind: "not-installed" });
        else if (typeof code === "number") resolve({ kind: "exited", code, stdout, stderr });
        else if (code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") {
          resolve({
            kind: "failed",
            reason: `devlink printed more than ${MAX_OUTPUT_BYTES} bytes`,
          });
        } else if (error.killed) {
          resolve({ kind: "failed", reason: "devlink did not answer in time: killed" });
        } else resolve({ kind: "failed", reason: `devlink failed: ${error.message}` });
      },
    );
  });
}

/** The e-switch mode of the devlink instance `handle` names, as the running kernel reports it. */
export async function readEswitchMode(
  handle: string,
  options: DevlinkRunOptions = {},
): Promise<EswitchAnswer> {
  checkDevlinkHandle(handle);
  const outcome = await runDevlink(["-j", "dev", "eswitch", "show", handle], options);
  return parseEswitchShow(handle, outcome);
}

/**
 * readEswitchMode for the daemon and the CLI: the first time devlink is unavailable (the
 * first discovery, at startup), one warning says what to install and what the mode falls
 * back to; later answers are the same and are not logged again.
 */
export function devlinkEswitchReader(
  logger: Logger,
  read: EswitchReader = (handle) => readEswitchMode(handle),
): EswitchReader {
  let warned = false;
  return async (handle) => {
    const answer = await read(handle);
    if (answer.kind === "unavailable" && !warned) {
      warned = true;
      logger.warn(
        { reason: answer.reason },
        "cannot ask devlink for e-switch modes: they come from compat/devlink/mode where the driver has it, else legacy",
      );
    }
    return answer;
  };
}
