// The kubelet plugin's public surface for cmd/: the DRA node service behind one
// ClaimPreparer, kubelet registration, health and metrics.
export type {
  ClaimPreparer,
  ClaimRef,
  PreparedDevice,
  PrepareOutcome,
  UnprepareOutcome,
} from "./claim-preparer.js";
export {
  startHttpEndpoints,
  type HttpEndpoints,
  type HttpEndpointsOptions,
  type ReadinessCheck,
} from "./http-endpoints.js";
export {
  startKubeletPlugin,
  type KubeletPlugin,
  type KubeletPluginOptions,
} from "./kubelet-plugin.js";
export { Counter, Gauge, Histogram, MetricsRegistry, type Labels } from "./metrics.js";
