import type { FlagSpecs, ParsedFlags } from "../../../lib/flags/flags.js";

/** One `dra-driver-sriov <name>` subcommand (its name and summary are in the CLI registry). `run` resolves to the exit code. */
export interface Command<T extends FlagSpecs> {
  flags: T;
  run(options: ParsedFlags<T>, out: NodeJS.WritableStream): Promise<number>;
}
