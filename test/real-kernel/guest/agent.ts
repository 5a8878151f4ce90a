/*
 * The test agent of the real-kernel guest: PID 1 after hack/real-kernel/guest-init.sh, run
 * by Node's type stripping straight from this file (so it imports nothing but Node's own
 * modules). The host's tests drive the guest through it, over QEMU user networking with
 * host-forwarded ports, the way a test would drive a node over SSH:
 *
 *   :7000 HTTP, JSON in and out
 *     GET  /ready                      {uptimeSeconds}
 *     POST /exec   {argv, env?, input?, timeoutMs?}     run to the end: {code, signal, stdout, stderr}
 *     POST /spawn  {name, argv, env?, logFile}          start in the background: {pid}
 *     POST /stop   {name, signal?}                      signal it, wait for the end: {code, signal}
 *     POST /relay  {port, socket}                       where a relay port connects to
 *   :7001, :7002 every TCP connection is piped to the unix socket last given to /relay for
 *         that port (the daemon's gRPC sockets, reached by the host's gRPC clients)
 *
 * Only the tests' host can reach these ports (QEMU forwards them from its loopback).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";

const CONTROL_PORT = 7000;
const RELAY_PORTS = [7001, 7002];
const MAX_BODY_BYTES = 1 << 20;
const MAX_OUTPUT_BYTES = 16 << 20;

interface ExecRequest {
  argv: string[];
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

interface SpawnRequest {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  logFile: string;
}

const background = new Map<string, ChildProcess>();
const relaySockets = new Map<number, string>();

function environment(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
    TMPDIR: "/run",
    ...extra,
  };
}

function exec(request: ExecRequest): Promise<object> {
  return new Promise((resolve) => {
    const [command, ...args] = request.argv;
    if (command === undefined) {
      resolve({ code: 127, signal: null, stdout: "", stderr: "empty argv" });
      return;
    }
    const child = spawn(command, args, {
      env: environment(request.env),
      stdio: ["pipe", "pipe", "pipe"],
      timeout: request.timeoutMs ?? 120_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const keep = (chunks: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_OUTPUT_BYTES) chunks.push(chunk);
    };
    child.stdout.on("data", keep(out));
    child.stderr.on("data", keep(err));
    child.stdin.on("error", () => undefined);
    child.stdin.end(request.input ?? "");
    child.on("error", (error) =>
      resolve({ code: 127, signal: null, stdout: "", stderr: error.message }),
    );
    child.on("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

function spawnBackground(request: SpawnRequest): object {
  const running = background.get(request.name);
  if (running && running.exitCode === null && running.signalCode === null) {
    throw new Error(`${request.name} already runs (pid ${running.pid})`);
  }
  const [command, ...args] = request.argv;
  if (command === undefined) throw new Error("empty argv");
  const log = fs.openSync(request.logFile, "a");
  const child = spawn(command, args, {
    env: environment(request.env),
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  child.on("error", () => undefined);
  background.set(request.name, child);
  return { pid: child.pid };
}

function stop(name: string, signal: NodeJS.Signals): Promise<object> {
  const child = background.get(name);
  if (!child) return Promise.reject(new Error(`nothing named ${name} was started`));
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once("exit", (code, exitSignal) => resolve({ code, signal: exitSignal }));
    child.kill(signal);
  });
}

async function readBody(request: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function route(method: string, url: string, body: unknown): Promise<object> {
  if (method === "GET" && url === "/ready") return { uptimeSeconds: process.uptime() };
  if (method !== "POST") throw new Error(`no ${method} ${url}`);
  switch (url) {
    case "/exec":
      return exec(body as ExecRequest);
    case "/spawn":
      return spawnBackground(body as SpawnRequest);
    case "/stop": {
      const { name, signal } = body as { name: string; signal?: NodeJS.Signals };
      return stop(name, signal ?? "SIGTERM");
    }
    case "/relay": {
      const { port, socket } = body as { port: number; socket: string };
      if (!RELAY_PORTS.includes(port)) throw new Error(`${port} is not a relay port`);
      relaySockets.set(port, socket);
      return {};
    }
    default:
      throw new Error(`no POST ${url}`);
  }
}

http
  .createServer((request, response) => {
    readBody(request)
      .then((body) => route(request.method ?? "", request.url ?? "", body))
      .then(
        (result) => {
          response.writeHead(200, { "content-type": "application/json" });
          response.end(JSON.stringify(result));
        },
        (error: unknown) => {
          response.writeHead(500, { "content-type": "application/json" });
          response.end(JSON.stringify({ error: String(error) }));
        },
      );
  })
  .listen(CONTROL_PORT, "0.0.0.0");

for (const port of RELAY_PORTS) {
  net
    .createServer((client) => {
      const socket = relaySockets.get(port);
      if (socket === undefined) {
        client.destroy();
        return;
      }
      const target = net.connect(socket);
      client.pipe(target).pipe(client);
      const close = () => {
        client.destroy();
        target.destroy();
      };
      client.on("error", close);
      target.on("error", close);
      client.on("close", close);
      target.on("close", close);
    })
    .listen(port, "0.0.0.0");
}

// PID 1 must not die of a stray error: report it and go on serving.
process.on("uncaughtException", (error) => process.stderr.write(`agent: ${String(error)}\n`));
process.stdout.write("guest agent: serving\n");
