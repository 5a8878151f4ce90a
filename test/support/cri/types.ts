/**
 * Message shapes of runtime-v1.proto as @grpc/proto-loader hands them over with the
 * client's options: field names exactly as in the .proto (snake_case), enums as their
 * names, 64-bit integers as decimal strings, bytes as Buffers. Responses have every scalar
 * and list present (defaults); an unset message field is null.
 *
 * Requests are the same shapes with everything optional that the runtime does not need.
 */

export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";
export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";
export type ContainerState =
  "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";
export type MountPropagation =
  "PROPAGATION_PRIVATE" | "PROPAGATION_HOST_TO_CONTAINER" | "PROPAGATION_BIDIRECTIONAL";

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
}

export interface Int64Value {
  /** Decimal string on the way in and out (int64). */
  value: string | number;
}

export interface ImageSpec {
  image: string;
  annotations?: Record<string, string>;
  /** The image as the pod spec names it (the kubelet sends it; CRI-O requires it). */
  user_specified_image?: string;
}

// --- Requests ------------------------------------------------------------------------

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: NamespaceOption;
      run_as_user?: Int64Value;
      readonly_rootfs?: boolean;
      privileged?: boolean;
    };
    sysctls?: Record<string, string>;
  };
}

export interface PodSandboxFilter {
  id?: string;
  state?: { state: PodSandboxState };
  label_selector?: Record<string, string>;
}

export interface Mount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
  propagation?: MountPropagation;
}

export interface Device {
  container_path: string;
  host_path: string;
  /** cgroup device permissions, any of `r`, `w`, `m`. */
  permissions?: string;
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: ImageSpec;
  command?: string[];
  args?: string[];
  working_dir?: string;
  /** Environment variables; the client encodes the values (bytes on the wire). */
  envs?: { key: string; value: string }[];
  mounts?: Mount[];
  devices?: Device[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Relative to the pod's `log_directory`. */
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: {
    security_context?: {
      capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
      privileged?: boolean;
      namespace_options?: NamespaceOption;
      run_as_user?: Int64Value;
      readonly_rootfs?: boolean;
      no_new_privs?: boolean;
    };
  };
  /** Fully qualified CDI device names, `<vendor>/<class>=<name>`. */
  CDI_devices?: { name: string }[];
}

// --- Responses -----------------------------------------------------------------------

export interface VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface ReceivedPodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PodSandboxStatus {
  id: string;
  metadata: ReceivedPodSandboxMetadata | null;
  state: PodSandboxState;
  /** Nanoseconds since the epoch, as a decimal string. */
  created_at: string;
  network: { ip: string; additional_ips: { ip: string }[] } | null;
  linux: {
    namespaces: {
      options: {
        network: NamespaceMode;
        pid: NamespaceMode;
        ipc: NamespaceMode;
        target_id: string;
      } | null;
    } | null;
  } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus | null;
  /** Runtime-specific JSON documents, filled when `verbose` was asked for. */
  info: Record<string, string>;
  timestamp: string;
}

export interface PodSandbox {
  id: string;
  metadata: ReceivedPodSandboxMetadata | null;
  state: PodSandboxState;
  created_at: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface ContainerStatus {
  id: string;
  metadata: { name: string; attempt: number } | null;
  state: ContainerState;
  created_at: string;
  started_at: string;
  finished_at: string;
  exit_code: number;
  image: { image: string; annotations: Record<string, string> } | null;
  image_ref: string;
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: {
    container_path: string;
    host_path: string;
    readonly: boolean;
    propagation: MountPropagation;
  }[];
  log_path: string;
  image_id: string;
}

export interface ContainerStatusResponse {
  status: ContainerStatus | null;
  info: Record<string, string>;
}

export interface ExecSyncResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface Image {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  /** Bytes, as a decimal string (uint64). */
  size: string;
  uid: { value: string } | null;
  username: string;
  spec: { image: string; annotations: Record<string, string> } | null;
  /** Never garbage-collected: containerd pins the sandbox (pause) image. */
  pinned: boolean;
}
