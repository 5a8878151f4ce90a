import { randomBytes } from "node:crypto";
import fsp from "node:fs/promises";
import path from "node:path";
import { isJsonObject, type JsonObject, type JsonValue } from "../util/json.js";
import type { CniConfigList } from "./config.js";

export const CACHE_KIND = "dra-driver-sriov/cni-result/v1";

/** What ADD leaves for CHECK and DEL of one attachment. */
export interface CacheEntry {
  kind: typeof CACHE_KIND;
  networkName: string;
  containerId: string;
  ifName: string;
  netns: string;
  cniArgs: Record<string, string>;
  capabilityArgs?: JsonObject;
  /** The configuration list the result came from, for an operator reading the file. */
  config: CniConfigList;
  /** The final plugin's result, as it printed it. */
  result: JsonObject;
}

export type CacheLookup =
  | { state: "missing" }
  | { state: "found"; entry: CacheEntry }
  | { state: "unreadable"; reason: string };

/**
 * One file per attachment under `<dir>/results/`, libcni's layout; written atomically (temp
 * file, rename) so a crashed process leaves the old entry or the new one. Not fsynced, as
 * libcni does not: what an entry describes, interfaces in network namespaces, does not
 * outlive a power loss either, and an fsync would cost every pod start milliseconds.
 */
export class ResultCache {
  readonly resultsDir: string;

  constructor(cacheDir: string) {
    this.resultsDir = path.join(cacheDir, "results");
  }

  fileOf(key: string): string {
    return path.join(this.resultsDir, key);
  }

  async read(key: string): Promise<CacheLookup> {
    let text: string;
    try {
      text = await fsp.readFile(this.fileOf(key), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { state: "missing" };
      return { state: "unreadable", reason: (error as Error).message };
    }
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text) as JsonValue;
    } catch (error) {
      return { state: "unreadable", reason: `not JSON (${(error as Error).message})` };
    }
    const problem = entryProblem(parsed);
    if (problem !== null) return { state: "unreadable", reason: problem };
    return { state: "found", entry: parsed as unknown as CacheEntry };
  }

  async write(key: string, entry: CacheEntry): Promise<void> {
    await fsp.mkdir(this.resultsDir, { recursive: true, mode: 0o700 });
    const file = this.fileOf(key);
    const temp = `${file}.tmp-${randomBytes(6).toString("hex")}`;
    try {
      const handle = await fsp.open(temp, "wx", 0o600);
      try {
        await handle.writeFile(JSON.stringify(entry));
      } finally {
        await handle.close();
      }
      await fsp.rename(temp, file);
    } catch (error) {
      await fsp.rm(temp, { force: true });
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await fsp.rm(this.fileOf(key), { force: true });
  }
}

function entryProblem(value: JsonValue): string | null {
  if (!isJsonObject(value)) return "not a JSON object";
  if (value["kind"] !== CACHE_KIND)
    return `kind is ${JSON.stringify(value["kind"] ?? null)}, not ${CACHE_KIND}`;
  for (const key of ["networkName", "containerId", "ifName"]) {
    if (typeof value[key] !== "string") return `${key} is not a string`;
  }
  if (!isJsonObject(value["result"])) return "result is not an object";
  return null;
}
