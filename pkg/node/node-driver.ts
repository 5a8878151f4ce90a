import type { Logger } from "pino";
import type {
  ClaimPreparer,
  ClaimRef,
  PrepareOutcome,
  UnprepareOutcome,
} from "../../lib/kubeletplugin/index.js";

/** What the node driver needs of the pod-network step: taking a claim's VFs out of its pods. */
export interface ClaimNetworkDetacher {
  detachClaim(claimUid: string): Promise<unknown>;
}

/**
 * The kubelet-facing driver of the node: prepare is prepare; unprepare first takes the
 * claims' VFs out of their pods' networks (the pods are gone, and the CNI DEL must run while
 * the VF is as ADD left it), then unprepares them. A detach that fails is logged and does
 * not stop the unprepare: the kubelet retries an unprepare, nobody retries a detach.
 */
export class NodeDriver implements ClaimPreparer {
  constructor(
    private readonly preparer: ClaimPreparer,
    /** The pod-network step, while the NRI hook runs. */
    private readonly networks: () => ClaimNetworkDetacher | undefined,
    private readonly logger: Logger,
  ) {}

  prepare(claims: readonly ClaimRef[], signal: AbortSignal): Promise<Map<string, PrepareOutcome>> {
    return this.preparer.prepare(claims, signal);
  }

  async unprepare(
    claims: readonly ClaimRef[],
    signal: AbortSignal,
  ): Promise<Map<string, UnprepareOutcome>> {
    const networks = this.networks();
    await Promise.all(
      claims.map((claim) =>
        networks
          ?.detachClaim(claim.uid)
          .catch((error: unknown) =>
            this.logger.warn(
              { claimUid: claim.uid, err: String(error) },
              "cannot detach the claim's sandboxes",
            ),
          ),
      ),
    );
    return this.preparer.unprepare(claims, signal);
  }
}
