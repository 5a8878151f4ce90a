// The kubelet plugin's public surface for cmd/: the DRA node service behind one
// ClaimPreparer, device health for the kubelet from a HealthSource, and kubelet registration.
export type {
  ClaimPreparer,
  ClaimRef,
  PreparedDevice,
  PrepareOutcome,
  UnprepareOutcome,
} from "./claim-preparer.js";
export {
  startKubeletPlugin,
  type KubeletPlugin,
  type KubeletDeviceHealthOptions,
  type KubeletPluginOptions,
} from "./kubelet-plugin.js";
export {
  MAX_HEALTH_MESSAGE_CHARS,
  type DeviceHealth,
  type HealthSource,
  type HealthState,
} from "./device-health.js";
