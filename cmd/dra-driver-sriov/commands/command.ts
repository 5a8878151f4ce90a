import type { FlagSpecs, ParsedFlags } from "../../../pkg/flags/flags.js";

/** One `dra-driver-sriov <name>` subcommand. `run` resolves to the process exit code. */
export interface Command<T extends FlagSpecs> {
  name: string;
  summary: string;
  flags: T;
  run(options: ParsedFlags<T>, out: NodeJS.WritableStream): Promise<number>;
}
