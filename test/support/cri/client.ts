import path from "node:path";
import { Client, credentials, Metadata, type MethodDefinition } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type {
  ContainerConfig,
  ContainerStatusResponse,
  ExecSyncResult,
  Image,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatusResponse,
  VersionResponse,
} from "./types.js";

export type * from "./types.js";

/** Our subset of CRI runtime.v1, beside this module (tests run from the source tree). */
export const CRI_PROTO = path.join(import.meta.dirname, "runtime-v1.proto");

/** The CRI API version the kubelet announces in Version. */
export const CRI_API_VERSION = "v1";

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
};

// Wire shapes of the calls whose request or response the wrappers reshape.
interface WireContainerConfig extends Omit<ContainerConfig, "envs"> {
  envs: { key: string; value: Buffer }[];
}

type Methods = Record<string, MethodDefinition<unknown, unknown>>;

let definitions: protoLoader.PackageDefinition | undefined;

function service(name: "runtime.v1.RuntimeService" | "runtime.v1.ImageService"): Methods {
  definitions ??= protoLoader.loadSync(CRI_PROTO, LOADER_OPTIONS);
  const definition = definitions[name];
  if (definition === undefined || "format" in definition) {
    throw new Error(`gRPC service ${name} is not defined in ${CRI_PROTO}`);
  }
  return definition as unknown as Methods;
}

export interface CriClientOptions {
  /** Deadline of each call; RunPodSandbox sets up a network, so not too short. */
  callTimeoutMs?: number;
}

/**
 * A thin, typed CRI client over a unix socket: the calls the kubelet makes to run pods
 * and containers, for tests against a real container runtime (hack/containerd.sh).
 * Errors are grpc-js ServiceErrors (with `code` and `details`) from the runtime.
 */
export class CriClient {
  private readonly client: Client;
  private readonly runtime = service("runtime.v1.RuntimeService");
  private readonly images = service("runtime.v1.ImageService");
  private readonly callTimeoutMs: number;

  constructor(
    /** Path of the runtime's socket (not a `unix://` URL). */
    readonly socketPath: string,
    options: CriClientOptions = {},
  ) {
    this.client = new Client(`unix://${socketPath}`, credentials.createInsecure());
    this.callTimeoutMs = options.callTimeoutMs ?? 60_000;
  }

  close(): void {
    this.client.close();
  }

  version(): Promise<VersionResponse> {
    return this.call(this.runtime, "Version", { version: CRI_API_VERSION });
  }

  /** Runs a pod sandbox (its pause container and network); resolves to its ID. */
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ""): Promise<string> {
    const response = await this.call<{ pod_sandbox_id: string }>(this.runtime, "RunPodSandbox", {
      config,
      runtime_handler: runtimeHandler,
    });
    return response.pod_sandbox_id;
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, "StopPodSandbox", { pod_sandbox_id: podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, "RemovePodSandbox", { pod_sandbox_id: podSandboxId });
  }

  podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.call(this.runtime, "PodSandboxStatus", { pod_sandbox_id: podSandboxId, verbose });
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const response = await this.call<{ items: PodSandbox[] }>(this.runtime, "ListPodSandbox", {
      filter: filter ?? null,
    });
    return response.items;
  }

  /** Creates a container in a pod; `sandboxConfig` is the config the pod was run with. */
  async createContainer(
    podSandboxId: string,
    config: ContainerConfig,
    sandboxConfig: PodSandboxConfig,
  ): Promise<string> {
    const wire: WireContainerConfig = {
      ...config,
      // As the kubelet sends it: the name the pod spec gave, which CRI-O checks signatures
      // against and refuses a container without.
      image: { user_specified_image: config.image.image, ...config.image },
      envs: (config.envs ?? []).map(({ key, value }) => ({ key, value: Buffer.from(value) })),
    };
    const response = await this.call<{ container_id: string }>(this.runtime, "CreateContainer", {
      pod_sandbox_id: podSandboxId,
      config: wire,
      sandbox_config: sandboxConfig,
    });
    return response.container_id;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, "StartContainer", { container_id: containerId });
  }

  /** Stop signal, then SIGKILL after `timeoutSeconds` (0: at once). */
  async stopContainer(containerId: string, timeoutSeconds = 0): Promise<void> {
    await this.call(this.runtime, "StopContainer", {
      container_id: containerId,
      timeout: timeoutSeconds,
    });
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, "RemoveContainer", { container_id: containerId });
  }

  containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    return this.call(this.runtime, "ContainerStatus", { container_id: containerId, verbose });
  }

  /**
   * Runs a command in a running container and waits for it (what exec probes do). The
   * runtime kills it after `timeoutSeconds`; output is decoded as UTF-8.
   */
  async execSync(containerId: string, cmd: string[], timeoutSeconds = 30): Promise<ExecSyncResult> {
    const response = await this.call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>(
      this.runtime,
      "ExecSync",
      { container_id: containerId, cmd, timeout: timeoutSeconds },
      (timeoutSeconds + 30) * 1000,
    );
    return {
      stdout: response.stdout.toString("utf8"),
      stderr: response.stderr.toString("utf8"),
      exitCode: response.exit_code,
    };
  }

  /** Images the runtime has, optionally only those matching one reference. */
  async listImages(image?: string): Promise<Image[]> {
    const response = await this.call<{ images: Image[] }>(this.images, "ListImages", {
      filter: image === undefined ? null : { image: { image } },
    });
    return response.images;
  }

  /** The image, or null when the runtime does not have it. */
  async imageStatus(image: string): Promise<Image | null> {
    const response = await this.call<{ image: Image | null }>(this.images, "ImageStatus", {
      image: { image },
    });
    return response.image;
  }

  private call<Res>(
    methods: Methods,
    name: string,
    request: unknown,
    timeoutMs = this.callTimeoutMs,
  ): Promise<Res> {
    const method = methods[name];
    if (method === undefined) throw new Error(`CRI method ${name} is not in ${CRI_PROTO}`);
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => (error ? reject(error) : resolve(response as Res)),
      );
    });
  }
}
