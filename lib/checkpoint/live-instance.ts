import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { isListening } from "./file-lock.js";

/** What others can ask of the plugin instances on this node. */
export interface InstanceLiveness {
  /** This process's instance ID, recorded on the work it has under way. */
  readonly id: string;
  /** Whether the instance with that ID still runs (this one included). */
  isAlive(id: string): Promise<boolean>;
}

/**
 * This plugin instance, visible to the others on the node for as long as it runs: it
 * listens on `<dir>/<id>.sock`, and the kernel closes that when the process dies however it
 * dies. During a rolling update the starting instance must not roll back a prepare the
 * running one is in the middle of; the ID on the checkpoint entry and this socket tell
 * the two cases apart.
 */
export class LiveInstance implements InstanceLiveness {
  private constructor(
    readonly id: string,
    private readonly dir: string,
    private readonly server: net.Server,
  ) {}

  static async start(dir: string): Promise<LiveInstance> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Sockets of instances that died stay behind; nobody listens on them any more.
    for (const file of fs.readdirSync(dir)) {
      const socket = path.join(dir, file);
      if (file.endsWith(".sock") && !(await isListening(socket)))
        fs.rmSync(socket, { force: true });
    }
    const id = randomBytes(4).toString("hex");
    const server = net.createServer((connection) => connection.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path.join(dir, `${id}.sock`), () => resolve());
    });
    return new LiveInstance(id, dir, server);
  }

  isAlive(id: string): Promise<boolean> {
    if (id === this.id) return Promise.resolve(true);
    if (!/^[0-9a-f]{8}$/.test(id)) return Promise.resolve(false);
    return isListening(path.join(this.dir, `${id}.sock`));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
