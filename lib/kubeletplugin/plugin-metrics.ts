import type { Counter, Gauge, Histogram, MetricsRegistry } from "../observability/metrics.js";

export type NodeOperation = "prepare" | "unprepare";

/** The kubelet plugin's own metric families; the driver adds its gauges to the same registry. */
export interface PluginMetrics {
  /** One per NodePrepareResources/NodeUnprepareResources call; result "error" if any claim failed. */
  requests: Counter<"operation" | "api_version" | "result">;
  /** Claims that got an error back. */
  claimErrors: Counter<"operation">;
  requestDuration: Histogram<"operation">;
  registered: Gauge;
}

// The kubelet gives up on a call after 45 s; preparing VFs can take seconds (driver rebinding).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 45];

export function registerPluginMetrics(registry: MetricsRegistry): PluginMetrics {
  return {
    requests: registry.counter({
      name: "dra_sriov_node_requests_total",
      help: "DRA node service calls from the kubelet, by operation, API version and result (error when any claim failed).",
      labelNames: ["operation", "api_version", "result"],
    }),
    claimErrors: registry.counter({
      name: "dra_sriov_node_claim_errors_total",
      help: "ResourceClaims the driver could not prepare or unprepare, by operation.",
      labelNames: ["operation"],
    }),
    requestDuration: registry.histogram({
      name: "dra_sriov_node_request_duration_seconds",
      help: "Time to answer a DRA node service call, by operation.",
      labelNames: ["operation"],
      buckets: DURATION_BUCKETS,
    }),
    registered: registry.gauge({
      name: "dra_sriov_kubelet_registered",
      help: "1 while the kubelet has accepted the plugin's registration, else 0.",
      labelNames: [],
    }),
  };
}
