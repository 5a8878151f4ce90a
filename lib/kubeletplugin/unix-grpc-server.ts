import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { fits, MAX_SOCKET_PATH_BYTES } from "./socket-names.js";

export interface ServedService {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

/** A gRPC server on a unix socket that only its owner (root, like the kubelet) may use. */
export class UnixGrpcServer {
  private constructor(
    readonly socketPath: string,
    private readonly server: Server,
    private readonly logger: Logger,
  ) {}

  /** Replaces whatever socket is at the path: the caller has made sure it is ours. */
  static async start(
    socketPath: string,
    services: readonly ServedService[],
    logger: Logger,
  ): Promise<UnixGrpcServer> {
    if (!fits(socketPath)) {
      throw new Error(
        `socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes: use shorter kubelet directories`,
      );
    }
    await removeSocket(socketPath);
    const server = new Server();
    for (const { definition, implementation } of services) {
      server.addService(definition, implementation);
    }
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (error) =>
        error ? reject(new Error(`cannot listen on ${socketPath}: ${error.message}`)) : resolve(),
      );
    });
    // The directories are root-only on a node already; this keeps it so if they are not.
    await fs.chmod(socketPath, 0o600);
    logger.info({ socket: socketPath }, "gRPC server listening");
    return new UnixGrpcServer(socketPath, server, logger);
  }

  /**
   * Stops taking calls, lets running ones finish for up to `graceMs`, then cuts them off,
   * and removes the socket. Resolves to false when calls had to be cut off.
   */
  async stop(graceMs: number): Promise<boolean> {
    const graceful = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve(false);
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    await fs.rm(this.socketPath, { force: true });
    if (!graceful) {
      this.logger.warn({ socket: this.socketPath, graceMs }, "gRPC calls cut off at shutdown");
    }
    return graceful;
  }
}

/**
 * Removes sockets in `dir` that `isOurs` claims and nobody listens on any more (left by a
 * crashed instance). A live socket may belong to the other pod of a rolling update, so it
 * stays; `ownNames` are this instance's and go regardless. Returns the removed names.
 */
export async function removeStaleSockets(
  dir: string,
  isOurs: (fileName: string) => boolean,
  ownNames: readonly string[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isSocket() || !isOurs(entry.name)) continue;
    const socketPath = path.join(dir, entry.name);
    if (ownNames.includes(entry.name) || !(await isListening(socketPath))) {
      await fs.rm(socketPath, { force: true });
      removed.push(entry.name);
    }
  }
  return removed;
}

async function removeSocket(socketPath: string): Promise<void> {
  const stat = await fs.lstat(socketPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (stat && !stat.isSocket()) {
    throw new Error(`${socketPath} exists and is not a socket: remove it or choose another path`);
  }
  if (stat) await fs.rm(socketPath, { force: true });
}

const PROBE_TIMEOUT_MS = 1_000;

/** Whether a process accepts connections on the socket; when unsure, yes. */
function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
    const done = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(true));
    socket.once("connect", () => done(true));
    socket.once("error", (error: NodeJS.ErrnoException) =>
      done(error.code !== "ECONNREFUSED" && error.code !== "ENOENT"),
    );
  });
}
