import path from "node:path";
import { listDirectory, readAttribute } from "../host/sysfs.js";

/** Whether a CNI configuration (file text) runs Multus, thick (`multus-shim`) or thin. */
export function isMultusConfig(text: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof parsed !== "object" || parsed === null) return false;
  const { type, plugins } = parsed as { type?: unknown; plugins?: unknown };
  const types = [
    type,
    ...(Array.isArray(plugins) ? plugins : []).map((p) => (p as { type?: unknown } | null)?.type),
  ];
  return types.some((t) => t === "multus" || t === "multus-shim");
}

/**
 * The first CNI configuration in `dir` (the node's CNI conf dir, as the runtime reads it)
 * that belongs to Multus: named after it, or running it. Undefined when there is none, or
 * no such directory. Files that cannot be read are passed over.
 */
export function findMultusConfig(dir: string): string | undefined {
  const names = (listDirectory(dir) ?? []).filter((name) => /\.(conf|conflist|json)$/.test(name));
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    if (/multus/i.test(name)) return file;
    let text: string | undefined;
    try {
      text = readAttribute(file);
    } catch {
      continue;
    }
    if (text !== undefined && isMultusConfig(text)) return file;
  }
  return undefined;
}
