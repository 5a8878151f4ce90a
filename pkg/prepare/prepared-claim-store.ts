import type { Logger } from "pino";
import { CheckpointStore, type LoadedCheckpoint } from "../../lib/checkpoint/checkpoint.js";
import { CheckpointedMap } from "../../lib/checkpoint/checkpointed-map.js";
import { InterProcessLock } from "../../lib/checkpoint/file-lock.js";
import type { ClaimRef } from "../../lib/kubeletplugin/index.js";
import { functionsOf, rebindsDriver, type PreparedClaim } from "./prepared-claim.js";

/**
 * The node's prepared claims (claim UID → what was planned and done), checkpointed: the one
 * owner of this state. Prepare changes it; the publisher, the health monitor and the
 * pod-network step only ask it through the queries below. Changes are durable when
 * `update` resolves, and made under a node-wide lock shared with a second plugin instance
 * during a rolling update (which then re-reads what the other recorded).
 */
export class PreparedClaimStore {
  private readonly checkpoint: CheckpointedMap<PreparedClaim>;

  constructor(options: { file: string; bootId: string; logger: Logger }) {
    const lockFile = `${options.file}.lock`;
    this.checkpoint = new CheckpointedMap(
      new CheckpointStore(options.file, options.bootId),
      new InterProcessLock(lockFile, {
        onWaiting: () =>
          options.logger.info(
            { lock: lockFile },
            "another plugin instance holds the claims checkpoint (a rolling update?); waiting for it",
          ),
      }),
    );
  }

  /** Reads the file (setting a corrupt one aside); once, at start, by recovery. */
  load(): LoadedCheckpoint<PreparedClaim> {
    return this.checkpoint.load();
  }

  get(uid: string): PreparedClaim | undefined {
    return this.checkpoint.get(uid);
  }

  all(): ReadonlyMap<string, PreparedClaim> {
    return this.checkpoint.all();
  }

  /** Applies `change` and resolves once it is on disk (see CheckpointedMap.update). */
  update(change: (entries: Map<string, PreparedClaim>) => void): Promise<void> {
    return this.checkpoint.update(change);
  }

  /**
   * The driver each VF had before a prepared claim rebound it (PCI address → driver). The
   * node keeps publishing that one: a VF on vfio-pci for a pod is still the iavf VF the
   * scheduler allocated, and must not change attributes or pools while it is in use.
   */
  originalDrivers(): Map<string, string> {
    const drivers = new Map<string, string>();
    for (const claim of this.all().values()) {
      // A whole PF's VFs on vfio-pci too: published as they were while the PF is in use.
      for (const fn of claim.devices.flatMap(functionsOf)) {
        if (rebindsDriver(fn)) drivers.set(fn.pciAddress, fn.originalDriver);
      }
    }
    return drivers;
  }

  /**
   * The driver each VF of a prepared claim is meant to be on (PCI address → driver): the
   * health monitor accepts it besides the VF's own.
   */
  preparedDrivers(): Map<string, string> {
    const drivers = new Map<string, string>();
    for (const claim of this.all().values()) {
      for (const fn of claim.devices.flatMap(functionsOf)) {
        if (fn.targetDriver !== "") drivers.set(fn.pciAddress, fn.targetDriver);
      }
    }
    return drivers;
  }

  /** The prepared claims holding each device (device name → claims), for health events. */
  claimsHoldingDevices(): Map<string, ClaimRef[]> {
    const holders = new Map<string, ClaimRef[]>();
    for (const [uid, claim] of this.all()) {
      if (claim.state !== "PrepareCompleted") continue;
      for (const vf of claim.devices) {
        const claims = holders.get(vf.device) ?? [];
        claims.push({ namespace: claim.namespace, name: claim.name, uid });
        holders.set(vf.device, claims);
      }
    }
    return holders;
  }

  /** Claims prepared for the pod with this UID, for the step that plugs their VFs in. */
  preparedClaimsOfPod(podUid: string): { uid: string; claim: PreparedClaim }[] {
    return [...this.all()]
      .filter(([, claim]) => claim.state === "PrepareCompleted" && claim.podUids.includes(podUid))
      .map(([uid, claim]) => ({ uid, claim }));
  }
}
