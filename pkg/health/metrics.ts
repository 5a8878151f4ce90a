import type { Gauge, MetricsRegistry } from "../../lib/observability/metrics.js";
import { countByState } from "./assess.js";
import type { HealthSource, HealthState } from "./model.js";

/**
 * `dra_sriov_devices{health}`: the node's published devices per health state, kept current
 * from the health source.
 */
export function registerHealthMetrics(
  registry: MetricsRegistry,
  source: HealthSource,
): Gauge<"health"> {
  const gauge = registry.gauge({
    name: "dra_sriov_devices",
    help: "Devices this node publishes, by health state",
    labelNames: ["health"],
  });
  const update = () => {
    const counts = countByState(source.current());
    for (const state of Object.keys(counts) as HealthState[]) {
      gauge.set({ health: state }, counts[state]);
    }
  };
  update();
  source.subscribe(update);
  return gauge;
}
