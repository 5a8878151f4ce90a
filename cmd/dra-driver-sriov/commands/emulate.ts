import { once } from "node:events";
import type { HostChange } from "../../../pkg/emulator/index.js";
import {
  buildEmulatedHost,
  changeEmulatedHost,
  destroyEmulatedHost,
  EmulatedKernel,
  builtinProfiles,
  HostChangeError,
  loadProfile,
  parseChangeList,
} from "../../../pkg/emulator/index.js";
import { UsageError, type FlagSpecs, type ParsedFlags } from "../../../lib/flags/flags.js";
import { createLogger } from "../../../lib/log/logger.js";
import { loggingFlags } from "../common-flags.js";
import type { Command } from "./command.js";

const flags = {
  "host-root": {
    type: "string",
    description: "directory to build the emulated host in (never /)",
    required: true,
  },
  profile: {
    type: "string",
    description: `built-in profile (${Object.keys(builtinProfiles).join(", ")}) or a profile YAML file`,
    default: "x710",
  },
  netdevs: {
    type: "boolean",
    description: "also create real veth pairs named like the VF netdevs (root only)",
    default: false,
  },
  serve: {
    type: "boolean",
    description:
      "keep running and answer driver bind/unbind and sriov_numvfs writes like the kernel, and the changes below from other processes (through <host-root>/.dra-sriov-emulated-kernel.sock)",
    default: false,
  },
  "bind-delay-ms": {
    type: "integer",
    description: "with --serve: how long a bind takes to show, as with asynchronous probing",
    default: 5,
  },
  "probe-duration-ms": {
    type: "integer",
    description:
      "with --serve: how long a driver's probe holds a device before the bind shows (igbvf took 2100 on a real 82576)",
    default: 0,
  },
  "set-link": {
    type: "string",
    description:
      "on a built host (served or not), unplug or plug PFs' cables, named by netdev or PCI address: ens1f0=down,ens1f1=up (carrier 0 and operstate down, or 1 and up)",
  },
  "set-admin-state": {
    type: "string",
    description:
      "on a built host, set PFs' netdevs down or up as ip link set does: ens1f0=down (carrier unreadable, operstate down)",
  },
  "remove-vf": {
    type: "string",
    description:
      "on a built host, remove VFs as echo 1 > /sys/bus/pci/devices/<vf>/remove does (sriov_numvfs unchanged): 0000:3b:02.1,0000:3b:02.2",
  },
  rebind: {
    type: "string",
    description:
      "on a built host, move VFs to another driver behind the driver's back (driver_override, unbind, probe): 0000:3b:02.1=vfio-pci",
  },
  destroy: {
    type: "boolean",
    description: "remove the emulated host under --host-root and its veth pairs instead",
    default: false,
  },
  ...loggingFlags,
} as const satisfies FlagSpecs;

export const emulateCommand: Command<typeof flags> = {
  flags,
  async run(options: ParsedFlags<typeof flags>, out: NodeJS.WritableStream): Promise<number> {
    const logger = createLogger({ level: options["log-level"], format: options["log-format"] });
    const root = options["host-root"];
    if (options.destroy) {
      await destroyEmulatedHost(root);
      out.write(`removed the emulated host at ${root}\n`);
      return 0;
    }
    const changes = hostChanges(options);
    if (changes.length > 0) {
      if (options.serve || options.netdevs) {
        throw new UsageError(
          "--set-link, --set-admin-state, --remove-vf and --rebind change a built host: leave out --serve and --netdevs",
        );
      }
      // One after another, in the order the flags are listed in the help.
      for (const change of changes) out.write(`${await changeEmulatedHost(root, change)}\n`);
      return 0;
    }
    for (const flag of ["bind-delay-ms", "probe-duration-ms"] as const) {
      if (options[flag] < 0) throw new UsageError(`--${flag} must not be negative`);
    }
    const summary = await buildEmulatedHost({
      root,
      profile: loadProfile(options.profile),
      netdevs: options.netdevs,
    });
    const vfs = summary.inventory.pfs.reduce((sum, pf) => sum + pf.vfs.length, 0);
    out.write(
      `emulated host at ${summary.root}: ${summary.inventory.pfs.length} PFs, ${vfs} VFs` +
        `${summary.netdevs ? ", veth netdevs" : ""} (boot id ${summary.bootId})\n`,
    );
    if (!options.serve) return 0;
    const kernel = new EmulatedKernel({
      root,
      bindDelayMs: options["bind-delay-ms"],
      probeDurationMs: options["probe-duration-ms"],
      logger,
    });
    await kernel.start();
    out.write(
      "serving driver bind/unbind and sriov_numvfs writes, and host changes (emulate --set-link and the like); stop with SIGTERM or Ctrl-C\n",
    );
    await Promise.race([once(process, "SIGTERM"), once(process, "SIGINT")]);
    await kernel.stop();
    return 0;
  },
};

/** The host changes the flags ask for; a malformed list is a usage error. */
function hostChanges(options: ParsedFlags<typeof flags>): HostChange[] {
  const lists = [
    ["link", options["set-link"]],
    ["admin", options["set-admin-state"]],
    ["remove-vf", options["remove-vf"]],
    ["rebind", options.rebind],
  ] as const;
  try {
    return lists.flatMap(([kind, list]) => (list === undefined ? [] : parseChangeList(kind, list)));
  } catch (error) {
    if (error instanceof HostChangeError) throw new UsageError(error.message);
    throw error;
  }
}
