import fs from "node:fs";
import net from "node:net";
import nodePath from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const DEFAULT_TIMEOUT_MS = 30_000;

export interface InterProcessLockOptions {
  /** How long to wait for another holder before failing; 30 s by default. */
  timeoutMs?: number;
  pollMs?: number;
  /** Called once per acquisition that finds the lock held by another live process. */
  onWaiting?: () => void;
}

/**
 * A lock shared by the processes of one node: whoever listens on the unix socket at `path`
 * holds it. Two plugin instances run side by side during a rolling update (the kubelet
 * hands new calls to the newer one while the older finishes its own), and both write the
 * same checkpoint. Node has no flock(2); a listening socket serves instead, and the kernel
 * releases it when its holder dies: a connect that is refused means the file is stale.
 */
export class InterProcessLock {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly options: InterProcessLockOptions = {},
  ) {}

  /** Runs `work` holding the lock; calls within this process queue behind each other. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      const server = await this.acquire();
      try {
        return await work();
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async acquire(): Promise<net.Server> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    fs.mkdirSync(nodePath.dirname(this.path), { recursive: true, mode: 0o700 });
    for (let attempt = 0; ; attempt++) {
      const server = await listenOn(this.path);
      if (server !== null) return server;
      if (!(await isListening(this.path))) {
        fs.rmSync(this.path, { force: true });
        continue;
      }
      if (attempt === 0) this.options.onWaiting?.();
      if (Date.now() >= deadline) {
        throw new Error(
          `another process has held the lock ${this.path} for ${timeoutMs} ms: is a second plugin instance stuck? Look for it on this node`,
        );
      }
      await sleep(Math.min(100, (this.options.pollMs ?? 2) * 2 ** Math.min(attempt, 6)));
    }
  }
}

/** A server listening at `path`, or null when the address is in use. */
function listenOn(path: string): Promise<net.Server | null> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(null);
      else reject(error);
    });
    server.listen(path, () => resolve(server));
  });
}

/** Whether a live process listens on the unix socket at `path`. */
export function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      // ECONNREFUSED: nobody listens any more. ENOENT: released between listen and connect.
      resolve(error.code !== "ECONNREFUSED" && error.code !== "ENOENT");
    });
  });
}
