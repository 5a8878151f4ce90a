import type { handleUnaryCall, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type {
  ClaimPreparer,
  ClaimRef,
  PreparedDevice,
  PrepareOutcome,
  UnprepareOutcome,
} from "./claim-preparer.js";
import type { NodeOperation, PluginMetrics } from "./plugin-metrics.js";
import type {
  NodePrepareResourcesRequest,
  NodePrepareResourcesResponse,
  NodeUnprepareResourcesRequest,
  NodeUnprepareResourcesResponse,
  WireClaim,
  WireDevice,
} from "./protos.js";

export type DraApiVersion = "v1" | "v1beta1";

/**
 * Serves the kubelet's DRAPlugin service (both API versions) on top of one ClaimPreparer.
 * Per-claim problems, thrown exceptions included, become per-claim errors: a failed RPC
 * would make the kubelet discard the answers for every claim in the call. Calls run
 * concurrently: the kubelet prepares different pods' claims in parallel, and the preparer
 * serializes work on any one claim itself.
 */
export class NodeService {
  private readonly stopping = new AbortController();

  constructor(
    private readonly preparer: ClaimPreparer,
    private readonly logger: Logger,
    private readonly metrics: PluginMetrics,
  ) {}

  /** Handlers for one API version's DRAPlugin service. */
  handlers(version: DraApiVersion): UntypedServiceImplementation {
    const prepare: handleUnaryCall<NodePrepareResourcesRequest, NodePrepareResourcesResponse> = (
      call,
      callback,
    ) => {
      void this.answer(
        "prepare",
        version,
        call,
        (claims, signal) => this.preparer.prepare(claims, signal),
        prepareResponseOf,
      ).then((response) => callback(null, response));
    };
    const unprepare: handleUnaryCall<
      NodeUnprepareResourcesRequest,
      NodeUnprepareResourcesResponse
    > = (call, callback) => {
      void this.answer(
        "unprepare",
        version,
        call,
        (claims, signal) => this.preparer.unprepare(claims, signal),
        unprepareResponseOf,
      ).then((response) => callback(null, response));
    };
    return { NodePrepareResources: prepare, NodeUnprepareResources: unprepare };
  }

  /** Tells running and queued calls to give up (signals their AbortSignal). */
  abort(reason: string): void {
    this.stopping.abort(new Error(reason));
  }

  /** Runs the preparer and answers every claim; never rejects. */
  private async answer<
    Outcome extends PrepareOutcome | UnprepareOutcome,
    Response extends { claims: Record<string, { error: string }> },
  >(
    operation: NodeOperation,
    version: DraApiVersion,
    call: ServerUnaryCall<{ claims: WireClaim[] }, Response>,
    work: (
      claims: readonly ClaimRef[],
      signal: AbortSignal,
    ) => Promise<ReadonlyMap<string, Outcome>>,
    respond: (
      claims: readonly ClaimRef[],
      outcomes: ReadonlyMap<string, Outcome> | Error,
    ) => Response,
  ): Promise<Response> {
    const stopTimer = this.metrics.requestDuration.startTimer({ operation });
    const claims = claimRefsOf(call.request.claims);
    // A claim reference that is no Kubernetes name never reaches the driver, where its
    // parts form file names and API paths.
    const refused = new Map<string, Outcome>();
    for (const claim of claims) {
      const problem = claimRefProblem(claim);
      if (problem !== undefined) refused.set(claim.uid, { error: problem } as Outcome);
    }
    const accepted = claims.filter((claim) => !refused.has(claim.uid));
    const cancelled = new AbortController();
    // The kubelet cancels after its call timeout or when the connection drops.
    call.on("cancelled", () => cancelled.abort(new Error("the kubelet cancelled the call")));
    const signal = AbortSignal.any([cancelled.signal, this.stopping.signal]);

    const outcomes =
      accepted.length === 0 && refused.size > 0
        ? refused
        : await Promise.resolve()
            .then(() => {
              signal.throwIfAborted();
              return work(accepted, signal);
            })
            .then(
              (worked) => new Map([...worked, ...refused]),
              (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
            );
    const response = respond(claims, outcomes);
    this.record(operation, version, claims, response.claims, stopTimer());
    return response;
  }

  private record(
    operation: NodeOperation,
    version: DraApiVersion,
    claims: readonly ClaimRef[],
    answers: Record<string, { error: string }>,
    seconds: number,
  ): void {
    const failed = claims.filter((claim) => answers[claim.uid]?.error);
    for (const claim of failed) {
      this.logger.warn(
        {
          operation,
          apiVersion: version,
          claim: claimName(claim),
          error: answers[claim.uid]!.error,
        },
        `${operation} of claim failed; the kubelet retries`,
      );
    }
    this.logger.info(
      {
        operation,
        apiVersion: version,
        claims: claims.map(claimName),
        failed: failed.length,
        durationMs: Math.round(seconds * 1000),
      },
      "answered the kubelet",
    );
    this.metrics.requests.inc({
      operation,
      api_version: version,
      result: failed.length > 0 ? "error" : "success",
    });
    if (failed.length > 0) this.metrics.claimErrors.inc({ operation }, failed.length);
  }
}

/** A namespace: an RFC 1123 label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A ResourceClaim's name: an RFC 1123 subdomain. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** An object UID (the API server makes UUIDs): no separator, nothing a path could use. */
const UID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Why a claim reference from the kubelet is not one Kubernetes could have made, if it is not. */
export function claimRefProblem(claim: ClaimRef): string | undefined {
  const bad = [
    NAMESPACE.test(claim.namespace) ? undefined : "namespace",
    NAME.test(claim.name) ? undefined : "name",
    UID.test(claim.uid) ? undefined : "UID",
  ].filter((part) => part !== undefined);
  if (bad.length === 0) return undefined;
  const shown = (value: string) => JSON.stringify(value.slice(0, 80));
  return (
    `refused: the kubelet named claim ${shown(claim.namespace)}/${shown(claim.name)} ` +
    `(UID ${shown(claim.uid)}): ${bad.join(" and ")} ${bad.length > 1 ? "are" : "is"} not a valid Kubernetes value`
  );
}

export function claimRefsOf(claims: readonly WireClaim[]): ClaimRef[] {
  return claims.map(({ namespace, name, uid }) => ({ namespace, name, uid }));
}

/** One answer per requested claim, whatever the preparer returned or threw. */
export function prepareResponseOf(
  claims: readonly ClaimRef[],
  outcomes: ReadonlyMap<string, PrepareOutcome> | Error,
): NodePrepareResourcesResponse {
  const answers: NodePrepareResourcesResponse["claims"] = {};
  for (const claim of claims) {
    const outcome = outcomeFor("prepare", claim, outcomes);
    answers[claim.uid] =
      "devices" in outcome
        ? { devices: outcome.devices.map(wireDeviceOf), error: "" }
        : {
            devices: [],
            error: outcome.error || `prepare of claim ${claimName(claim)} failed without a reason`,
          };
  }
  return { claims: answers };
}

export function unprepareResponseOf(
  claims: readonly ClaimRef[],
  outcomes: ReadonlyMap<string, UnprepareOutcome> | Error,
): NodeUnprepareResourcesResponse {
  const answers: NodeUnprepareResourcesResponse["claims"] = {};
  for (const claim of claims) {
    answers[claim.uid] = { error: outcomeFor("unprepare", claim, outcomes).error ?? "" };
  }
  return { claims: answers };
}

function outcomeFor<T extends PrepareOutcome | UnprepareOutcome>(
  operation: NodeOperation,
  claim: ClaimRef,
  outcomes: ReadonlyMap<string, T> | Error,
): T | { error: string } {
  if (outcomes instanceof Error) {
    return { error: `${operation} of claim ${claimName(claim)} failed: ${outcomes.message}` };
  }
  return (
    outcomes.get(claim.uid) ?? {
      error: `driver bug: no ${operation} result for claim ${claimName(claim)}; the kubelet retries`,
    }
  );
}

function wireDeviceOf(device: PreparedDevice): WireDevice {
  return {
    request_names: device.requestNames.map(baseRequestName),
    pool_name: device.poolName,
    device_name: device.deviceName,
    cdi_device_ids: device.cdiDeviceIds,
  };
}

/**
 * A device allocated for a subrequest ("request/subrequest") of a prioritized-list request
 * is reported under the request: that is the name containers reference.
 */
export function baseRequestName(requestName: string): string {
  return requestName.split("/", 1)[0]!;
}

export function claimName(claim: ClaimRef): string {
  return `${claim.namespace}/${claim.name} (${claim.uid})`;
}
