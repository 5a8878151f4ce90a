import type { Counter, Histogram, MetricsRegistry } from "../../lib/observability/metrics.js";

export interface PodNetworkMetrics {
  operations: Counter<"operation" | "result">;
  /** Whole attach, runtime event to answer: CNI plus our own overhead. */
  attachDuration: Histogram;
  /** The CNI plugins' share of an attach (ADDs run side by side: their wall time). */
  cniDuration: Histogram;
}

// The runtime drops a plugin that takes longer than its request timeout (2 s by default).
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

export function registerPodNetworkMetrics(registry: MetricsRegistry): PodNetworkMetrics {
  return {
    operations: registry.counter({
      name: "dra_sriov_pod_network_operations_total",
      help: "Sandboxes whose VFs were attached (CNI ADD) or detached (CNI DEL), by result (success or error).",
      labelNames: ["operation", "result"],
    }),
    attachDuration: registry.histogram({
      name: "dra_sriov_pod_network_attach_seconds",
      help: "Time from the runtime's sandbox start event to the answer, for sandboxes with VFs to attach.",
      labelNames: [],
      buckets: BUCKETS,
    }),
    cniDuration: registry.histogram({
      name: "dra_sriov_pod_network_cni_seconds",
      help: "Time the CNI plugins took within an attach; the rest of the attach is the driver's own.",
      labelNames: [],
      buckets: BUCKETS,
    }),
  };
}
