import type net from "node:net";
import type { Logger } from "../log/logger.js";
import {
  Code,
  TtrpcClient,
  TtrpcError,
  TtrpcServer,
  type CallContext,
  type Envelope,
} from "../ttrpc/index.js";
import { podEventOf, SUBSCRIBED_EVENT_MASK, type PodEvent } from "./events.js";
import { ConnectionId, Multiplexer } from "./mux.js";
import type { OrderedRunner } from "./ordering.js";
import { podKey, podLogFields, toPodSandbox, type PodSandbox } from "./pod.js";
import type { ConfigureRequest, Empty, NriProtos, WirePodSandbox } from "./protos.js";
import { messageOf } from "../util/errors.js";

export interface NriPluginHandlers {
  /** Every (re)connection: the runtime's current pod sandboxes (split messages already joined). */
  synchronize(pods: PodSandbox[]): Promise<void>;
  /** Throwing answers the runtime with an error (containerd then fails the sandbox). */
  runPodSandbox(pod: PodSandbox): Promise<void>;
  stopPodSandbox(pod: PodSandbox): Promise<void>;
  removePodSandbox(pod: PodSandbox): Promise<void>;
}

/** What the runtime said about itself in Configure. */
export interface RuntimeConfiguration {
  runtimeName: string;
  runtimeVersion: string;
  nriVersion: string;
  /** Undefined when the runtime sent none. */
  registrationTimeoutMs: number | undefined;
  requestTimeoutMs: number | undefined;
}

export interface ConnectionContext {
  protos: NriProtos;
  envelope: Envelope;
  pluginName: string;
  pluginIndex: string;
  handlers: NriPluginHandlers;
  /** Shared by all connections, so events stay in order across a reconnection. */
  runner: OrderedRunner;
  logger: Logger;
  onConfigured(configuration: RuntimeConfiguration): void;
  onSynchronized(): void;
}

/** The method each pod event arrives as, for logs and error messages. */
const EVENT_METHODS: Record<PodEvent, string> = {
  RUN_POD_SANDBOX: "RunPodSandbox",
  STOP_POD_SANDBOX: "StopPodSandbox",
  REMOVE_POD_SANDBOX: "RemovePodSandbox",
};

/**
 * One connection to the runtime's NRI socket: the multiplexer, the Plugin service the
 * runtime calls (connection 1) and the client for its Runtime service (connection 2).
 */
export class NriConnection {
  private readonly mux: Multiplexer;
  private readonly client: TtrpcClient;
  /** Pods of a split Synchronize received so far. */
  private pendingPods: PodSandbox[] = [];
  private isSynchronized = false;

  constructor(
    socket: net.Socket,
    private readonly context: ConnectionContext,
  ) {
    this.mux = new Multiplexer(socket);
    this.pluginServer().serve(this.mux.open(ConnectionId.PLUGIN_SERVICE));
    this.client = new TtrpcClient(this.mux.open(ConnectionId.RUNTIME_SERVICE), context.envelope);
  }

  /** True once the runtime has configured and synchronized the plugin on this connection. */
  get synchronized(): boolean {
    return this.isSynchronized;
  }

  get isClosed(): boolean {
    return this.mux.isClosed;
  }

  /** Resolves when the connection is gone; to the error that ended it, if one did. */
  get closed(): Promise<Error | undefined> {
    return this.mux.closed;
  }

  /** Runtime.RegisterPlugin: the runtime drops plugins that have not called it within 5 s. */
  async register(timeoutMs: number): Promise<void> {
    await this.client.call(
      this.context.protos.runtime.RegisterPlugin,
      {
        plugin_name: this.context.pluginName,
        plugin_idx: this.context.pluginIndex,
        NRI_version: "",
      },
      { timeoutMs },
    );
  }

  close(error?: Error): void {
    this.mux.close(error);
  }

  private pluginServer(): TtrpcServer {
    const { plugin } = this.context.protos;
    const empty: Empty = {};
    return new TtrpcServer(this.context.envelope)
      .register(plugin.Configure, async (request) => {
        this.configure(request);
        return { events: SUBSCRIBED_EVENT_MASK };
      })
      .register(plugin.Synchronize, async (request) => ({
        more: await this.synchronize(request.pods, request.more),
      }))
      .register(plugin.Shutdown, async () => {
        this.context.logger.info("the container runtime announced its shutdown over NRI");
        return empty;
      })
      .register(plugin.RunPodSandbox, async (request, call) => {
        await this.podEvent("RUN_POD_SANDBOX", request.pod, call);
        return empty;
      })
      .register(plugin.StopPodSandbox, async (request, call) => {
        await this.podEvent("STOP_POD_SANDBOX", request.pod, call);
        return empty;
      })
      .register(plugin.RemovePodSandbox, async (request, call) => {
        await this.podEvent("REMOVE_POD_SANDBOX", request.pod, call);
        return empty;
      })
      .register(plugin.StateChange, async (request, call) => {
        // Older runtimes deliver every subscribed event here.
        const event = podEventOf(request.event);
        if (event === undefined) {
          this.context.logger.debug({ event: request.event }, "NRI event ignored: not subscribed");
        } else {
          await this.podEvent(event, request.pod, call);
        }
        return empty;
      });
  }

  private configure(request: ConfigureRequest): void {
    const configuration: RuntimeConfiguration = {
      runtimeName: request.runtime_name,
      runtimeVersion: request.runtime_version,
      nriVersion: request.NRI_version,
      registrationTimeoutMs: positiveNumber(request.registration_timeout),
      requestTimeoutMs: positiveNumber(request.request_timeout),
    };
    this.context.logger.info(
      { ...configuration, events: SUBSCRIBED_EVENT_MASK },
      "configured by the container runtime over NRI",
    );
    this.context.onConfigured(configuration);
  }

  /** Collects a split Synchronize; on its last part runs the handler. Returns `more` to echo. */
  private async synchronize(wirePods: WirePodSandbox[], more: boolean): Promise<boolean> {
    this.pendingPods.push(...wirePods.map(toPodSandbox));
    if (more) {
      this.context.logger.debug(
        { podsSoFar: this.pendingPods.length },
        "NRI synchronization continues in another message",
      );
      // The runtime requires `more` echoed, or it takes the plugin for one that cannot
      // handle split messages and disconnects it.
      return true;
    }
    const pods = this.pendingPods;
    this.pendingPods = [];
    try {
      await this.context.runner.exclusive(() => this.context.handlers.synchronize(pods));
    } catch (error) {
      this.context.logger.error(
        { err: error, pods: pods.length },
        "synchronizing with the container runtime failed; it will drop the connection and the plugin reconnects",
      );
      throw prefixed(error, `synchronizing ${pods.length} pods`);
    }
    this.isSynchronized = true;
    this.context.logger.info({ pods: pods.length }, "synchronized with the container runtime");
    this.context.onSynchronized();
    return false;
  }

  private async podEvent(
    event: PodEvent,
    wirePod: WirePodSandbox | null,
    call: CallContext,
  ): Promise<void> {
    const pod = toPodSandbox(wirePod);
    const method = EVENT_METHODS[event];
    const fields = { event: method, via: call.method, ...podLogFields(pod) };
    const { handlers, logger, runner } = this.context;
    logger.debug(fields, "NRI pod event");
    try {
      await runner.run(podKey(pod), () => {
        switch (event) {
          case "RUN_POD_SANDBOX":
            return handlers.runPodSandbox(pod);
          case "STOP_POD_SANDBOX":
            return handlers.stopPodSandbox(pod);
          case "REMOVE_POD_SANDBOX":
            return handlers.removePodSandbox(pod);
        }
      });
    } catch (error) {
      logger.error({ ...fields, err: error }, "NRI pod event failed; the runtime gets the error");
      throw prefixed(error, `${method} of pod ${pod.namespace}/${pod.name}`);
    } finally {
      if (call.deadline !== undefined && Date.now() > call.deadline) {
        logger.warn(
          fields,
          "answered NRI after the runtime's request timeout: the runtime has given up on the call and disconnected the plugin; make the handler faster",
        );
      }
    }
  }
}

function positiveNumber(decimal: string): number | undefined {
  const value = Number(decimal);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** The error the runtime sees: what failed, then why; a handler's own status code stays. */
function prefixed(error: unknown, what: string): TtrpcError {
  if (error instanceof TtrpcError)
    return new TtrpcError(error.code, `${what}: ${error.statusMessage}`);
  const reason = messageOf(error);
  return new TtrpcError(Code.UNKNOWN, `${what}: ${reason}`);
}
