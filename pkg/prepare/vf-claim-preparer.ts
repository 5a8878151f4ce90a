import type { Logger } from "pino";
import { CdiSpecStore } from "../../lib/cdi/store.js";
import { qualifiedDeviceName, type CdiSpec } from "../../lib/cdi/spec.js";
import type { InstanceLiveness } from "../../lib/checkpoint/live-instance.js";
import {
  bindDriver,
  DriverBindError,
  refuseSharedIommuGroup,
  type BindOptions,
} from "../host/driver-binding.js";
import { setNetdevUp } from "../host/netdev-link.js";
import { setNumVfs } from "../host/num-vfs.js";
import type { HostPaths } from "../host/paths.js";
import type {
  ClaimPreparer,
  ClaimRef,
  PrepareOutcome,
  UnprepareOutcome,
} from "../../lib/kubeletplugin/index.js";
import { isNotFound, type KubeClient } from "../../lib/kube/client.js";
import { podsPath } from "../../lib/kube/api-paths.js";
import type { DeviceResult, ResourceClaim } from "./allocation.js";
import { nodeAllocationOf } from "./allocation.js";
import { claimCdiSpec, deviceNodePaths, preparedDevicesOf } from "./cdi-edits.js";
import { ClaimError } from "./claim-error.js";
import { isPfDeviceName } from "../devices/model.js";
import { messageOf } from "../../lib/util/errors.js";
import type { DevicePlanInput } from "./claim-plan.js";
import { pciAddressOfDevice, planClaim } from "./claim-plan.js";
import {
  claimPath,
  deviceStatusesOf,
  type ClaimStatusWriter,
} from "../claimstatus/claim-status.js";
import type { FaultHook, FaultStep } from "../faults/faults.js";
import { missingDeviceNodes, readFunctionOnHost } from "./host-state.js";
import { interfaceNamesInPods } from "./interface-names.js";
import type { NetworkAttachmentDefinition } from "./network-config.js";
import {
  cniConfigListOf,
  formatRef,
  netAttachDefPath,
  netAttachDefRefOf,
} from "./network-config.js";
import { PerKeyQueue } from "../../lib/util/per-key-queue.js";
import type { NetAttachDefRef, PreparedClaim } from "./prepared-claim.js";
import type { PreparedClaimStore } from "./prepared-claim-store.js";
import { functionsOf, isVfio, rebindsDriver } from "./prepared-claim.js";
import type { HostAction, HostSnapshot } from "./recovery.js";
import { recoveryDecision, redoActions, undoActions } from "./recovery.js";
import { decodeRequestConfigs, vfConfigFor } from "./vf-configs.js";
import { removeDeviceInfo, writeDeviceInfo } from "./device-info.js";
import { wholePfVfsChangedMessage } from "./whole-pf.js";
import { mergeVfConfigs, type VfConfig } from "../../api/v1alpha1/vf-config.js";
import { assignNetworks } from "../multus/assign.js";
import {
  NETWORKS_ANNOTATION,
  NetworksAnnotationError,
  parseNetworksAnnotation,
  RESOURCE_NAME_ANNOTATION,
} from "../multus/networks-annotation.js";
import {
  EXTENDED_RESOURCE_CLAIM_ANNOTATION,
  extendedResourceDevices,
  vfConfigsOfAssignments,
  type PodOfClaim,
} from "./annotated-networks.js";

/** Resource name the node published for a device (`resourceName` attribute), if any. */
export type ResourceNameLookup = (
  device: string,
) => string | undefined | Promise<string | undefined>;

export interface VfClaimPreparerOptions {
  client: Pick<KubeClient, "request">;
  paths: HostPaths;
  /** DRA driver name, e.g. `sriovnetwork.openshift.io`. */
  driverName: string;
  /** This node; our pool has its name. */
  nodeName: string;
  /** The node's prepared claims, checkpointed (shared with the publisher and pod networks). */
  claims: PreparedClaimStore;
  /** Writes what was applied into the claim's status (shared with the pod-network step). */
  status: Pick<ClaimStatusWriter, "write">;
  /**
   * This instance and how to tell whether another still runs (rolling updates); default:
   * an instance alone on the node.
   */
  instance?: InstanceLiveness;
  /** CDI kind of our specs; default `<driverName>/vf`. */
  cdiKind?: string;
  /** Default interface names are `<prefix>1`, `<prefix>2`, ...; default `net`. */
  interfacePrefix?: string;
  /** Let a VfConfig name a NetworkAttachmentDefinition outside the claim's namespace. */
  allowCrossNamespaceNetworks?: boolean;
  /** How long one driver bind may take; default 10 s. */
  bindTimeoutMs?: number;
  logger: Logger;
  /** Crash-test hook: the daemon builds one from `DRA_SRIOV_FAULT` for prepare and attach; none by default. */
  faultHook?: FaultHook;
  /** The `resourceName` this node published for a device (the publisher knows it). */
  resourceNameOf: ResourceNameLookup;
  /**
   * Serve the `k8s.v1.cni.cncf.io/networks` annotation of pods whose VFs come from extended
   * resources (device-plugin pods): each VF of the claim the scheduler made for them goes
   * to the network whose `resourceName` names its resource. Off by default: Multus does it.
   */
  networksAnnotation?: boolean;
  /**
   * Write Multus's device information for each prepared device
   * (`/var/run/k8s.cni.cncf.io/devinfo/dp/<claim name>-<PCI address>-device.json`, type pci)
   * with the CDI spec, and remove it with the spec. Off by default.
   */
  deviceInfo?: boolean;
}

export interface RecoveryReport {
  /** Claims whose interrupted prepare or unprepare was rolled back and forgotten. */
  rolledBack: string[];
  /** Prepared claims checked and, where the host lost something, re-applied. */
  reapplied: string[];
  /** Claims recovery could not bring to a safe state; they stay in the checkpoint. */
  failed: { claimUid: string; error: string }[];
  /** Claim UIDs of our CDI spec files that no checkpoint entry knew, now removed. */
  removedCdiSpecs: string[];
  /** Claims half-done by another plugin instance that still runs (rolling update). */
  leftToOtherInstance: string[];
  /** Set when the checkpoint was unreadable and moved aside. */
  checkpointSetAside?: { path: string; reason: string };
}

interface PlanInputs {
  podUids: string[];
  devices: DevicePlanInput[];
}

/** What prepare read: the claim (the status write builds on it) and the plan's inputs. */
interface ReadClaim {
  claim: ResourceClaim;
  inputs: PlanInputs;
}

const DEFAULT_BIND_TIMEOUT_MS = 10_000;
/**
 * Prepares ResourceClaims of SR-IOV VFs on this node: reads the claim's allocation and
 * VfConfigs, plans every VF (driver, IOMMU group, interface name, network, CDI name),
 * checkpoints the plan, binds drivers, writes the claim's CDI spec, and records the claim
 * as prepared. Work on one claim is serialized; different claims run in parallel. Every
 * step is recorded before or after it runs so a crash at any point is undone or redone
 * (see recover()). The checkpoint is changed under a node-wide lock and re-read when it
 * changed on disk, so a second plugin instance on the node (rolling update) sees what the
 * first recorded.
 */
export class VfClaimPreparer implements ClaimPreparer {
  private readonly queue = new PerKeyQueue();
  private readonly claims: PreparedClaimStore;
  private readonly cdi: CdiSpecStore;
  private readonly faultHook: FaultHook | undefined;
  private readonly cdiKind: string;
  private readonly logger: Logger;
  private readonly instance: InstanceLiveness;

  constructor(private readonly options: VfClaimPreparerOptions) {
    this.instance = options.instance ?? {
      id: "alone",
      isAlive: (id) => Promise.resolve(id === "alone"),
    };
    this.logger = options.logger.child({ component: "prepare" });
    this.cdiKind = options.cdiKind ?? `${options.driverName}/vf`;
    this.claims = options.claims;
    this.cdi = new CdiSpecStore(options.paths.cdiRoot, this.cdiKind);
    this.faultHook = options.faultHook;
  }

  async prepare(
    claims: readonly ClaimRef[],
    signal: AbortSignal,
  ): Promise<Map<string, PrepareOutcome>> {
    const outcomes = await Promise.all(
      claims.map(
        async (ref) =>
          [ref.uid, await this.queue.run(ref.uid, () => this.prepareOne(ref, signal))] as const,
      ),
    );
    return new Map(outcomes);
  }

  async unprepare(
    claims: readonly ClaimRef[],
    signal: AbortSignal,
  ): Promise<Map<string, UnprepareOutcome>> {
    const outcomes = await Promise.all(
      claims.map(
        async (ref) =>
          [ref.uid, await this.queue.run(ref.uid, () => this.unprepareOne(ref, signal))] as const,
      ),
    );
    return new Map(outcomes);
  }

  /**
   * Brings host and checkpoint to a consistent state at start-up, before the kubelet is
   * served: rolls back interrupted prepares and unprepares, re-applies prepared claims
   * where the host lost them (reboot, tmpfs CDI root), and removes CDI specs of ours that
   * no claim owns. A corrupt checkpoint is set aside and reported, not fatal.
   */
  async recover(): Promise<RecoveryReport> {
    const loaded = this.claims.load();
    const report: RecoveryReport = {
      rolledBack: [],
      reapplied: [],
      failed: [],
      removedCdiSpecs: [],
      leftToOtherInstance: [],
    };
    if (loaded.setAside) {
      report.checkpointSetAside = loaded.setAside;
      this.logger.error(
        loaded.setAside,
        "the checkpoint was unreadable and is set aside: prepared claims it listed are unknown now; check the file, and the VFs' drivers, by hand",
      );
    }
    report.removedCdiSpecs.push(...this.removeUnownedSpecs());
    for (const uid of loaded.entries.keys()) {
      await this.queue.run(uid, async () => {
        const claim = this.claims.get(uid);
        if (claim === undefined) return; // finished meanwhile by another instance
        const log = this.claimLogger(uid, claim);
        if (await this.inOtherHands(claim)) {
          log.info(
            { state: claim.state, owner: claim.owner },
            "another instance of the plugin is working on this claim; leaving it to that one",
          );
          report.leftToOtherInstance.push(uid);
          return;
        }
        const decision = recoveryDecision(
          claim,
          this.snapshot(uid, claim),
          loaded.fromPreviousBoot,
        );
        log.info(
          { state: claim.state, actions: decision.actions.map((action) => action.kind) },
          `recovering claim: ${decision.reason}`,
        );
        try {
          await this.execute(uid, claim, decision.actions, log);
          (claim.state === "PrepareCompleted" ? report.reapplied : report.rolledBack).push(uid);
        } catch (error) {
          report.failed.push({ claimUid: uid, error: messageOf(error) });
          log.error({ err: messageOf(error) }, "cannot recover claim; it stays in the checkpoint");
        }
      });
    }
    // Saving records this boot, so the next start knows the entries are from this one.
    await this.claims.update(() => undefined);
    return report;
  }

  /**
   * Removes our CDI specs that no checkpoint entry owns, before any spec is re-created: a
   * device is named by its PCI address, so such a spec would clash in the runtime's CDI
   * registry with the next claim of the same VF. The files are listed before the entries
   * are read (an entry is recorded before its spec is written), so a claim another
   * instance is preparing keeps its spec.
   */
  private removeUnownedSpecs(): string[] {
    const files = this.cdi.claims();
    const known = this.claims.all();
    const removed = files.filter((uid) => !known.has(uid));
    for (const uid of removed) {
      this.cdi.remove(uid);
      this.logger.info({ claimUid: uid }, "removed a CDI spec no prepared claim owns");
    }
    return removed;
  }

  /** Whether a still-running other instance (rolling update) has this claim's work under way. */
  private async inOtherHands(claim: PreparedClaim): Promise<boolean> {
    if (claim.state === "PrepareCompleted" || claim.owner === undefined) return false;
    return claim.owner !== this.instance.id && (await this.instance.isAlive(claim.owner));
  }

  private async prepareOne(ref: ClaimRef, signal: AbortSignal): Promise<PrepareOutcome> {
    const log = this.claimLogger(ref.uid, ref);
    try {
      const existing = this.claims.get(ref.uid);
      if (existing?.state === "PrepareCompleted") {
        return { devices: await this.reapply(ref.uid, existing, log) };
      }
      if (existing !== undefined && (await this.inOtherHands(existing))) {
        throw new ClaimError(
          "another instance of the plugin on this node (rolling update) is still working on this claim; the kubelet retries",
        );
      }
      if (existing !== undefined) {
        log.info({ state: existing.state }, "rolling back an interrupted run before preparing");
        await this.execute(
          ref.uid,
          existing,
          undoActions(existing, this.snapshot(ref.uid, existing)),
          log,
        );
      }
      signal.throwIfAborted();
      const { claim, inputs } = await this.planInputs(ref, signal);
      const plan = await this.checkpointPlan(ref, inputs);
      return { devices: await this.apply(ref, plan, log, claim) };
    } catch (error) {
      log.warn({ err: messageOf(error) }, "prepare failed");
      return { error: operatorMessage("prepare", error) };
    }
  }

  private async unprepareOne(ref: ClaimRef, signal: AbortSignal): Promise<UnprepareOutcome> {
    const log = this.claimLogger(ref.uid, ref);
    try {
      const existing = this.claims.get(ref.uid);
      if (existing === undefined) {
        // Never prepared, or already unprepared; a spec left by a lost entry goes too.
        this.cdi.remove(ref.uid);
        return {};
      }
      signal.throwIfAborted();
      let claim = existing;
      if (claim.state === "PrepareCompleted") {
        claim = { ...claim, state: "UnprepareStarted", owner: this.instance.id };
        await this.claims.update((entries) => entries.set(ref.uid, claim));
        await this.fault("during-unprepare-after-checkpoint", ref.uid);
      }
      await this.execute(ref.uid, claim, undoActions(claim, this.snapshot(ref.uid, claim)), log, {
        "remove-cdi-spec": "during-unprepare-after-cdi-removed",
        "bind-driver": "during-unprepare-after-driver-restored",
      });
      log.info({ podUids: claim.podUids }, "unprepared claim");
      return {};
    } catch (error) {
      log.warn({ err: messageOf(error) }, "unprepare failed");
      return { error: operatorMessage("unprepare", error) };
    }
  }

  /** Reads the claim and everything it refers to; touches nothing. */
  private async planInputs(ref: ClaimRef, signal: AbortSignal): Promise<ReadClaim> {
    const claim = await this.readClaim(ref, signal);
    const allocation = nodeAllocationOf(claim, ref, this.options);
    const configs = decodeRequestConfigs(allocation.configs, {
      driverName: this.options.driverName,
      claimName: `${ref.namespace}/${ref.name}`,
    });
    const nads = new Map<string, Promise<NetworkAttachmentDefinition>>();
    const nadOf = (nadRef: NetAttachDefRef): Promise<NetworkAttachmentDefinition> => {
      const key = formatRef(nadRef);
      if (!nads.has(key)) nads.set(key, this.readNad(nadRef, signal));
      return nads.get(key)!;
    };
    const annotated = this.options.networksAnnotation
      ? await this.annotatedNetworks(claim, allocation.results, nadOf, signal)
      : new Map<string, VfConfig>();
    const resourceNames = await this.publishedResourceNames(
      allocation.results.map((result) => result.device),
    );
    const devices = await Promise.all(
      allocation.results.map(async (result): Promise<DevicePlanInput> => {
        const fromAnnotation = annotated.get(result.device);
        const config = fromAnnotation
          ? mergeVfConfigs([vfConfigFor(configs, result.request), fromAnnotation])
          : vfConfigFor(configs, result.request);
        const nadRef = netAttachDefRefOf(
          config,
          ref.namespace,
          this.options.allowCrossNamespaceNetworks ?? false,
        );
        let network: DevicePlanInput["network"] = null;
        if (nadRef !== null) {
          network = { ref: nadRef, cniConfig: cniConfigListOf(await nadOf(nadRef)) };
        }
        return {
          result,
          config,
          host: readFunctionOnHost(
            this.options.paths,
            pciAddressOfDevice(result.device),
            isPfDeviceName(result.device),
          ),
          publishedResourceName: resourceNames.get(result.device),
          network,
          ...(fromAnnotation?.ips || fromAnnotation?.mac ? { addressesForThisVf: true } : {}),
        };
      }),
    );
    return { claim, inputs: { podUids: allocation.podUids, devices } };
  }

  /**
   * Decides everything and records it as PrepareStarted in one checkpoint change: claims of
   * one pod prepared in parallel see each other's interface names.
   */
  private async checkpointPlan(ref: ClaimRef, inputs: PlanInputs): Promise<PreparedClaim> {
    let plan: PreparedClaim | undefined;
    await this.claims.update((entries) => {
      plan = {
        ...planClaim({
          ref,
          ...inputs,
          takenIfNames: interfaceNamesInPods(entries, inputs.podUids, ref.uid),
          interfacePrefix: this.options.interfacePrefix ?? "net",
          cdiKind: this.cdiKind,
          cdiSpecFile: this.cdi.fileFor(ref.uid),
        }),
        owner: this.instance.id,
      };
      entries.set(ref.uid, plan);
    });
    return plan!;
  }

  /**
   * Carries out a plan recorded as PrepareStarted (with the drivers to restore): the host,
   * then the checkpoint again. Any failure rolls the host back before it is reported.
   */
  private async apply(ref: ClaimRef, plan: PreparedClaim, log: Logger, read: ResourceClaim) {
    let completed: PreparedClaim;
    let spec: CdiSpec;
    try {
      await this.fault("after-checkpoint-started", ref.uid);
      const functions = plan.devices.flatMap(functionsOf);
      for (const vf of functions.filter(isVfio)) {
        refuseSharedIommuGroup(this.options.paths, vf.pciAddress);
      }
      for (const vf of functions.filter(rebindsDriver)) {
        await bindDriver(this.options.paths, vf.pciAddress, vf.targetDriver, this.bindOptions);
        log.info(
          { pciAddress: vf.pciAddress, from: vf.originalDriver, to: vf.targetDriver },
          "bound VF",
        );
        await this.fault("after-driver-bound", ref.uid);
      }
      spec = this.writeSpec(ref.uid, plan);
      await this.fault("after-cdi-written", ref.uid);
      await this.fault("before-checkpoint-completed", ref.uid);
      completed = { ...plan, state: "PrepareCompleted" };
      await this.claims.update((entries) => entries.set(ref.uid, completed));
    } catch (error) {
      await this.rollBack(ref.uid, plan, log, error);
      throw error;
    }
    log.info(
      {
        podUids: completed.podUids,
        devices: completed.devices.map(({ device, pciAddress, targetDriver, ifName }) => ({
          device,
          pciAddress,
          driver: targetDriver,
          ifName,
        })),
      },
      "prepared claim",
    );
    const { uid, resourceVersion } = read.metadata;
    this.options.status.write(
      ref,
      deviceStatusesOf(completed, this.options.driverName),
      // The claim as prepare read it saves the status write a GET.
      resourceVersion === undefined
        ? undefined
        : { metadata: { uid, resourceVersion }, status: { devices: read.status?.devices ?? [] } },
    );
    return preparedDevicesOf(completed, spec);
  }

  private async rollBack(uid: string, plan: PreparedClaim, log: Logger, cause: unknown) {
    try {
      await this.execute(uid, plan, undoActions(plan, this.snapshot(uid, plan)), log);
    } catch (undoError) {
      throw new ClaimError(
        `${messageOf(cause)}; rolling back also failed: ${messageOf(undoError)}; the rollback is retried on the next prepare of the claim and at driver start`,
      );
    }
  }

  /** A repeated prepare: the same answer, after redoing whatever the host lost. */
  private async reapply(uid: string, claim: PreparedClaim, log: Logger) {
    const actions = redoActions(claim, this.snapshot(uid, claim));
    if (actions.length > 0) {
      log.info({ actions: actions.map((action) => action.kind) }, "re-applying a prepared claim");
    }
    const current = await this.execute(uid, claim, actions, log);
    return preparedDevicesOf(current, this.specOf(current));
  }

  /**
   * Runs host actions in order. A failing driver bind does not stop the others (restore
   * as much as possible), but the claim is then neither forgotten nor given a new spec,
   * and the failures are thrown together. `faultAfter` names a fault step per action kind.
   */
  private async execute(
    uid: string,
    claim: PreparedClaim,
    actions: readonly HostAction[],
    log: Logger,
    faultAfter: Partial<Record<HostAction["kind"], FaultStep>> = {},
  ): Promise<PreparedClaim> {
    const failures: string[] = [];
    let current = claim;
    for (const action of actions) {
      switch (action.kind) {
        case "remove-cdi-spec":
          this.cdi.remove(uid);
          removeDeviceInfo(this.options.paths, current);
          break;
        case "write-cdi-spec":
          if (failures.length === 0) this.writeSpec(uid, current);
          break;
        case "bind-driver":
          try {
            await bindDriver(
              this.options.paths,
              action.pciAddress,
              action.driver,
              this.bindOptions,
            );
            log.info({ pciAddress: action.pciAddress, driver: action.driver }, "bound VF");
          } catch (error) {
            failures.push(messageOf(error));
          }
          break;
        case "update-iommu-group": {
          current = withIommuGroup(current, action.pciAddress, action.iommuGroup);
          const updated = current;
          await this.claims.update((entries) => entries.set(uid, updated));
          log.info(action, "the VF's IOMMU group changed; updating the CDI spec");
          break;
        }
        case "missing-vf":
          failures.push(
            `VF ${action.pciAddress} of the prepared claim is gone from this host (VFs re-created? sriov_numvfs changed?): delete the pod so its claim is allocated again`,
          );
          break;
        case "pf-vfs-changed":
          failures.push(wholePfVfsChangedMessage(action));
          break;
        case "restore-num-vfs":
          log.warn(
            {
              pciAddress: action.pciAddress,
              prepared: action.prepared.length,
              now: action.now.length,
            },
            "the whole PF's VF count changed while it was prepared; putting back the count it had",
          );
          try {
            await setNumVfs(this.options.paths, action.pciAddress, action.numVfs, this.bindOptions);
            log.info(
              { pciAddress: action.pciAddress, numVfs: action.numVfs },
              "restored sriov_numvfs",
            );
          } catch (error) {
            failures.push(messageOf(error));
          }
          break;
        case "set-link":
          try {
            await setNetdevUp(this.options.paths, action.pciAddress, action.up);
            log.info(action, "restored the whole PF's link state");
          } catch (error) {
            failures.push(
              `cannot set ${action.name} of whole PF ${action.pciAddress} ${action.up ? "up" : "down"} as it was before the pod: ${messageOf(error)}`,
            );
          }
          break;
        case "pf-link-gone":
          log.warn(
            action,
            "the whole PF's network interface is not back in the node's namespace, so its link state cannot be put back: check where it is (ip link) and set it up by hand if it was",
          );
          break;
        case "drop-entry":
          if (failures.length === 0) await this.claims.update((entries) => entries.delete(uid));
          break;
      }
      const step = faultAfter[action.kind];
      if (step !== undefined) await this.fault(step, uid);
    }
    if (failures.length > 0) throw new ClaimError(failures.join("; "));
    return current;
  }

  /** Writes the claim's CDI spec once the device nodes it names exist on the host. */
  private writeSpec(uid: string, claim: PreparedClaim): CdiSpec {
    const nodes = [...new Set(claim.devices.flatMap(deviceNodePaths))];
    const missing = missingDeviceNodes(this.options.paths, nodes);
    if (missing.length > 0) {
      throw new ClaimError(
        `device nodes ${missing.map((node) => this.options.paths.at(node)).join(", ")} are missing on the host: is vfio-pci bound and the IOMMU on (vfio), are vhost_net and tun loaded (addVhostMount)?`,
      );
    }
    const spec = this.specOf(claim);
    this.removeClashingSpecs(uid, spec);
    this.cdi.write(uid, spec);
    if (this.options.deviceInfo) writeDeviceInfo(this.options.paths, claim);
    return spec;
  }

  /**
   * Our other specs that define a device of this one, which would make the runtime drop the
   * device from both: a spec of a claim the checkpoint does not know is stale and goes; one
   * of a claim still prepared here means the device is in two claims, and is refused.
   */
  private removeClashingSpecs(uid: string, spec: CdiSpec): void {
    const ids = new Set(spec.devices.map((device) => qualifiedDeviceName(spec.kind, device.name)));
    for (const other of this.cdi.claims()) {
      if (other === uid) continue;
      const clashing = this.cdi.deviceIds(other).filter((id) => ids.has(id));
      if (clashing.length === 0) continue;
      const owner = this.claims.get(other);
      if (owner !== undefined) {
        throw new ClaimError(
          `CDI device ${clashing.join(", ")} is still prepared here for claim ${owner.namespace}/${owner.name} (UID ${other}): the device is allocated twice; delete the pod of one of the claims`,
        );
      }
      this.cdi.remove(other);
      this.logger.info(
        { claimUid: other, cdiDevices: clashing, forClaimUid: uid },
        "removed a stale CDI spec naming a device of the claim being prepared",
      );
    }
  }

  private specOf(claim: PreparedClaim): CdiSpec {
    return claimCdiSpec(claim, { kind: this.cdiKind, hostRoot: this.options.paths.root });
  }

  private snapshot(uid: string, claim: PreparedClaim): HostSnapshot {
    return {
      vfs: new Map(
        claim.devices.map((vf) => [
          vf.pciAddress,
          readFunctionOnHost(this.options.paths, vf.pciAddress, isPfDeviceName(vf.device)),
        ]),
      ),
      cdiSpecExists: this.cdi.exists(uid),
    };
  }

  private get bindOptions(): BindOptions {
    return { timeoutMs: this.options.bindTimeoutMs ?? DEFAULT_BIND_TIMEOUT_MS };
  }

  private async fault(step: FaultStep, claimUid: string): Promise<void> {
    await this.faultHook?.(step, { claimUid });
  }

  private async readClaim(ref: ClaimRef, signal: AbortSignal): Promise<ResourceClaim> {
    try {
      return await this.options.client.request<ResourceClaim>({
        method: "GET",
        path: claimPath(ref),
        signal,
      });
    } catch (error) {
      if (isNotFound(error)) {
        throw new ClaimError(
          `ResourceClaim ${ref.namespace}/${ref.name} does not exist (deleted?): nothing to prepare`,
        );
      }
      throw new ClaimError(
        `cannot read ResourceClaim ${ref.namespace}/${ref.name}: ${messageOf(error)}; the kubelet retries`,
      );
    }
  }

  /**
   * For a claim the scheduler made for a pod's extended resources: the pod's networks
   * annotation, matched with the claim's VFs by each network's `resourceName`, as VfConfigs
   * by device. Other claims, and pods without the annotation, get none.
   */
  private async annotatedNetworks(
    claim: ResourceClaim,
    results: readonly DeviceResult[],
    nadOf: (ref: NetAttachDefRef) => Promise<NetworkAttachmentDefinition>,
    signal: AbortSignal,
  ): Promise<Map<string, VfConfig>> {
    if (claim.metadata.annotations?.[EXTENDED_RESOURCE_CLAIM_ANNOTATION] !== "true") {
      return new Map();
    }
    const pod = await this.readPodOf(claim, signal);
    const text = pod.metadata.annotations?.[NETWORKS_ANNOTATION];
    if (text === undefined || text.trim() === "") return new Map();
    const where = `pod ${pod.metadata.namespace}/${pod.metadata.name}`;
    const log = this.claimLogger(claim.metadata.uid, claim.metadata).child({
      pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
    });
    try {
      const networks = parseNetworksAnnotation(text, pod.metadata.namespace);
      const allowCross = this.options.allowCrossNamespaceNetworks ?? false;
      const resourceNames = new Map<string, string | undefined>();
      for (const network of networks) {
        if (network.namespace !== pod.metadata.namespace && !allowCross) {
          throw new NetworksAnnotationError(
            `names network ${network.namespace}/${network.name}, outside the pod's namespace: create it in ${pod.metadata.namespace}, or run the driver with cross-namespace networks allowed`,
          );
        }
        const nad = await nadOf(network).catch((error: unknown) => {
          throw error instanceof ClaimError
            ? new NetworksAnnotationError(error.message.replace(/: create it.*$/, ""))
            : error;
        });
        resourceNames.set(formatRef(network), nad.metadata.annotations?.[RESOURCE_NAME_ANNOTATION]);
        if (network.notCarried.length > 0) {
          log.warn(
            { network: formatRef(network), fields: network.notCarried },
            "the networks annotation asks for fields this driver does not carry out; they are ignored",
          );
        }
      }
      const { assigned, notServed } = assignNetworks(
        networks,
        (network) => resourceNames.get(formatRef(network)),
        extendedResourceDevices(results, pod),
      );
      for (const { network, resourceName } of notServed) {
        log.warn(
          { network: formatRef(network), resourceName: resourceName ?? null },
          "a network of the pod's annotation is not served by this claim's VFs (no resourceName, or one of another driver); this driver does not attach it",
        );
      }
      log.info(
        {
          networks: assigned.map((a) => ({
            device: a.device,
            network: formatRef(a.network),
            ifName: a.ifName,
          })),
        },
        "VFs of the pod's extended resources go to the networks of its annotation",
      );
      return vfConfigsOfAssignments(assigned);
    } catch (error) {
      if (!(error instanceof NetworksAnnotationError)) throw error;
      throw new ClaimError(
        `${where}, annotation ${NETWORKS_ANNOTATION}: ${error.message}; fix the annotation or the networks it names`,
      );
    }
  }

  /** The pod the scheduler made the claim for (its reservation), checked by UID. */
  private async readPodOf(claim: ResourceClaim, signal: AbortSignal): Promise<PodOfClaim> {
    const consumer = (claim.status?.reservedFor ?? []).find(
      (c) => (c.apiGroup ?? "") === "" && c.resource === "pods",
    );
    const name = `ResourceClaim ${claim.metadata.namespace}/${claim.metadata.name}`;
    if (consumer === undefined) throw new ClaimError(`${name} is not reserved for any pod`);
    let pod: PodOfClaim;
    try {
      pod = await this.options.client.request<PodOfClaim>({
        method: "GET",
        path: podsPath(claim.metadata.namespace, consumer.name),
        signal,
      });
    } catch (error) {
      throw new ClaimError(
        `cannot read pod ${claim.metadata.namespace}/${consumer.name}, whose networks annotation this claim serves: ${messageOf(error)}; the kubelet retries`,
      );
    }
    if (pod.metadata.uid !== consumer.uid) {
      throw new ClaimError(
        `${name} is reserved for pod ${consumer.name} with UID ${consumer.uid}, but that pod has UID ${pod.metadata.uid} now: the pod was re-created; the kubelet retries`,
      );
    }
    return pod;
  }

  private async readNad(
    ref: NetAttachDefRef,
    signal: AbortSignal,
  ): Promise<NetworkAttachmentDefinition> {
    try {
      return await this.options.client.request<NetworkAttachmentDefinition>({
        method: "GET",
        path: netAttachDefPath(ref),
        signal,
      });
    } catch (error) {
      if (isNotFound(error)) {
        throw new ClaimError(
          `NetworkAttachmentDefinition ${formatRef(ref)} does not exist: create it, or fix netAttachDefName/netAttachDefNamespace in the VfConfig`,
        );
      }
      throw new ClaimError(
        `cannot read NetworkAttachmentDefinition ${formatRef(ref)}: ${messageOf(error)}; the kubelet retries`,
      );
    }
  }

  private async publishedResourceNames(devices: readonly string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const device of devices) {
      const name = await this.options.resourceNameOf(device);
      if (name !== undefined) names.set(device, name);
    }
    return names;
  }

  private claimLogger(uid: string, claim: { namespace: string; name: string }): Logger {
    return this.logger.child({ claim: `${claim.namespace}/${claim.name}`, claimUid: uid });
  }
}

/** The claim with one function's IOMMU group renumbered: a device's, or a whole PF's VF's. */
function withIommuGroup(
  claim: PreparedClaim,
  pciAddress: string,
  iommuGroup: number | null,
): PreparedClaim {
  return {
    ...claim,
    devices: claim.devices.map((vf) => {
      if (vf.pciAddress === pciAddress) return { ...vf, iommuGroup };
      if (vf.wholePfVfs === undefined || iommuGroup === null) return vf;
      return {
        ...vf,
        wholePfVfs: vf.wholePfVfs.map((pfVf) =>
          pfVf.pciAddress === pciAddress && pfVf.vfio
            ? { ...pfVf, vfio: { ...pfVf.vfio, iommuGroup } }
            : pfVf,
        ),
      };
    }),
  };
}

/**
 * Claim and driver-binding errors are written for the operator and pass as they are;
 * anything else is unexpected and says so.
 */
function operatorMessage(operation: "prepare" | "unprepare", error: unknown): string {
  if (error instanceof ClaimError || error instanceof DriverBindError) return error.message;
  return `${operation} failed unexpectedly: ${messageOf(error)}; the kubelet retries (see the driver's log)`;
}
