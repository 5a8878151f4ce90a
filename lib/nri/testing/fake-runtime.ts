import fs from "node:fs";
import net from "node:net";
import {
  loadEnvelope,
  splitMethodPath,
  TtrpcClient,
  TtrpcServer,
  type CallOptions,
  type Envelope,
} from "../../ttrpc/index.js";
import { ConnectionId, Multiplexer } from "../mux.js";
import {
  loadNriProtos,
  type ConfigureRequest,
  type ConfigureResponse,
  type Empty,
  type NriProtos,
  type RegisterPluginRequest,
  type SynchronizeResponse,
  type WirePodSandbox,
} from "../protos.js";

export interface FakeNriRuntimeOptions {
  socketPath: string;
  /** A plugin that has not registered within this is dropped, as the runtime does (5000). */
  registrationTimeoutMs?: number;
  /** Announced in Configure and used as the timeout of every call to the plugin (2000). */
  requestTimeoutMs?: number;
}

/**
 * The runtime's side of NRI, for tests, built on our own ttrpc and multiplexer: it listens
 * on the NRI socket, serves Runtime.RegisterPlugin and calls the plugin the way containerd
 * does, with messages a test chooses.
 */
export class FakeNriRuntime {
  private readonly accepted: PluginPeer[] = [];
  private readonly waiting: ((peer: PluginPeer) => void)[] = [];
  private taken = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly options: Required<FakeNriRuntimeOptions>,
    private readonly protos: NriProtos,
    private readonly envelope: Envelope,
  ) {
    server.on("connection", (socket) => this.accept(socket));
  }

  static async listen(options: FakeNriRuntimeOptions): Promise<FakeNriRuntime> {
    fs.rmSync(options.socketPath, { force: true });
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.socketPath, resolve);
    });
    return new FakeNriRuntime(
      server,
      { registrationTimeoutMs: 5_000, requestTimeoutMs: 2_000, ...options },
      loadNriProtos(),
      loadEnvelope(),
    );
  }

  /** Every plugin connection so far, in order. */
  get connections(): readonly PluginPeer[] {
    return this.accepted;
  }

  /** The next plugin connection not handed out yet, waiting for it if need be. */
  nextConnection(): Promise<PluginPeer> {
    const peer = this.accepted[this.taken];
    if (peer !== undefined) {
      this.taken++;
      return Promise.resolve(peer);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Stops listening (removing the socket) and drops every plugin connection. */
  async close(): Promise<void> {
    for (const peer of this.accepted) peer.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.options.socketPath, { force: true });
  }

  private accept(socket: net.Socket): void {
    const peer = new PluginPeer(socket, this.options, this.protos, this.envelope);
    this.accepted.push(peer);
    const waiter = this.waiting.shift();
    if (waiter !== undefined) {
      this.taken++;
      waiter(peer);
    }
  }
}

/** One plugin connection, seen from the runtime. */
export class PluginPeer {
  /** The plugin's registration; rejects (and the connection closes) when it is late. */
  readonly registration: Promise<RegisterPluginRequest>;
  private readonly mux: Multiplexer;
  private readonly client: TtrpcClient;

  constructor(
    socket: net.Socket,
    private readonly options: Required<FakeNriRuntimeOptions>,
    private readonly protos: NriProtos,
    envelope: Envelope,
  ) {
    this.mux = new Multiplexer(socket);
    const registered = Promise.withResolvers<RegisterPluginRequest>();
    this.registration = registered.promise;
    this.registration.catch(() => undefined);
    const timer = setTimeout(() => {
      registered.reject(new Error("the plugin did not register in time"));
      this.close();
    }, options.registrationTimeoutMs);
    void this.mux.closed.then(() => {
      clearTimeout(timer);
      registered.reject(new Error("the connection closed before the plugin registered"));
    });
    new TtrpcServer(envelope)
      .register(protos.runtime.RegisterPlugin, async (request): Promise<Empty> => {
        clearTimeout(timer);
        registered.resolve(request);
        return {};
      })
      .serve(this.mux.open(ConnectionId.RUNTIME_SERVICE));
    this.client = new TtrpcClient(this.mux.open(ConnectionId.PLUGIN_SERVICE), envelope);
  }

  get closed(): Promise<Error | undefined> {
    return this.mux.closed;
  }

  configure(overrides: Partial<ConfigureRequest> = {}): Promise<ConfigureResponse> {
    return this.client.call(
      this.protos.plugin.Configure,
      {
        config: "",
        runtime_name: "fake-runtime",
        runtime_version: "v0.0.0",
        registration_timeout: String(this.options.registrationTimeoutMs),
        request_timeout: String(this.options.requestTimeoutMs),
        NRI_version: "v0.12.0",
        ...overrides,
      },
      this.callOptions(),
    );
  }

  /** One Synchronize call per batch, `more` set on all but the last, as the runtime splits. */
  async synchronize(batches: WirePodSandbox[][]): Promise<SynchronizeResponse[]> {
    const responses: SynchronizeResponse[] = [];
    for (const [i, pods] of batches.entries()) {
      responses.push(
        await this.client.call(
          this.protos.plugin.Synchronize,
          { pods, more: i < batches.length - 1 },
          this.callOptions(),
        ),
      );
    }
    return responses;
  }

  /** What the runtime does after registration: Configure, then Synchronize. */
  async handshake(pods: WirePodSandbox[] = []): Promise<ConfigureResponse> {
    await this.registration;
    const configured = await this.configure();
    await this.synchronize([pods]);
    return configured;
  }

  runPodSandbox(pod: WirePodSandbox): Promise<Empty> {
    return this.client.call(this.protos.plugin.RunPodSandbox, { pod }, this.callOptions());
  }

  stopPodSandbox(pod: WirePodSandbox): Promise<Empty> {
    return this.client.call(this.protos.plugin.StopPodSandbox, { pod }, this.callOptions());
  }

  removePodSandbox(pod: WirePodSandbox): Promise<Empty> {
    return this.client.call(this.protos.plugin.RemovePodSandbox, { pod }, this.callOptions());
  }

  /** The older runtimes' way to deliver an event. */
  stateChange(event: string, pod: WirePodSandbox): Promise<Empty> {
    return this.client.call(this.protos.plugin.StateChange, { event, pod }, this.callOptions());
  }

  shutdown(): Promise<Empty> {
    return this.client.call(this.protos.plugin.Shutdown, {}, this.callOptions());
  }

  /** Any method by path, e.g. one the plugin does not serve. */
  callRaw(methodPath: string, payload: Buffer = Buffer.alloc(0)): Promise<Buffer> {
    const { service, method } = splitMethodPath(methodPath);
    return this.client.callRaw(service, method, payload, this.callOptions());
  }

  close(): void {
    this.mux.close();
  }

  private callOptions(): CallOptions {
    return { timeoutMs: this.options.requestTimeoutMs };
  }
}

/** A pod sandbox as a runtime would send it, with test defaults. */
export function wirePod(overrides: Partial<WirePodSandbox> = {}): WirePodSandbox {
  const name = overrides.name ?? "pod";
  return {
    id: `sandbox-${name}`,
    name,
    uid: `uid-${name}`,
    namespace: "default",
    labels: {},
    annotations: {},
    runtime_handler: "",
    linux: {
      cgroup_parent: "",
      cgroups_path: "",
      namespaces: [{ type: "network", path: `/var/run/netns/cni-${name}` }],
    },
    pid: 0,
    ips: [],
    ...overrides,
  };
}
