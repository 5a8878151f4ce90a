import { parse } from "@marcbachmann/cel-js";
import type { CelRule } from "./schema.js";

/** A CEL rule parsed once, so a typo in a rule fails when the schema is built. */
export interface CompiledCelRule extends CelRule {
  /** Runs the rule on a decoded value: undefined when it holds, else what went wrong. */
  violation(self: unknown): string | undefined;
}

export function compileCelRule(celRule: CelRule): CompiledCelRule {
  let program: ReturnType<typeof parse>;
  try {
    program = parse(celRule.rule);
  } catch (error) {
    throw new Error(
      `CEL rule ${JSON.stringify(celRule.rule)} does not parse: ${firstLine(error)}`,
      {
        cause: error,
      },
    );
  }
  return {
    ...celRule,
    violation(self) {
      let result: unknown;
      try {
        result = program({ self: toCelValue(self) });
      } catch (error) {
        // The API server fails validation when a rule errors, so the decoder does too.
        return `${celRule.message} (rule error: ${firstLine(error)})`;
      }
      return result === true ? undefined : celRule.message;
    },
  };
}

/**
 * The builder has integers but no floating-point numbers, so every number is a CEL `int`,
 * which the evaluator represents as a bigint (as the API server's CEL types it).
 */
function toCelValue(value: unknown): unknown {
  if (typeof value === "number") return BigInt(value);
  if (Array.isArray(value)) return value.map(toCelValue);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, toCelValue(v)]));
  }
  return value;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
