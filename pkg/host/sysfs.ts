import fs from "node:fs";
import path from "node:path";

/**
 * Synchronous sysfs access. Discovery does thousands of tiny reads; the synchronous calls
 * cost a few microseconds each, where the promise API would add a thread-pool round trip
 * per read. Every function returns undefined for a missing file so callers decide what a
 * gap means.
 */

export function readAttribute(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Last path element of a symlink's target (`driver` → `iavf`), or undefined if there is no link. */
export function readLinkName(link: string): string | undefined {
  try {
    return path.basename(fs.readlinkSync(link));
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export function listDirectory(dir: string): string[] | undefined {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Parses sysfs hex ids, which the kernel prints with or without `0x` ("0x8086", "154c"). */
export function parseHexId(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const match = /^(?:0x)?([0-9a-fA-F]{1,8})$/.exec(text);
  return match ? match[1]!.toLowerCase().padStart(4, "0") : undefined;
}

export function parseInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}
