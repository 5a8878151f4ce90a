import type { Logger } from "pino";
import type { EventRecord } from "../../lib/kube/events.js";
import type { DeviceHealth, HealthSource, HealthState } from "./model.js";

/** A prepared claim, as the kubelet names it. */
export interface ClaimHolder {
  namespace: string;
  name: string;
  uid: string;
}

export interface ClaimEventsOptions {
  source: HealthSource;
  /** The prepared claims holding each device (device name → claims). */
  holders: () => ReadonlyMap<string, readonly ClaimHolder[]>;
  record: (event: EventRecord) => Promise<void>;
  driverName: string;
  nodeName: string;
  logger: Logger;
}

/**
 * Tells the owners of prepared claims when a device of theirs turns unhealthy or recovers:
 * an event on the ResourceClaim (`kubectl describe resourceclaim`, and the pod's events
 * through it). A device first seen healthy is no news. Returns the unsubscribe.
 */
export function postClaimEventsOnHealthChange(options: ClaimEventsOptions): () => void {
  const last = new Map<string, HealthState>();
  return options.source.subscribe((changed) => {
    const holders = options.holders();
    for (const health of changed) {
      const before = last.get(health.device);
      last.set(health.device, health.state);
      if (before === health.state || (before === undefined && health.state !== "Unhealthy")) {
        continue;
      }
      for (const claim of holders.get(health.device) ?? []) {
        options
          .record(claimEvent(health, claim, options.driverName, options.nodeName))
          .catch((error: unknown) =>
            options.logger.warn(
              { claimUid: claim.uid, device: health.device, err: String(error) },
              "cannot post the device health event on the claim",
            ),
          );
      }
    }
  });
}

export function claimEvent(
  health: DeviceHealth,
  claim: ClaimHolder,
  driverName: string,
  nodeName: string,
): EventRecord {
  const unhealthy = health.state === "Unhealthy";
  return {
    regarding: {
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaim",
      namespace: claim.namespace,
      name: claim.name,
      uid: claim.uid,
    },
    type: unhealthy ? "Warning" : "Normal",
    reason: unhealthy ? "DeviceUnhealthy" : "DeviceHealthy",
    note: unhealthy
      ? `device ${health.device} on node ${nodeName} is unhealthy (${health.reason ?? "unknown"}): ${health.message}`
      : `device ${health.device} on node ${nodeName} is ${health.state === "Healthy" ? "healthy again" : "of unknown health"}`,
    action: "CheckDeviceHealth",
    reportingController: driverName,
    reportingInstance: nodeName,
  };
}
