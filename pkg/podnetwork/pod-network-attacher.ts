import fs from "node:fs";
import type { Logger } from "pino";
import type { CheckpointedMap } from "../../lib/checkpoint/checkpointed-map.js";
import type { CniConfigList } from "../../lib/cni/index.js";
import type { CniRuntime } from "../../lib/cni/index.js";
import { podInterfaceOf, type CniResult } from "../../lib/cni/index.js";
import type { ClaimStatusWriter } from "../claimstatus/claim-status.js";
import type { FaultHook } from "../faults/faults.js";
import { messageOf } from "../../lib/util/errors.js";
import { PerKeyQueue } from "../../lib/util/per-key-queue.js";
import {
  interfacesToAttach,
  type AttachedInterface,
  type ClaimOfPod,
  type SandboxAttachment,
  type SandboxRef,
} from "./attachment.js";
import { NetnsHolds } from "./netns-holds.js";
import type { PodNetworkStatusWriter } from "../multus/network-status.js";
import { networkStatusesOf, type NetworkOutcome } from "./network-status.js";

/** The CNI operations attaching needs (lib/cni's CniExecutor). */
export interface CniRunner {
  add(config: CniConfigList, runtime: CniRuntime): Promise<CniResult>;
  del(config: CniConfigList, runtime: CniRuntime): Promise<void>;
}

/** Where prepared claims come from (the VfClaimPreparer's checkpoint). */
export interface PreparedClaims {
  /** Claims prepared (PrepareCompleted) for the pod with this UID. */
  preparedClaimsOfPod(podUid: string): ClaimOfPod[];
}

export interface PodNetworkAttacherOptions {
  claims: PreparedClaims;
  cni: CniRunner;
  /** Sandbox ID → what is attached there; survives restarts. */
  attachments: CheckpointedMap<SandboxAttachment>;
  status: Pick<ClaimStatusWriter, "write">;
  driverName: string;
  logger: Logger;
  /** Clock for condition timestamps; tests pin it. */
  now?: () => Date;
  /** Crash-test hook (DRA_SRIOV_FAULT), as in prepare. */
  faultHook?: FaultHook;
  /**
   * What on the host keeps the pod's claims from going in (a whole PF whose VFs changed
   * since prepare), asked before the first ADD: any problem fails the sandbox, reported on
   * the claims. Default: none.
   */
  hostProblems?: (claims: readonly ClaimOfPod[]) => string[];
  /**
   * Writes the pod's `k8s.v1.cni.cncf.io/network-status` after an attach, as Multus does;
   * set only where this driver serves the networks annotation (no Multus on the node).
   */
  networkStatus?: Pick<PodNetworkStatusWriter, "write">;
}

/** What one attach did, for logs, metrics and the benchmark. */
export interface AttachReport {
  interfaces: number;
  /** Time spent in CNI plugins, ms. */
  cniMs: number;
  /** Time of the whole attach, ms: the rest is our own overhead. */
  totalMs: number;
}

/**
 * Plugs the VFs prepared for a pod into its sandbox's network namespace when the sandbox
 * starts, and takes them out when it stops: CNI ADD and DEL with the configuration
 * resolved at prepare time. Each sandbox's attachment is checkpointed before the first ADD,
 * so whatever a crash or a runtime restart interrupts is finished or undone on the next
 * synchronize. Results go to the claims' `status.devices` in the background.
 */
export class PodNetworkAttacher {
  private readonly queue = new PerKeyQueue();
  private readonly netnsHolds = new NetnsHolds();
  private readonly logger: Logger;

  constructor(private readonly options: PodNetworkAttacherOptions) {
    this.logger = options.logger.child({ component: "pod-network" });
  }

  /**
   * ADD for every VF with a network. Throws when one fails, after undoing the others: the
   * runtime then fails the sandbox, and nothing stays half-attached.
   */
  attach(sandbox: SandboxRef): Promise<AttachReport> {
    return this.queue.run(sandbox.id, () => this.attachOne(sandbox));
  }

  /** DEL for what is attached to the sandbox; nothing attached is fine. */
  detach(sandbox: Pick<SandboxRef, "id">): Promise<void> {
    return this.queue.run(sandbox.id, () => this.detachOne(sandbox.id));
  }

  /**
   * Detaches every sandbox that holds a VF of the claim. The kubelet unprepares a claim
   * only once its pods are gone, so their sandboxes are stopped; this catches those the
   * runtime never told us about (containerd forgets, across its own restart, which pods
   * it announced to plugins, and sends no stop or remove for them).
   */
  async detachClaim(claimUid: string): Promise<void> {
    const holding = [...this.options.attachments.all()]
      .filter(([, attachment]) =>
        attachment.interfaces.some((iface) => iface.claimUid === claimUid),
      )
      .map(([id]) => id);
    for (const id of holding) {
      this.logger.info({ sandboxId: id, claimUid }, "claim unprepared; detaching its sandbox");
      await this.detach({ id });
    }
  }

  /**
   * Brings attachments in line with the sandboxes the runtime has (after a restart of
   * either side): sandboxes that are gone are detached, half-done attaches are redone, and
   * running sandboxes that started without their VFs get them. Claims that are prepared
   * for pods whose sandbox has not started yet are left alone.
   */
  async synchronize(sandboxes: readonly SandboxRef[]): Promise<void> {
    const live = new Map(sandboxes.map((sandbox) => [sandbox.id, sandbox]));
    for (const [id, attachment] of this.options.attachments.all()) {
      const sandbox = live.get(id);
      if (sandbox === undefined || !netnsExists(sandbox.netns)) {
        this.logger.info(
          { sandboxId: id, podUid: attachment.podUid },
          "sandbox is gone; detaching",
        );
        await this.detach({ id }).catch((error: unknown) =>
          this.logger.warn(
            { sandboxId: id, err: messageOf(error) },
            "cannot detach; retried on the next synchronize",
          ),
        );
      } else if (attachment.state === "Attached") {
        this.netnsHolds.hold(id, sandbox.netns); // held again after a restart of ours
      } else if (attachment.state === "Attaching") {
        this.logger.info({ sandboxId: id }, "finishing an attach a restart interrupted");
        await this.detach({ id }).catch(() => undefined);
      }
    }
    for (const sandbox of sandboxes) {
      if (this.options.attachments.get(sandbox.id) !== undefined) continue;
      if (!netnsExists(sandbox.netns)) continue; // stopped: nothing can go in
      if (interfacesToAttach(this.options.claims.preparedClaimsOfPod(sandbox.uid)).length === 0)
        continue;
      this.logger.info(
        { sandboxId: sandbox.id, pod: `${sandbox.namespace}/${sandbox.name}` },
        "sandbox started while the plugin was away; attaching its VFs",
      );
      // The sandbox runs already: a failure can only be reported (on the claims), not refused.
      await this.attach(sandbox).catch(() => undefined);
    }
  }

  private async attachOne(sandbox: SandboxRef): Promise<AttachReport> {
    const started = performance.now();
    const log = this.logger.child({
      sandboxId: sandbox.id,
      podUid: sandbox.uid,
      pod: `${sandbox.namespace}/${sandbox.name}`,
    });
    const known = this.options.attachments.get(sandbox.id);
    if (known?.state === "Attached") {
      return { interfaces: known.interfaces.length, cniMs: 0, totalMs: 0 };
    }
    if (known !== undefined) await this.detachOne(sandbox.id);
    const claims = this.options.claims.preparedClaimsOfPod(sandbox.uid);
    const interfaces = interfacesToAttach(claims);
    if (interfaces.length === 0) return { interfaces: 0, cniMs: 0, totalMs: 0 };
    if (sandbox.netns === "") {
      const error = `pod ${sandbox.namespace}/${sandbox.name} runs on the host network, so its VFs' networks (${describe(interfaces)}) have no pod namespace to go into: drop hostNetwork, or the netAttachDefName from the VfConfig`;
      this.report(claims, interfaces, new Map(), error);
      throw new Error(error);
    }
    const problems = this.options.hostProblems?.(claims) ?? [];
    if (problems.length > 0) {
      const error = problems.join("; ");
      log.warn({ err: error }, "refusing the sandbox");
      this.report(claims, interfaces, new Map(), error);
      throw new Error(error);
    }
    const attachment: SandboxAttachment = {
      podUid: sandbox.uid,
      namespace: sandbox.namespace,
      name: sandbox.name,
      netns: sandbox.netns,
      state: "Attaching",
      interfaces,
    };
    // Taking the sandbox is one checkpoint change under the node lock: during a rolling
    // update both plugin instances hear the event, and only one may run the ADDs.
    this.netnsHolds.hold(sandbox.id, sandbox.netns);
    try {
      await this.options.attachments.update((entries) => {
        if (entries.has(sandbox.id)) throw new TakenByAnotherInstance();
        entries.set(sandbox.id, attachment);
      });
    } catch (error) {
      this.netnsHolds.release(sandbox.id);
      if (!(error instanceof TakenByAnotherInstance)) throw error;
      log.info("another instance of the plugin is attaching this sandbox");
      return { interfaces: 0, cniMs: 0, totalMs: 0 };
    }

    await this.options.faultHook?.("during-attach-after-checkpoint", { sandboxId: sandbox.id });
    // Different VFs are independent: ADD them side by side, so a pod with several VFs
    // answers the runtime in about the time of one (its request timeout is 2 s by default).
    const cniStarted = performance.now();
    const added = await Promise.allSettled(
      interfaces.map(async (iface): Promise<AttachedInterface> => {
        const result = await this.options.cni.add(iface.cniConfig, cniRuntime(sandbox, iface));
        return { ...iface, podInterface: podInterfaceOf(result, iface.ifName) };
      }),
    );
    const cniMs = performance.now() - cniStarted;
    const attached = added.flatMap((outcome) =>
      outcome.status === "fulfilled" ? [outcome.value] : [],
    );
    const failures = added.flatMap((outcome, index) =>
      outcome.status === "rejected" ? [{ iface: interfaces[index]!, error: outcome.reason }] : [],
    );
    if (failures.length > 0) {
      const message = failures
        .map(
          ({ iface, error }) =>
            `cannot attach VF ${iface.pciAddress} of claim ${iface.claimNamespace}/${iface.claimName} as ${iface.ifName} (network ${iface.cniConfig.name}): ${messageOf(error)}`,
        )
        .join("; ");
      log.warn({ err: message }, "CNI ADD failed; undoing the sandbox's VFs");
      // DEL the failed ones too: a plugin may have done part of its ADD. What DEL cannot
      // undo stays checkpointed as Attaching, and the sandbox's stop or remove retries it.
      await this.undo(sandbox.id, interfaces, log).catch((undoError: unknown) =>
        log.error({ err: messageOf(undoError) }, "cannot undo the failed attach"),
      );
      this.report(claims, interfaces, outcomesOf(attached), message);
      throw new Error(message, { cause: failures[0]!.error });
    }
    await this.options.faultHook?.("during-attach-after-add", { sandboxId: sandbox.id });
    await this.options.attachments.update((entries) =>
      entries.set(sandbox.id, { ...attachment, state: "Attached", interfaces: attached }),
    );
    this.report(claims, interfaces, outcomesOf(attached));
    this.options.networkStatus?.write(
      { namespace: sandbox.namespace, name: sandbox.name, uid: sandbox.uid },
      attached.flatMap(({ network, pciAddress, podInterface }) =>
        network !== undefined && podInterface !== undefined
          ? [{ network, pciAddress, podInterface }]
          : [],
      ),
    );
    const totalMs = performance.now() - started;
    log.info(
      {
        interfaces: attached.map(({ ifName, pciAddress, podInterface }) => ({
          ifName,
          pciAddress,
          ips: podInterface?.ips,
        })),
        cniMs: Math.round(cniMs * 100) / 100,
        totalMs: Math.round(totalMs * 100) / 100,
      },
      "attached VFs to the sandbox",
    );
    return { interfaces: attached.length, cniMs, totalMs };
  }

  private async detachOne(sandboxId: string): Promise<void> {
    const attachment = this.options.attachments.get(sandboxId);
    if (attachment === undefined) return;
    const log = this.logger.child({
      sandboxId,
      podUid: attachment.podUid,
      pod: `${attachment.namespace}/${attachment.name}`,
    });
    await this.undo(sandboxId, attachment.interfaces, log);
    log.info(
      { interfaces: attachment.interfaces.map((iface) => iface.ifName) },
      "detached VFs from the sandbox",
    );
  }

  /**
   * DEL in reverse order, all of them even when one fails; the entry goes only when all
   * passed, so a failure is retried by the next stop, remove or synchronize.
   */
  private async undo(sandboxId: string, interfaces: readonly AttachedInterface[], log: Logger) {
    const attachment = this.options.attachments.get(sandboxId);
    const sandbox = {
      id: sandboxId,
      uid: attachment?.podUid ?? "",
      namespace: attachment?.namespace ?? "",
      name: attachment?.name ?? "",
      // The runtime's namespace, else the one we hold; with neither, none: the plugin then
      // cleans up what it can.
      netns:
        attachment && netnsExists(attachment.netns)
          ? attachment.netns
          : (this.netnsHolds.pathOf(sandboxId) ?? ""),
    };
    const failures: string[] = [];
    for (const iface of [...interfaces].reverse()) {
      try {
        await this.options.cni.del(iface.cniConfig, cniRuntime(sandbox, iface));
      } catch (error) {
        failures.push(`${iface.ifName} (VF ${iface.pciAddress}): ${messageOf(error)}`);
        log.warn({ device: iface.device, err: messageOf(error) }, "CNI DEL failed");
      }
    }
    if (failures.length > 0) {
      throw new Error(`cannot detach ${failures.join("; ")}; retried when the sandbox is removed`);
    }
    await this.options.attachments.update((entries) => entries.delete(sandboxId));
    this.netnsHolds.release(sandboxId);
  }

  /** Writes each affected claim's network status; a VF without an outcome failed with `error`. */
  private report(
    claims: readonly ClaimOfPod[],
    interfaces: readonly AttachedInterface[],
    outcomes: Map<string, NetworkOutcome>,
    error?: string,
  ): void {
    if (error !== undefined) {
      for (const iface of interfaces) {
        if (!outcomes.has(iface.device)) outcomes.set(iface.device, { attached: false, error });
      }
      // The VFs that were attached were undone too.
      for (const [device, outcome] of outcomes) {
        if (outcome.attached) outcomes.set(device, { attached: false, error });
      }
    }
    const now = (this.options.now?.() ?? new Date()).toISOString().replace(/\.\d+Z$/, "Z");
    for (const { uid, claim } of claims) {
      if (!interfaces.some((iface) => iface.claimUid === uid)) continue;
      this.options.status.write(
        { uid, namespace: claim.namespace, name: claim.name },
        networkStatusesOf(claim, this.options.driverName, outcomes, now),
      );
    }
  }
}

class TakenByAnotherInstance extends Error {}

function cniRuntime(sandbox: SandboxRef, iface: AttachedInterface): CniRuntime {
  return {
    containerId: sandbox.id,
    netns: sandbox.netns,
    ifName: iface.ifName,
    args: {
      K8S_POD_NAMESPACE: sandbox.namespace,
      K8S_POD_NAME: sandbox.name,
      K8S_POD_INFRA_CONTAINER_ID: sandbox.id,
      K8S_POD_UID: sandbox.uid,
    },
    ...(iface.runtimeConfig ? { capabilityArgs: { ...iface.runtimeConfig } } : {}),
  };
}

/** Each device's outcome: its own interface's (a whole PF's, not one of its VFs'). */
function outcomesOf(attached: readonly AttachedInterface[]): Map<string, NetworkOutcome> {
  const outcomes = new Map<string, NetworkOutcome>();
  for (const iface of attached) {
    if (iface.podInterface && !outcomes.has(iface.device)) {
      outcomes.set(iface.device, { attached: true, podInterface: iface.podInterface });
    }
  }
  return outcomes;
}

function describe(interfaces: readonly AttachedInterface[]): string {
  return interfaces.map((iface) => `${iface.ifName} on ${iface.cniConfig.name}`).join(", ");
}

function netnsExists(netns: string): boolean {
  return netns !== "" && fs.existsSync(netns);
}
