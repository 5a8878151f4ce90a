import path from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { PROTO_LOADER_OPTIONS, findProtoDir, requireProtoFiles } from "../../api/proto/index.js";
import type { MethodDescriptor } from "../ttrpc/index.js";

/** Our subset of NRI's API, relative to api/proto. */
export const NRI_PROTO_FILE = "nri/api.proto";

/** Fully qualified service names, as they travel in ttrpc requests. */
export const NRI_SERVICE_NAMES = {
  plugin: "nri.pkg.api.v1alpha1.Plugin",
  runtime: "nri.pkg.api.v1alpha1.Runtime",
} as const;

/** Where containerd and CRI-O listen for external NRI plugins by default. */
export const DEFAULT_NRI_SOCKET_PATH = "/var/run/nri/nri.sock";

// Message shapes as @grpc/proto-loader hands them over with the options below: field names
// exactly as in the .proto file, every field present (defaults; absent messages are null),
// int64 as decimal strings, enums by name. Outgoing messages use the same shapes.

export interface WireLinuxNamespace {
  type: string;
  path: string;
}

export interface WireLinuxPodSandbox {
  cgroup_parent: string;
  cgroups_path: string;
  namespaces: WireLinuxNamespace[];
}

export interface WirePodSandbox {
  id: string;
  name: string;
  uid: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
  linux: WireLinuxPodSandbox | null;
  pid: number;
  ips: string[];
}

export type Empty = Record<string, never>;

export interface RegisterPluginRequest {
  plugin_name: string;
  plugin_idx: string;
  NRI_version: string;
}

export interface ConfigureRequest {
  config: string;
  runtime_name: string;
  runtime_version: string;
  /** Milliseconds, int64 as a decimal string. */
  registration_timeout: string;
  /** Milliseconds, int64 as a decimal string. */
  request_timeout: string;
  NRI_version: string;
}

export interface ConfigureResponse {
  events: number;
}

export interface SynchronizeRequest {
  pods: WirePodSandbox[];
  more: boolean;
}

export interface SynchronizeResponse {
  more: boolean;
}

export interface PodSandboxRequest {
  pod: WirePodSandbox | null;
}

/** An Event's name; its number when the runtime sends one newer than our .proto. */
export type WireEvent = string | number;

export interface StateChangeEvent {
  event: WireEvent;
  pod: WirePodSandbox | null;
}

export interface PluginService {
  Configure: MethodDescriptor<ConfigureRequest, ConfigureResponse>;
  Synchronize: MethodDescriptor<SynchronizeRequest, SynchronizeResponse>;
  Shutdown: MethodDescriptor<Empty, Empty>;
  RunPodSandbox: MethodDescriptor<PodSandboxRequest, Empty>;
  StopPodSandbox: MethodDescriptor<PodSandboxRequest, Empty>;
  RemovePodSandbox: MethodDescriptor<PodSandboxRequest, Empty>;
  StateChange: MethodDescriptor<StateChangeEvent, Empty>;
}

export interface RuntimeService {
  RegisterPlugin: MethodDescriptor<RegisterPluginRequest, Empty>;
}

export interface NriProtos {
  plugin: PluginService;
  runtime: RuntimeService;
  /** Event names by number, from the .proto file. */
  events: ReadonlyMap<number, string>;
}

const PLUGIN_METHODS: readonly (keyof PluginService)[] = [
  "Configure",
  "Synchronize",
  "Shutdown",
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "StateChange",
];

const loaded = new Map<string, NriProtos>();

/**
 * Loads NRI's services once per directory. Without `protoDir` the file is looked up from
 * this module's location (api/proto in the nearest parent, see findProtoDir).
 */
export function loadNriProtos(protoDir?: string): NriProtos {
  const dir = path.resolve(protoDir ?? findProtoDir(import.meta.dirname, NRI_PROTO_FILE));
  const cached = loaded.get(dir);
  if (cached) return cached;
  const definitions = protoLoader.loadSync(requireProtoFiles(dir, [NRI_PROTO_FILE]), {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [dir],
  });
  const protos: NriProtos = {
    plugin: service<PluginService>(definitions, NRI_SERVICE_NAMES.plugin, PLUGIN_METHODS),
    runtime: service<RuntimeService>(definitions, NRI_SERVICE_NAMES.runtime, ["RegisterPlugin"]),
    events: enumValues(definitions, "nri.pkg.api.v1alpha1.Event"),
  };
  loaded.set(dir, protos);
  return protos;
}

function service<T>(
  definitions: protoLoader.PackageDefinition,
  fullName: string,
  methods: readonly string[],
): T {
  const definition = definitions[fullName];
  if (definition === undefined || "format" in definition) {
    throw new Error(`ttrpc service ${fullName} is not defined in ${NRI_PROTO_FILE}`);
  }
  for (const method of methods) {
    if (!(method in definition)) {
      throw new Error(`ttrpc service ${fullName} lacks method ${method} in ${NRI_PROTO_FILE}`);
    }
  }
  // The checks above establish the methods; their message shapes are the .proto file's,
  // and proto-loader's method definitions have MethodDescriptor's serializers.
  return definition as unknown as T;
}

function enumValues(
  definitions: protoLoader.PackageDefinition,
  fullName: string,
): Map<number, string> {
  const definition = definitions[fullName];
  const type = definition && "format" in definition ? definition.type : undefined;
  const values = (type as { value?: { name: string; number: number }[] } | undefined)?.value;
  if (values === undefined) throw new Error(`enum ${fullName} is not defined in ${NRI_PROTO_FILE}`);
  return new Map(values.map((value) => [value.number, value.name]));
}
