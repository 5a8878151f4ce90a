import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log/logger.js";
import { loadEnvelope, type Envelope } from "../ttrpc/index.js";
import { backoffDelay, checkBackoff, DEFAULT_RECONNECT, type BackoffOptions } from "./backoff.js";
import { NriConnection, type NriPluginHandlers, type RuntimeConfiguration } from "./connection.js";
import { OrderedRunner } from "./ordering.js";
import { loadNriProtos, type NriProtos } from "./protos.js";

export interface NriPluginOptions {
  /** The runtime's NRI socket, usually DEFAULT_NRI_SOCKET_PATH. */
  socketPath: string;
  /** [a-zA-Z0-9_.+-]+ */
  pluginName: string;
  /** Two digits, e.g. "10": the runtime calls plugins in ascending index order. */
  pluginIndex: string;
  handlers: NriPluginHandlers;
  logger: Logger;
  /** Delays between connection attempts: exponential backoff with jitter. */
  reconnect?: BackoffOptions;
  /**
   * A connection the runtime has not configured and synchronized within this is dropped
   * and tried again (default 60 s).
   */
  handshakeTimeoutMs?: number;
  /** Where api/proto is; by default found from this module's location. */
  protoDir?: string;
}

export interface NriPlugin {
  /** True while a connection is up on which the runtime has configured and synchronized us. */
  connected(): boolean;
  /**
   * Resolves when registered + configured + synchronized: at once when connected, else on
   * the next synchronization. Rejects when the plugin is stopped first.
   */
  whenSynchronized(): Promise<void>;
  /** The request timeout the runtime announced in its last Configure, if any (containerd: 2000). */
  requestTimeoutMs(): number | undefined;
  /** Closes the socket, stops reconnecting, and waits for running handler calls. */
  stop(): Promise<void>;
}

/** How long the plugin waits for the runtime to answer RegisterPlugin. */
const REGISTRATION_TIMEOUT_MS = 5_000;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

/**
 * Connects to the runtime's NRI socket and keeps connected: registers, answers Configure
 * with the pod sandbox events, hands the Synchronize pod list and every pod event to
 * `handlers` (in order per pod), and reconnects with backoff when the socket is missing
 * or the runtime goes away. Returns at once; throws only for unusable options.
 */
export function startNriPlugin(options: NriPluginOptions): NriPlugin {
  checkPluginName(options.pluginName);
  checkPluginIndex(options.pluginIndex);
  checkBackoff(options.reconnect ?? DEFAULT_RECONNECT);
  const plugin = new NriPluginLoop(options);
  plugin.start();
  return plugin;
}

/** The runtime refuses other names (NRI's CheckPluginName). */
export function checkPluginName(name: string): void {
  if (!/^[a-zA-Z0-9_.+-]+$/.test(name)) {
    throw new Error(
      `NRI plugin name "${name}" must be non-empty and only contain a-z A-Z 0-9 _ . + -`,
    );
  }
}

/** The runtime refuses other indices (NRI's CheckPluginIndex). */
export function checkPluginIndex(index: string): void {
  if (!/^[0-9]{2}$/.test(index)) {
    throw new Error(`NRI plugin index "${index}" must be exactly two digits, e.g. "10"`);
  }
}

class NriPluginLoop implements NriPlugin {
  private readonly protos: NriProtos;
  private readonly envelope: Envelope;
  private readonly runner = new OrderedRunner();
  private readonly stopController = new AbortController();
  private readonly logger: Logger;
  private current: NriConnection | undefined;
  private synchronizedWaiter = waiter();
  private isSynchronized = false;
  private lastRequestTimeoutMs: number | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  /** Whether the current outage was reported at warn level already. */
  private outageReported = false;

  constructor(private readonly options: NriPluginOptions) {
    // Missing .proto files are a broken installation: fail at start, not on every attempt.
    this.protos = loadNriProtos(options.protoDir);
    this.envelope = loadEnvelope(options.protoDir);
    this.logger = options.logger.child({ nriSocket: options.socketPath });
  }

  start(): void {
    this.loopDone = this.loop();
  }

  connected(): boolean {
    return this.current !== undefined && this.current.synchronized && !this.current.isClosed;
  }

  whenSynchronized(): Promise<void> {
    if (this.connected()) return Promise.resolve();
    if (this.stopping) return Promise.reject(stoppedBeforeSynchronizing());
    // The connection may have closed a moment ago, before the loop noticed.
    this.lostSynchronization();
    return this.synchronizedWaiter.promise;
  }

  requestTimeoutMs(): number | undefined {
    return this.lastRequestTimeoutMs;
  }

  async stop(): Promise<void> {
    if (!this.stopController.signal.aborted) {
      this.stopController.abort();
      this.current?.close();
      if (!this.isSynchronized) this.synchronizedWaiter.reject(stoppedBeforeSynchronizing());
    }
    await this.loopDone;
    await this.runner.idle();
  }

  private get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  private async loop(): Promise<void> {
    const reconnect = this.options.reconnect ?? DEFAULT_RECONNECT;
    let attempt = 0;
    while (!this.stopping) {
      const synchronized = await this.connectOnce();
      if (this.stopping) break;
      if (synchronized) attempt = 0;
      const delayMs = backoffDelay(attempt++, reconnect);
      this.logger.debug({ delayMs }, "reconnecting to the NRI socket after a delay");
      await sleep(delayMs, undefined, { signal: this.stopController.signal }).catch(
        () => undefined,
      );
    }
    this.logger.info("NRI plugin stopped");
  }

  /** One connection, from connecting until it ends; true when it got synchronized. */
  private async connectOnce(): Promise<boolean> {
    let socket: net.Socket;
    try {
      socket = await connectUnix(this.options.socketPath, this.stopController.signal);
    } catch (error) {
      if (!this.stopping) this.reportConnectFailure(error as NodeJS.ErrnoException);
      return false;
    }
    this.outageReported = false;
    const connection = new NriConnection(socket, {
      protos: this.protos,
      envelope: this.envelope,
      pluginName: this.options.pluginName,
      pluginIndex: this.options.pluginIndex,
      handlers: this.options.handlers,
      runner: this.runner,
      logger: this.logger,
      onConfigured: (configuration: RuntimeConfiguration) => {
        this.lastRequestTimeoutMs = configuration.requestTimeoutMs;
      },
      onSynchronized: () => {
        if (this.current !== connection || connection.isClosed) return;
        this.isSynchronized = true;
        this.synchronizedWaiter.resolve();
      },
    });
    this.current = connection;
    if (this.stopping) connection.close();
    const handshakeTimer = setTimeout(() => {
      if (connection.synchronized) return;
      this.logger.warn(
        { handshakeTimeoutMs: this.handshakeTimeoutMs },
        "the container runtime did not configure and synchronize the NRI plugin in time; reconnecting (see the runtime's log for why)",
      );
      connection.close();
    }, this.handshakeTimeoutMs);
    try {
      await connection.register(REGISTRATION_TIMEOUT_MS);
      this.logger.info(
        { plugin: `${this.options.pluginIndex}-${this.options.pluginName}` },
        "registered with the container runtime over NRI",
      );
    } catch (error) {
      if (!connection.isClosed) {
        this.logger.error(
          { err: error },
          "NRI registration failed; reconnecting (see the runtime's log for why it refused)",
        );
        connection.close();
      }
    }
    const error = await connection.closed;
    clearTimeout(handshakeTimer);
    this.current = undefined;
    this.lostSynchronization();
    if (!this.stopping) {
      this.logger.warn(
        { err: error, wasSynchronized: connection.synchronized },
        "NRI connection to the container runtime closed; reconnecting",
      );
    }
    return connection.synchronized;
  }

  private get handshakeTimeoutMs(): number {
    return this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  /** Hands out a fresh waiter once the synchronized connection is gone (idempotent). */
  private lostSynchronization(): void {
    if (!this.isSynchronized) return;
    this.isSynchronized = false;
    this.synchronizedWaiter = waiter();
  }

  /** The first failure of an outage at warn with what to check, the repeats at debug. */
  private reportConnectFailure(error: NodeJS.ErrnoException): void {
    const fields = { code: error.code, err: error };
    if (this.outageReported) {
      this.logger.debug(fields, "cannot connect to the NRI socket yet");
      return;
    }
    this.outageReported = true;
    this.logger.warn(fields, connectAdvice(error, this.options.socketPath));
  }
}

/** What an operator should check when the socket cannot be reached. */
function connectAdvice(error: NodeJS.ErrnoException, socketPath: string): string {
  switch (error.code) {
    case "ENOENT":
      return `NRI socket ${socketPath} does not exist: the container runtime is not running or has NRI disabled (containerd: [plugins."io.containerd.nri.v1.nri"] disable = false, socket_path); retrying`;
    case "ECONNREFUSED":
      return `nobody listens on NRI socket ${socketPath}: the container runtime is down or restarting; retrying`;
    case "EACCES":
    case "EPERM":
      return `no permission to connect to NRI socket ${socketPath}: run the plugin as root with the socket's directory mounted; retrying`;
    default:
      return `cannot connect to NRI socket ${socketPath}: ${error.message}; retrying`;
  }
}

function connectUnix(socketPath: string, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error("the NRI plugin is stopping"));
      return;
    }
    const socket = net.connect({ path: socketPath });
    const onAbort = () => {
      socket.destroy();
      reject(new Error("the NRI plugin is stopping"));
    };
    const onError = (error: Error) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

function stoppedBeforeSynchronizing(): Error {
  return new Error("the NRI plugin was stopped before it synchronized with the runtime");
}

interface Waiter {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

/** A promise to hand out; rejecting it with nobody waiting is not an unhandled rejection. */
function waiter(): Waiter {
  const { promise, resolve, reject } = Promise.withResolvers<undefined>();
  promise.catch(() => undefined);
  return { promise, resolve: () => resolve(undefined), reject };
}
