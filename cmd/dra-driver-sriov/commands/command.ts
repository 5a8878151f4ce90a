import type { FlagSpecs, ParsedFlags } from "../../../pkg/flags/flags.js";

/** One `dra-driver-sriov <name>` subcommand (its summary is in the CLI registry). `run` resolves to the exit code. */
export interface Command<T extends FlagSpecs> {
  name: string;
  flags: T;
  run(options: ParsedFlags<T>, out: NodeJS.WritableStream): Promise<number>;
}
