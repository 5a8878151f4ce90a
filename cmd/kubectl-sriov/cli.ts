import { parseArgs } from "node:util";
import { GROUP } from "../../api/v1alpha1/group.js";
import { KubeClient } from "../../lib/kube/client.js";
import { messageOf } from "../../lib/util/errors.js";

export const OUTPUT_FORMATS = ["table", "wide", "text", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What every subcommand is given: flags parsed, a client on the chosen context. */
export interface PluginOptions {
  output: OutputFormat;
  driverName: string;
  /** `-n`: one namespace; undefined: all namespaces. */
  namespace: string | undefined;
  /** Positional arguments after the subcommand. */
  args: string[];
  /** `-f FILE` (explain). */
  filename: string | undefined;
}

export interface Subcommand {
  name: string;
  usage: string;
  summary: string;
  maxArgs: number;
  run(
    client: KubeClient,
    options: PluginOptions,
    out: NodeJS.WritableStream,
    err: NodeJS.WritableStream,
  ): Promise<number>;
}

const subcommands: Subcommand[] = [
  {
    name: "nodes",
    usage: "nodes [NODE]",
    summary:
      "each node's PFs and VFs from the published ResourceSlices, with the claim and pod holding each VF",
    maxArgs: 1,
    run: async (...args) => (await import("./commands/nodes.js")).runNodes(...args),
  },
  {
    name: "filters",
    usage: "filters",
    summary:
      "each SriovResourceFilter: the nodes it selects, the VFs it takes there, its status beside them",
    maxArgs: 0,
    run: async (client, options, out) =>
      (await import("./commands/filters.js")).runFilters(client, options, out),
  },
  {
    name: "explain",
    usage: "explain (pod NAME | claim NAME | -f FILE)",
    summary:
      "why a claim is pending: its selectors evaluated on every published VF, per node, with the likely fix",
    maxArgs: 2,
    run: async (...args) => (await import("./commands/explain.js")).runExplain(...args),
  },
];

const OPTIONS = {
  kubeconfig: { type: "string" },
  context: { type: "string" },
  namespace: { type: "string", short: "n" },
  "all-namespaces": { type: "boolean", short: "A" },
  output: { type: "string", short: "o" },
  "driver-name": { type: "string" },
  filename: { type: "string", short: "f" },
  help: { type: "boolean", short: "h" },
} as const;

export function pluginUsage(): string {
  const width = Math.max(...subcommands.map((command) => command.usage.length));
  return [
    "Usage: kubectl sriov <command> [flags]",
    "",
    "What this cluster's SR-IOV VFs are, and who holds them (the dra-driver-sriov kubectl plugin).",
    "",
    "Commands:",
    ...subcommands.map((command) => `  ${command.usage.padEnd(width)}  ${command.summary}`),
    "",
    "Flags:",
    "  -o, --output table|wide|json|yaml  output format (default table; explain: text or json)",
    "  -n, --namespace NAME               filters: only this namespace (default: all);",
    "                                     explain: the pod's or claim's (default: the context's)",
    "  -f, --filename FILE                explain: a ResourceClaim or ResourceClaimTemplate manifest",
    "  -A, --all-namespaces               filters: all namespaces (the default)",
    "      --kubeconfig FILE              kubeconfig file (default: $KUBECONFIG, ~/.kube/config)",
    "      --context NAME                 kubeconfig context (default: the current one)",
    `      --driver-name NAME             DRA driver name (default ${GROUP})`,
  ].join("\n");
}

export class PluginUsageError extends Error {}

/** The subcommand and its options from argv; throws PluginUsageError on a mistake. */
export function parsePluginArgs(argv: readonly string[]): {
  command: Subcommand | undefined;
  options: PluginOptions;
  kubeconfig: string | undefined;
  context: string | undefined;
  help: boolean;
} {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    throw new PluginUsageError(messageOf(error));
  }
  const { values, positionals } = parsed;
  const [name, ...args] = positionals;
  const command = subcommands.find((candidate) => candidate.name === name);
  if (name !== undefined && command === undefined) {
    throw new PluginUsageError(`unknown command "${name}"`);
  }
  if (command !== undefined && args.length > command.maxArgs) {
    throw new PluginUsageError(`too many arguments: usage is "kubectl sriov ${command.usage}"`);
  }
  if (values.filename !== undefined && command !== undefined && command.name !== "explain") {
    throw new PluginUsageError(`--filename is a flag of explain, not of ${command.name}`);
  }
  const output = values.output ?? "table";
  if (!OUTPUT_FORMATS.some((format) => format === output)) {
    throw new PluginUsageError(`--output "${output}": must be one of ${OUTPUT_FORMATS.join(", ")}`);
  }
  if (values.namespace !== undefined && values["all-namespaces"] === true) {
    throw new PluginUsageError("--namespace and --all-namespaces exclude each other");
  }
  return {
    command,
    options: {
      output: output as OutputFormat,
      driverName: values["driver-name"] ?? GROUP,
      namespace: values.namespace,
      args,
      filename: values.filename,
    },
    kubeconfig: values.kubeconfig,
    context: values.context,
    help: values.help === true,
  };
}

/** Runs `kubectl sriov ...` and resolves to the exit code: 0 ok, 1 failed, 2 called wrongly. */
export async function runPlugin(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  connect: (kubeconfig?: string, context?: string) => KubeClient = KubeClient.load,
): Promise<number> {
  let parsed;
  try {
    parsed = parsePluginArgs(argv);
  } catch (error) {
    if (!(error instanceof PluginUsageError)) throw error;
    err.write(`error: ${error.message}\n\n${pluginUsage()}\n`);
    return 2;
  }
  if (parsed.help || parsed.command === undefined) {
    (parsed.help ? out : err).write(pluginUsage() + "\n");
    return parsed.help ? 0 : 2;
  }
  try {
    const client = connect(parsed.kubeconfig, parsed.context);
    return await parsed.command.run(client, parsed.options, out, err);
  } catch (error) {
    err.write(`error: ${messageOf(error)}\n`);
    return 1;
  }
}
