/**
 * The protocols the node plugin speaks (kubelet gRPC, NRI over ttrpc), described by the
 * `.proto` files beside this module. tsc does not copy `.proto` files into dist/, so
 * programs find them on disk at run time (findProtoDir); the constants here say which
 * files and services the kubelet's protocols use (NRI's are in lib/nri and lib/ttrpc).
 */
import fs from "node:fs";
import path from "node:path";
import type { Options } from "@grpc/proto-loader";

/** How every .proto file of ours is loaded: field names as on the wire, plain values. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** Where the .proto files live, relative to a project or bundle root. */
const PROTO_DIR = path.join("api", "proto");

/**
 * Finds `api/proto` holding `markerFile` in `startDir` or the nearest parent that has it:
 * the source tree (pkg/x → repository root), the compiled tree (tsc does not copy .proto
 * files, so dist/api/proto has none and the search goes on to the repository root) and
 * the container bundle (api/proto shipped beside the bundle file).
 */
export function findProtoDir(startDir: string, markerFile: string): string {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, PROTO_DIR);
    if (fs.existsSync(path.join(candidate, markerFile))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    `cannot find the protocol definitions (${path.join(PROTO_DIR, markerFile)}) in ${startDir} or any parent directory: ` +
      "ship api/proto/ next to the program or pass its location explicitly",
  );
}

/** The files' paths in `dir`; throws, naming the file, when one is missing. */
export function requireProtoFiles(dir: string, files: readonly string[]): string[] {
  const paths = files.map((file) => path.join(dir, file));
  for (const file of paths) {
    if (!fs.existsSync(file)) {
      throw new Error(
        `protocol definition ${file} is missing: ship all of api/proto/ with the program`,
      );
    }
  }
  return paths;
}

/** The `.proto` files, relative to the directory that holds this module's source. */
export const PROTO_FILES = {
  registration: "kubelet/pluginregistration/v1/registration.proto",
  draV1: "kubelet/dra/v1/dra.proto",
  draV1beta1: "kubelet/dra/v1beta1/dra.proto",
  health: "grpc/health/v1/health.proto",
  draHealthV1: "kubelet/dra-health/v1/health.proto",
  draHealthV1alpha1: "kubelet/dra-health/v1alpha1/health.proto",
} as const;

/** Fully qualified gRPC service names, as they appear in method paths on the wire. */
export const SERVICE_NAMES = {
  registration: "pluginregistration.Registration",
  draV1: "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin",
  draV1beta1: "k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin",
  health: "grpc.health.v1.Health",
  draHealthV1: "v1.DRAResourceHealth",
  draHealthV1alpha1: "v1alpha1.DRAResourceHealth",
} as const;

/** `PluginInfo.type` of a DRA driver. */
export const DRA_PLUGIN_TYPE = "DRAPlugin";

/**
 * What a DRA plugin lists in `PluginInfo.supported_versions` for each DRA service it serves
 * (k8s.io/kubelet pkg/apis/dra/{v1,v1beta1} DRAPluginService). The kubelet picks the first
 * entry it supports, so the newest comes first.
 */
export const DRA_SUPPORTED_VERSIONS = ["v1.DRAPlugin", "v1beta1.DRAPlugin"] as const;

/**
 * What a DRA plugin adds to `PluginInfo.supported_versions` when it serves device health
 * (k8s.io/kubelet pkg/apis/dra-health/{v1,v1alpha1} DRAResourceHealthService): the entry is
 * the service's full name, whose package is just the version. The kubelet (≥ 1.37) takes
 * the first of its own list, v1 then v1alpha1, that the plugin lists; older kubelets know
 * only v1alpha1. The service is optional: without an entry the kubelet asks for no health.
 */
export const DRA_HEALTH_SUPPORTED_VERSIONS = [
  SERVICE_NAMES.draHealthV1,
  SERVICE_NAMES.draHealthV1alpha1,
] as const;
