import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** Format of the file on disk; bump when its shape changes and keep reading the old one. */
export const CHECKPOINT_VERSION = 1;

interface CheckpointFile<T> {
  version: number;
  bootId: string;
  /** sha256 over the JSON of version, bootId and entries (key order survives a parse, so the reader recomputes it). */
  checksum: string;
  entries: Record<string, T>;
}

export interface LoadedCheckpoint<T> {
  entries: Map<string, T>;
  /** True when the entries were written before the last reboot: host state they describe may be gone. */
  fromPreviousBoot: boolean;
  /** Set when the file was unreadable and was moved aside; the checkpoint starts empty. */
  setAside?: { path: string; reason: string };
}

/**
 * A versioned, checksummed map of entries persisted in one file, written atomically
 * (temp file, fsync, rename, fsync of the directory), so a crash leaves either the old or
 * the new file, never half of one. What an entry means is the caller's business.
 */
export class CheckpointStore<T> {
  constructor(
    readonly file: string,
    private readonly bootId: string,
    /**
     * `false` skips the fsyncs: the file still never tears for a crashed process, but a
     * power loss may lose the last writes. Right for state that a reboot voids anyway.
     */
    private readonly fsync = true,
  ) {}

  load(): LoadedCheckpoint<T> {
    let text: string;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        return { entries: new Map(), fromPreviousBoot: false };
      throw error;
    }
    const problem = this.check(text);
    if (typeof problem === "string") {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      fs.renameSync(this.file, aside);
      return {
        entries: new Map(),
        fromPreviousBoot: false,
        setAside: { path: aside, reason: problem },
      };
    }
    return {
      entries: new Map(Object.entries(problem.entries)),
      fromPreviousBoot: problem.bootId !== this.bootId,
    };
  }

  /**
   * Writes the entries durably: when this resolves, a crash keeps them. Writing and
   * renaming a small file is quick and done in place; only the two fsyncs, which wait on
   * the disk, go to the thread pool, so the daemon serves other claims meanwhile (each
   * trip there costs a prepare about half a millisecond of hand-offs).
   */
  async save(entries: ReadonlyMap<string, T>): Promise<void> {
    const text = checkpointText(this.bootId, entries);
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.tmp-${process.pid}`;
    const fd = fs.openSync(temp, "w", 0o600);
    try {
      fs.writeSync(fd, text);
      if (this.fsync) await fsyncAsync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, this.file);
    if (!this.fsync) return;
    const dirFd = fs.openSync(dir, "r");
    try {
      await fsyncAsync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }

  /**
   * What identifies the file's current content without reading it (inode, size, mtime), or
   * null when there is none: a change means another process wrote it.
   */
  signature(): string | null {
    const stat = fs.statSync(this.file, { bigint: true, throwIfNoEntry: false });
    return stat === undefined ? null : `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
  }

  /** The parsed file, or why it cannot be trusted. */
  private check(text: string): CheckpointFile<T> | string {
    let parsed: Partial<CheckpointFile<T>>;
    try {
      parsed = JSON.parse(text) as Partial<CheckpointFile<T>>;
    } catch (error) {
      return `not JSON: ${(error as Error).message}`;
    }
    if (parsed.version !== CHECKPOINT_VERSION)
      return `unknown checkpoint version ${String(parsed.version)}`;
    if (
      typeof parsed.bootId !== "string" ||
      typeof parsed.entries !== "object" ||
      parsed.entries === null
    ) {
      return "missing bootId or entries";
    }
    const { version, bootId, entries } = parsed;
    if (checksum({ version, bootId, entries }) !== parsed.checksum) return "checksum mismatch";
    return parsed as CheckpointFile<T>;
  }
}

/**
 * The file's text, the entries serialised once: the checksum is taken over the same JSON
 * (version, bootId, entries, in that order) the reader recomputes from the parsed file.
 */
function checkpointText(bootId: string, entries: ReadonlyMap<string, unknown>): string {
  const head = `{"version":${CHECKPOINT_VERSION},"bootId":${JSON.stringify(bootId)}`;
  const tail = `,"entries":${JSON.stringify(Object.fromEntries(entries))}}`;
  const sum = createHash("sha256").update(head).update(tail).digest("hex");
  return `${head},"checksum":"${sum}"${tail}`;
}

function checksum(body: { version: number; bootId: string; entries: unknown }): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fsync(fd, (error) => (error ? reject(error) : resolve())),
  );
}
