import fs from "node:fs";
import path from "node:path";

/**
 * Synchronous sysfs access. Discovery does thousands of tiny reads; the synchronous calls
 * cost a few microseconds each, where the promise API would add a thread-pool round trip
 * per read. Every function returns undefined for a missing file so callers decide what a
 * gap means.
 */

/**
 * The largest file read from the host: sysfs attributes are at most a page; /proc/net
 * tables of a busy host stay far below this.
 */
export const MAX_ATTRIBUTE_BYTES = 1024 * 1024;

/**
 * A host file's text, trimmed; undefined when it is missing. Only a regular file is read
 * (sysfs and procfs attributes are): a FIFO, a device or a directory where an attribute
 * should be is an error naming the path, never a read that blocks or never ends, and so
 * is a file larger than MAX_ATTRIBUTE_BYTES.
 */
let scratchBuffer: Buffer | undefined;

/** One buffer for every read: they are synchronous, so never two at once. */
function scratch(): Buffer {
  scratchBuffer ??= Buffer.allocUnsafe(MAX_ATTRIBUTE_BYTES + 1);
  return scratchBuffer;
}

export function readAttribute(file: string): string | undefined {
  let fd: number;
  try {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`);
    const buffer = scratch();
    let length = 0;
    for (;;) {
      const read = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length > MAX_ATTRIBUTE_BYTES) {
        throw new Error(
          `${file} is larger than ${MAX_ATTRIBUTE_BYTES} bytes: not a sysfs attribute`,
        );
      }
    }
    return buffer.toString("utf8", 0, length).trim();
  } finally {
    fs.closeSync(fd);
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
  // PCI vendor and device ids are 16 bits: the kernel prints 0x%04x.
  const match = /^(?:0x)?([0-9a-fA-F]{1,4})$/.exec(text);
  return match ? match[1]!.toLowerCase().padStart(4, "0") : undefined;
}

export function parseInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}
