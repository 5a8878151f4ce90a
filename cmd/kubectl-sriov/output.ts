import { stringify } from "yaml";
import type { OutputFormat } from "./cli.js";

/** json/yaml: the structure as is; table/wide: the command's own rendering. */
export function render<T>(
  value: T,
  format: OutputFormat,
  table: (value: T, wide: boolean) => string,
): string {
  if (format === "json") return JSON.stringify(value, null, 2) + "\n";
  if (format === "yaml") return stringify(value);
  return table(value, format === "wide") + "\n";
}
