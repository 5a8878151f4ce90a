import {
  Client,
  credentials,
  Metadata,
  type ClientReadableStream,
  type MethodDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  DRA_HEALTH_SUPPORTED_VERSIONS,
  DRA_PLUGIN_TYPE,
  DRA_SUPPORTED_VERSIONS,
} from "../../../api/proto/index.js";
import type { DraHealthApiVersion } from "../device-health-service.js";
import type { DraApiVersion } from "../node-service.js";
import type {
  HealthCheckResponse,
  KubeletProtos,
  NodePrepareResourcesResponse,
  NodeUnprepareResourcesResponse,
  NodeWatchResourcesResponse,
  PluginInfo,
  WireClaim,
  WireHealthStatus,
} from "../protos.js";

export interface RegistrationOutcome {
  info: PluginInfo;
  /** The DRA service the kubelet would use from now on, e.g. "v1.DRAPlugin". */
  chosenService: string;
  /**
   * The health service the kubelet 1.37 would watch: the first of v1, v1alpha1 the plugin
   * lists (its own order, not the plugin's), or undefined when it lists neither.
   */
  chosenHealthService: string | undefined;
}

const CALL_TIMEOUT_MS = 5_000;

/**
 * The kubelet's side of the plugin protocols, for tests: registration the way its plugin
 * watcher does it and DRA calls with the messages it sends.
 */
export class FakeKubelet {
  private readonly clients = new Map<string, Client>();

  constructor(private readonly protos: KubeletProtos) {}

  /**
   * GetInfo, the kubelet's checks (plugin type, a DRA service it knows: the first listed
   * wins), then NotifyRegistrationStatus. `rejectWith` makes it report a failure instead.
   */
  async register(registrationSocket: string, rejectWith?: string): Promise<RegistrationOutcome> {
    const registration = this.protos.registration;
    const info = await this.call(registrationSocket, registration.GetInfo, {});
    const chosenService = info.supported_versions.find((version) =>
      (DRA_SUPPORTED_VERSIONS as readonly string[]).includes(version),
    );
    const problem =
      rejectWith ??
      (info.type !== DRA_PLUGIN_TYPE ? `unexpected plugin type ${info.type}` : undefined) ??
      (chosenService === undefined ? "no supported DRA service" : undefined);
    await this.call(registrationSocket, registration.NotifyRegistrationStatus, {
      plugin_registered: problem === undefined,
      error: problem ?? "",
    });
    if (problem !== undefined) throw new Error(`registration rejected: ${problem}`);
    const chosenHealthService = DRA_HEALTH_SUPPORTED_VERSIONS.find((service) =>
      info.supported_versions.includes(service),
    );
    return { info, chosenService: chosenService!, chosenHealthService };
  }

  /**
   * Opens NodeWatchResources as the kubelet does: an empty request, no deadline, one
   * stream kept open and read message by message.
   */
  watchHealth(endpoint: string, version: DraHealthApiVersion): HealthWatch {
    const method =
      version === "v1"
        ? this.protos.draHealthV1.NodeWatchResources
        : this.protos.draHealthV1alpha1.NodeWatchResources;
    const stream = this.client(endpoint).makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      {},
      new Metadata(),
      {},
    );
    return new HealthWatch(stream);
  }

  prepare(
    endpoint: string,
    version: DraApiVersion,
    claims: WireClaim[],
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<NodePrepareResourcesResponse> {
    return this.call(
      endpoint,
      this.draService(version).NodePrepareResources,
      { claims },
      timeoutMs,
    );
  }

  unprepare(
    endpoint: string,
    version: DraApiVersion,
    claims: WireClaim[],
  ): Promise<NodeUnprepareResourcesResponse> {
    return this.call(endpoint, this.draService(version).NodeUnprepareResources, { claims });
  }

  checkHealth(endpoint: string, service: string): Promise<HealthCheckResponse> {
    return this.call(endpoint, this.protos.health.Check, { service });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private draService(version: DraApiVersion) {
    return version === "v1" ? this.protos.draV1 : this.protos.draV1beta1;
  }

  private client(socketPath: string): Client {
    let client = this.clients.get(socketPath);
    if (!client) {
      // A socket path, or host:port of a relay to one (the real-kernel tier's guest).
      const target = socketPath.startsWith("/") ? `unix://${socketPath}` : socketPath;
      client = new Client(target, credentials.createInsecure());
      this.clients.set(socketPath, client);
    }
    return client;
  }

  private call<Req, Res>(
    socketPath: string,
    method: MethodDefinition<Req, Res>,
    request: Req,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<Res> {
    const client = this.client(socketPath);
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => (error ? reject(error) : resolve(response!)),
      );
    });
  }
}

/** The kubelet's default when a report gives no timeout (pkg/kubelet/cm/dra DefaultHealthTimeout). */
const KUBELET_DEFAULT_HEALTH_TIMEOUT_S = 30;
/** The kubelet's limit on a message (v1.ResourceHealthMessageMaxLength), in bytes as Go counts. */
const KUBELET_MESSAGE_MAX_BYTES = 1024;

export interface KubeletDeviceHealth {
  health: WireHealthStatus;
  message: string;
}

interface CachedHealth extends KubeletDeviceHealth {
  receivedMs: number;
  timeoutMs: number;
}

/**
 * One NodeWatchResources stream as the kubelet reads it. Besides the raw messages it keeps
 * the kubelet's view (pkg/kubelet/cm/dra healthinfo.go): each reported device stamped with
 * its receive time, UNKNOWN once not reported within its timeout, and nothing at all once
 * the stream ended (the kubelet clears the driver).
 */
export class HealthWatch {
  private readonly queue: NodeWatchResourcesResponse[] = [];
  private readonly waiting = new Set<() => void>();
  private readonly cache = new Map<string, CachedHealth>();
  private endedWith: ServiceError | "end" | undefined;
  /** Every message received so far, in order. */
  readonly received: NodeWatchResourcesResponse[] = [];

  constructor(
    private readonly stream: ClientReadableStream<NodeWatchResourcesResponse>,
    private readonly now: () => number = Date.now,
  ) {
    stream.on("data", (message: NodeWatchResourcesResponse) => {
      this.received.push(message);
      this.queue.push(message);
      this.remember(message);
      this.wake();
    });
    stream.on("error", (error: ServiceError) => this.finish(error));
    stream.on("end", () => this.finish("end"));
  }

  /** The next message not yet taken; rejects when the stream ended first or after `timeoutMs`. */
  next(timeoutMs = CALL_TIMEOUT_MS): Promise<NodeWatchResourcesResponse> {
    return this.waitFor(() => this.queue.shift(), timeoutMs, "the next health message");
  }

  /** Takes messages until one satisfies `accept`, and returns it. */
  async until(
    accept: (message: NodeWatchResourcesResponse) => boolean,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<NodeWatchResourcesResponse> {
    return this.waitFor(
      () => {
        for (let message = this.queue.shift(); message; message = this.queue.shift()) {
          if (accept(message)) return message;
        }
        return undefined;
      },
      timeoutMs,
      "a matching health message",
    );
  }

  /** Resolves with how the stream ended: "end" for OK, else the error's status. */
  ended(timeoutMs = CALL_TIMEOUT_MS): Promise<ServiceError | "end"> {
    return this.waitFor(() => this.endedWith, timeoutMs, "the end of the health stream", false);
  }

  /** The device's health as the kubelet would show it in the pod's status now. */
  deviceHealth(poolName: string, deviceName: string): KubeletDeviceHealth {
    const cached = this.cache.get(`${poolName}/${deviceName}`);
    if (!cached || this.now() - cached.receivedMs > cached.timeoutMs) {
      return { health: "UNKNOWN", message: "" };
    }
    return { health: cached.health, message: cached.message };
  }

  /** Stops reading, as a kubelet busy elsewhere: gRPC then stops taking data off the socket. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Cancels the stream, as the kubelet does when the plugin deregisters or it stops. */
  cancel(): void {
    this.stream.cancel();
  }

  private remember(message: NodeWatchResourcesResponse): void {
    const receivedMs = this.now();
    for (const device of message.devices) {
      const timeoutS = Number(device.health_check_timeout_seconds);
      const message = Buffer.from(device.message);
      this.cache.set(`${device.device.pool_name}/${device.device.device_name}`, {
        health: device.health,
        message:
          message.length <= KUBELET_MESSAGE_MAX_BYTES
            ? device.message
            : `${message.subarray(0, KUBELET_MESSAGE_MAX_BYTES - 3).toString()}...`,
        receivedMs,
        timeoutMs: (timeoutS > 0 ? timeoutS : KUBELET_DEFAULT_HEALTH_TIMEOUT_S) * 1000,
      });
    }
  }

  private finish(how: ServiceError | "end"): void {
    this.endedWith ??= how;
    this.cache.clear();
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiting]) waiter();
  }

  private waitFor<T>(
    take: () => T | undefined,
    timeoutMs: number,
    what: string,
    failOnEnd = true,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const taken = take();
        if (taken !== undefined) {
          done();
          resolve(taken);
        } else if (failOnEnd && this.endedWith !== undefined) {
          done();
          reject(new Error(`the health stream ended (${describe(this.endedWith)}) before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(check);
      };
      this.waiting.add(check);
      check();
    });
  }
}

function describe(how: ServiceError | "end"): string {
  return how === "end" ? "OK" : `code ${how.code}: ${how.details}`;
}
