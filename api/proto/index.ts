/**
 * The gRPC protocols the node plugin speaks, described by the `.proto` files beside this
 * module. tsc does not copy `.proto` files into dist/, so programs find them on disk at run
 * time (see pkg/kubeletplugin/protos.ts); these constants say which files and services.
 */

/** The `.proto` files, relative to the directory that holds this module's source. */
export const PROTO_FILES = {
  registration: "kubelet/pluginregistration/v1/registration.proto",
  draV1: "kubelet/dra/v1/dra.proto",
  draV1beta1: "kubelet/dra/v1beta1/dra.proto",
  health: "grpc/health/v1/health.proto",
} as const;

/** Fully qualified gRPC service names, as they appear in method paths on the wire. */
export const SERVICE_NAMES = {
  registration: "pluginregistration.Registration",
  draV1: "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin",
  draV1beta1: "k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin",
  health: "grpc.health.v1.Health",
} as const;

/** `PluginInfo.type` of a DRA driver. */
export const DRA_PLUGIN_TYPE = "DRAPlugin";

/**
 * What a DRA plugin lists in `PluginInfo.supported_versions` for each DRA service it serves
 * (k8s.io/kubelet pkg/apis/dra/{v1,v1beta1} DRAPluginService). The kubelet picks the first
 * entry it supports, so the newest comes first.
 */
export const DRA_SUPPORTED_VERSIONS = ["v1.DRAPlugin", "v1beta1.DRAPlugin"] as const;
