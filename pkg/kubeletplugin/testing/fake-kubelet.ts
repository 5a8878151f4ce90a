import { Client, credentials, Metadata, type MethodDefinition } from "@grpc/grpc-js";
import { DRA_PLUGIN_TYPE, DRA_SUPPORTED_VERSIONS } from "../../../api/proto/index.js";
import type { DraApiVersion } from "../node-service.js";
import type {
  HealthCheckResponse,
  KubeletProtos,
  NodePrepareResourcesResponse,
  NodeUnprepareResourcesResponse,
  PluginInfo,
  WireClaim,
} from "../protos.js";

export interface RegistrationOutcome {
  info: PluginInfo;
  /** The DRA service the kubelet would use from now on, e.g. "v1.DRAPlugin". */
  chosenService: string;
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
    return { info, chosenService: chosenService! };
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

  private call<Req, Res>(
    socketPath: string,
    method: MethodDefinition<Req, Res>,
    request: Req,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<Res> {
    let client = this.clients.get(socketPath);
    if (!client) {
      // A socket path, or host:port of a relay to one (the real-kernel tier's guest).
      const target = socketPath.startsWith("/") ? `unix://${socketPath}` : socketPath;
      client = new Client(target, credentials.createInsecure());
      this.clients.set(socketPath, client);
    }
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
