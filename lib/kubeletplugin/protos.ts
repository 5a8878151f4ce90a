import path from "node:path";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  PROTO_FILES,
  PROTO_LOADER_OPTIONS,
  SERVICE_NAMES,
  findProtoDir,
  requireProtoFiles,
} from "../../api/proto/index.js";

// Message shapes as @grpc/proto-loader hands them over with the options below: field names
// exactly as in the .proto files (keepCase), every field present (defaults, arrays), enums
// as their names. Outgoing messages use the same shapes.

export interface WireClaim {
  namespace: string;
  uid: string;
  name: string;
}

export interface NodePrepareResourcesRequest {
  claims: WireClaim[];
}

export interface WireDevice {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
}

export interface NodePrepareResourceResponse {
  devices: WireDevice[];
  error: string;
}

export interface NodePrepareResourcesResponse {
  claims: Record<string, NodePrepareResourceResponse>;
}

export interface NodeUnprepareResourcesRequest {
  claims: WireClaim[];
}

export interface NodeUnprepareResourceResponse {
  error: string;
}

export interface NodeUnprepareResourcesResponse {
  claims: Record<string, NodeUnprepareResourceResponse>;
}

export type InfoRequest = Record<string, never>;

export interface PluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}

export interface RegistrationStatus {
  plugin_registered: boolean;
  error: string;
}

export type RegistrationStatusResponse = Record<string, never>;

export interface HealthCheckRequest {
  service: string;
}

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

export interface HealthCheckResponse {
  status: ServingStatus;
}

export type NodeWatchResourcesRequest = Record<string, never>;

export type WireHealthStatus = "UNKNOWN" | "HEALTHY" | "UNHEALTHY";

export interface WireDeviceHealth {
  device: { pool_name: string; device_name: string };
  health: WireHealthStatus;
  /** int64 unix seconds; proto-loader reads int64 as a decimal string (longs: String). */
  last_updated_time: string;
  /** int64 seconds, as a decimal string. */
  health_check_timeout_seconds: string;
  message: string;
}

export interface NodeWatchResourcesResponse {
  devices: WireDeviceHealth[];
}

export interface RegistrationService extends ServiceDefinition {
  GetInfo: MethodDefinition<InfoRequest, PluginInfo>;
  NotifyRegistrationStatus: MethodDefinition<RegistrationStatus, RegistrationStatusResponse>;
}

/** v1 and v1beta1 carry the same messages, so one type describes both. */
export interface DraService extends ServiceDefinition {
  NodePrepareResources: MethodDefinition<NodePrepareResourcesRequest, NodePrepareResourcesResponse>;
  NodeUnprepareResources: MethodDefinition<
    NodeUnprepareResourcesRequest,
    NodeUnprepareResourcesResponse
  >;
}

export interface HealthService extends ServiceDefinition {
  Check: MethodDefinition<HealthCheckRequest, HealthCheckResponse>;
}

/** v1 and v1alpha1 carry the same messages, so one type describes both. */
export interface DraHealthService extends ServiceDefinition {
  NodeWatchResources: MethodDefinition<NodeWatchResourcesRequest, NodeWatchResourcesResponse>;
}

export interface KubeletProtos {
  registration: RegistrationService;
  draV1: DraService;
  draV1beta1: DraService;
  health: HealthService;
  draHealthV1: DraHealthService;
  draHealthV1alpha1: DraHealthService;
}

const DRA_METHODS = ["NodePrepareResources", "NodeUnprepareResources"];

const loaded = new Map<string, KubeletProtos>();

/**
 * Loads the service definitions once per directory. Without `protoDir` the files are
 * looked up from this module's location (see findProtoDir).
 */
export function loadKubeletProtos(protoDir?: string): KubeletProtos {
  const dir = path.resolve(protoDir ?? findProtoDir(import.meta.dirname, PROTO_FILES.registration));
  const cached = loaded.get(dir);
  if (cached) return cached;
  const definitions = protoLoader.loadSync(requireProtoFiles(dir, Object.values(PROTO_FILES)), {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [dir],
  });
  const protos: KubeletProtos = {
    registration: service<RegistrationService>(definitions, SERVICE_NAMES.registration, [
      "GetInfo",
      "NotifyRegistrationStatus",
    ]),
    draV1: service<DraService>(definitions, SERVICE_NAMES.draV1, DRA_METHODS),
    draV1beta1: service<DraService>(definitions, SERVICE_NAMES.draV1beta1, DRA_METHODS),
    health: service<HealthService>(definitions, SERVICE_NAMES.health, ["Check"]),
    draHealthV1: service<DraHealthService>(definitions, SERVICE_NAMES.draHealthV1, [
      "NodeWatchResources",
    ]),
    draHealthV1alpha1: service<DraHealthService>(definitions, SERVICE_NAMES.draHealthV1alpha1, [
      "NodeWatchResources",
    ]),
  };
  loaded.set(dir, protos);
  return protos;
}

function service<T extends ServiceDefinition>(
  definitions: protoLoader.PackageDefinition,
  fullName: string,
  methods: readonly string[],
): T {
  const definition = definitions[fullName];
  if (definition === undefined || "format" in definition) {
    throw new Error(`gRPC service ${fullName} is not defined in the .proto files`);
  }
  for (const method of methods) {
    if (!(method in definition)) {
      throw new Error(`gRPC service ${fullName} lacks method ${method} in the .proto files`);
    }
  }
  // The checks above establish the methods; their message shapes are the .proto files',
  // and proto-loader's method definitions are what grpc-js serves and calls.
  return definition as unknown as T;
}
