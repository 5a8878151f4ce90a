// The kubelet plugin's public surface for cmd/: the DRA node service behind one
// ClaimPreparer, and kubelet registration.
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
  type KubeletPluginOptions,
} from "./kubelet-plugin.js";
