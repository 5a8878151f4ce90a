// Plugging prepared VFs into pod sandboxes with CNI, driven by the runtime's NRI events.
export type { SandboxAttachment, SandboxRef } from "./attachment.js";
export {
  PodNetworkAttacher,
  type AttachReport,
  type CniRunner,
  type PodNetworkAttacherOptions,
  type PreparedClaims,
} from "./pod-network-attacher.js";
export { registerPodNetworkMetrics, type PodNetworkMetrics } from "./metrics.js";
export { podNetworkNriHandlers, sandboxRefOf } from "./nri-handlers.js";
