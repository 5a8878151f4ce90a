import { formatFlagHelp, parseFlags, UsageError, type FlagSpecs } from "../../lib/flags/flags.js";
import type { Command } from "./commands/command.js";
import { messageOf } from "../../lib/util/errors.js";

interface CommandEntry {
  name: string;
  summary: string;
  /** Loaded on use, so a process pays in memory only for the command it runs. */
  load(): Promise<Command<FlagSpecs>>;
}

// Each command is typed by its own flags; the registry only needs what they share.
const loaded = <T extends FlagSpecs>(command: Command<T>) =>
  command as unknown as Command<FlagSpecs>;

const commands: CommandEntry[] = [
  {
    name: "kubelet-plugin",
    summary: "the node daemon: publish this node's VFs and prepare them for pods (a DaemonSet)",
    load: async () => loaded((await import("./commands/kubelet-plugin.js")).kubeletPluginCommand),
  },
  {
    name: "discover",
    summary: "discover the host's VFs once and print them as ResourceSlices or a table",
    load: async () => loaded((await import("./commands/discover.js")).discoverCommand),
  },
  {
    name: "emulate",
    summary:
      "build (or --destroy) an emulated SR-IOV host under a directory, optionally serving it",
    load: async () => loaded((await import("./commands/emulate.js")).emulateCommand),
  },
  {
    name: "controller",
    summary: "validate SriovResourceFilters and write their status (a central Deployment)",
    load: async () => loaded((await import("./commands/controller.js")).controllerCommand),
  },
  {
    name: "migrate",
    summary:
      "translate a sriov-network-device-plugin config into a SriovResourceFilter and DeviceClasses, with a report",
    load: async () => loaded((await import("./commands/migrate.js")).migrateCommand),
  },
];

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function usage(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    "Usage: dra-driver-sriov <command> [flags]",
    "",
    "Kubernetes DRA driver for SR-IOV network Virtual Functions.",
    "",
    "Commands:",
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    "",
    "Run 'dra-driver-sriov <command> --help' for a command's flags. Every flag can also be set",
    "through the environment variable named in its help (command line wins).",
  ].join("\n");
}

export function commandUsage(entry: CommandEntry, command: Command<FlagSpecs>): string {
  return [
    `Usage: dra-driver-sriov ${entry.name} [flags]`,
    "",
    `${entry.summary[0]!.toUpperCase()}${entry.summary.slice(1)}.`,
    "",
    "Flags:",
    formatFlagHelp(command.flags),
  ].join("\n");
}

/** Runs the CLI and resolves to the exit code: 0 ok, 1 failed, 2 called wrongly. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? err : out).write(usage() + "\n");
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const entry = commands.find((candidate) => candidate.name === name);
  if (entry === undefined) {
    err.write(`error: unknown command "${name}"\n\n${usage()}\n`);
    return EXIT_USAGE;
  }
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    out.write(commandUsage(entry, command) + "\n");
    return EXIT_OK;
  }
  try {
    return await command.run(parseFlags(command.flags, rest, env), out);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`error: ${error.message}\n\n${commandUsage(entry, command)}\n`);
      return EXIT_USAGE;
    }
    err.write(`error: ${messageOf(error)}\n`);
    return EXIT_FAILURE;
  }
}
