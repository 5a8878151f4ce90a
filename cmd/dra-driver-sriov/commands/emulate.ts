import { once } from "node:events";
import {
  buildEmulatedHost,
  destroyEmulatedHost,
  EmulatedKernel,
  builtinProfiles,
  loadProfile,
} from "../../../pkg/emulator/index.js";
import { UsageError, type FlagSpecs, type ParsedFlags } from "../../../pkg/flags/flags.js";
import { createLogger } from "../../../pkg/log/logger.js";
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
      "keep running and answer driver bind/unbind and sriov_numvfs writes like the kernel",
    default: false,
  },
  "bind-delay-ms": {
    type: "integer",
    description: "with --serve: how long a bind takes to show, as with asynchronous probing",
    default: 5,
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
    if (options["bind-delay-ms"] < 0) throw new UsageError("--bind-delay-ms must not be negative");
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
    const kernel = new EmulatedKernel({ root, bindDelayMs: options["bind-delay-ms"], logger });
    await kernel.start();
    out.write("serving driver bind/unbind and sriov_numvfs writes; stop with SIGTERM or Ctrl-C\n");
    await Promise.race([once(process, "SIGTERM"), once(process, "SIGINT")]);
    await kernel.stop();
    return 0;
  },
};
