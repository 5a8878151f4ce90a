import type { Logger } from "pino";
import type { NriPluginHandlers, PodSandbox } from "../../lib/nri/index.js";
import type { SandboxRef } from "./attachment.js";
import type { PodNetworkMetrics } from "./metrics.js";
import type { PodNetworkAttacher } from "./pod-network-attacher.js";

/** The sandbox as attaching sees it: its network namespace is the one of type `network`. */
export function sandboxRefOf(pod: PodSandbox): SandboxRef {
  return {
    id: pod.id,
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    netns: pod.namespaces.find((namespace) => namespace.type === "network")?.path ?? "",
  };
}

/**
 * The runtime's pod events, turned into attach and detach. A failed attach is thrown so
 * the runtime fails the sandbox (the kubelet retries it); a failed detach is thrown too,
 * and detach runs again on RemovePodSandbox and on the next synchronize.
 */
export function podNetworkNriHandlers(
  attacher: PodNetworkAttacher,
  metrics: PodNetworkMetrics,
  logger: Logger,
): NriPluginHandlers {
  const counted = async (operation: "attach" | "detach", work: () => Promise<unknown>) => {
    try {
      await work();
      metrics.operations.inc({ operation, result: "success" });
    } catch (error) {
      metrics.operations.inc({ operation, result: "error" });
      throw error;
    }
  };
  return {
    async synchronize(pods) {
      logger.info({ sandboxes: pods.length }, "synchronizing with the runtime's pod sandboxes");
      await attacher.synchronize(pods.map(sandboxRefOf));
    },
    runPodSandbox: (pod) =>
      counted("attach", async () => {
        const report = await attacher.attach(sandboxRefOf(pod));
        if (report.interfaces > 0) {
          metrics.attachDuration.observe({}, report.totalMs / 1000);
          metrics.cniDuration.observe({}, report.cniMs / 1000);
        }
      }),
    stopPodSandbox: (pod) => counted("detach", () => attacher.detach(sandboxRefOf(pod))),
    removePodSandbox: (pod) => counted("detach", () => attacher.detach(sandboxRefOf(pod))),
  };
}
