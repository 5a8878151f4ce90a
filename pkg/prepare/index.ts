// Preparing claims of SR-IOV VFs on the node: the ClaimPreparer the kubelet plugin serves.
export {
  VfClaimPreparer,
  type RecoveryReport,
  type ResourceNameLookup,
  type VfClaimPreparerOptions,
} from "./vf-claim-preparer.js";
export { PreparedClaimStore } from "./prepared-claim-store.js";
export type { ClaimState, NetAttachDefRef, PreparedClaim, PreparedVf } from "./prepared-claim.js";
export { wholePfProblems } from "./host-state.js";
