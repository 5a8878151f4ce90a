import { parseArgs } from "node:util";
import { messageOf } from "../util/errors.js";

export type FlagType = "string" | "boolean" | "integer";

export interface FlagSpec {
  type: FlagType;
  description: string;
  default?: string | boolean | number;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  required?: boolean;
  short?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S["type"] extends "boolean"
  ? boolean
  : S["type"] extends "integer"
    ? number
    : S extends { choices: readonly (infer C extends string)[] }
      ? C
      : string;

/** Parsed flags: flags with a default or `required` are always present. */
export type ParsedFlags<T extends FlagSpecs> = {
  [K in keyof T]: T[K] extends { required: true } | { default: string | boolean | number }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** A mistake in how the program was called; the CLI prints it with usage and exits 2. */
export class UsageError extends Error {}

/** `--host-root` ↔ `HOST_ROOT`: every flag can also come from the environment (a DaemonSet's env). */
export function envName(flag: string): string {
  return flag.replace(/-/g, "_").toUpperCase();
}

/**
 * Parses flags with precedence command line > environment > default, and checks types,
 * choices and required flags. Positional arguments are refused: every input is named.
 */
export function parseFlags<T extends FlagSpecs>(
  specs: T,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedFlags<T> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
    if (spec.short !== undefined) options[name].short = spec.short;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    }));
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
  const parsed: Record<string, string | boolean | number | undefined> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const fromArgs = values[name];
    const fromEnv = env[envName(name)];
    const raw = fromArgs ?? (fromEnv === undefined || fromEnv === "" ? undefined : fromEnv);
    const value = raw === undefined ? spec.default : convert(name, spec, raw);
    if (value === undefined && spec.required) {
      throw new UsageError(`--${name} is required (or set ${envName(name)})`);
    }
    parsed[name] = value;
  }
  return parsed as ParsedFlags<T>;
}

function convert(name: string, spec: FlagSpec, raw: string | boolean): string | boolean | number {
  switch (spec.type) {
    case "boolean":
      if (typeof raw === "boolean") return raw;
      if (/^(true|1|yes)$/i.test(raw)) return true;
      if (/^(false|0|no)$/i.test(raw)) return false;
      throw new UsageError(`${envName(name)}="${raw}" is not a boolean (true/false)`);
    case "integer": {
      const text = String(raw);
      if (!/^-?\d+$/.test(text)) throw new UsageError(`--${name}="${text}" is not an integer`);
      return Number(text);
    }
    case "string": {
      const text = String(raw);
      if (spec.choices && !spec.choices.includes(text)) {
        throw new UsageError(`--${name}="${text}" must be one of: ${spec.choices.join(", ")}`);
      }
      return text;
    }
  }
}

/** Help text: one line per flag with its environment variable and default. */
export function formatFlagHelp(specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : "    ";
    const flag =
      spec.type === "boolean"
        ? `${short}--${spec.default === true ? "[no-]" : ""}${name}`
        : `${short}--${name} <${spec.choices ? spec.choices.join("|") : spec.type}>`;
    const details = [
      `env ${envName(name)}`,
      spec.required ? "required" : undefined,
      spec.default !== undefined && spec.default !== ""
        ? `default ${String(spec.default)}`
        : undefined,
    ].filter(Boolean);
    return { flag, text: `${spec.description} (${details.join(", ")})` };
  });
  const width = Math.max(...rows.map((row) => row.flag.length));
  return rows.map((row) => `  ${row.flag.padEnd(width)}  ${row.text}`).join("\n");
}
