import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface SocketPair {
  /** The connecting end. */
  client: net.Socket;
  /** The accepting end. */
  server: net.Socket;
  /** Destroys both ends and removes the socket's directory. */
  close(): void;
}

/** Two connected ends of a real unix socket in a fresh temporary directory. */
export async function unixSocketPair(): Promise<SocketPair> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ttrpc-"));
  const socketPath = path.join(dir, "s.sock");
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(socketPath, resolve);
  });
  const accepted = new Promise<net.Socket>((resolve) => listener.once("connection", resolve));
  const client = net.connect({ path: socketPath });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
  });
  const server = await accepted;
  listener.close();
  return {
    client,
    server,
    close() {
      client.destroy();
      server.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
