import type { PodInterface } from "../../lib/cni/index.js";
import { deviceStatusesOf, type DeviceStatus } from "../claimstatus/claim-status.js";
import type { PreparedClaim } from "../prepare/index.js";

/** A `metav1.Condition` as the API takes it in `status.devices[].conditions`. */
export interface DeviceCondition {
  type: "Ready" | "NetworkReady";
  status: "True" | "False";
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** What happened to one VF's network in the pod. */
export type NetworkOutcome =
  { attached: true; podInterface: PodInterface } | { attached: false; error: string };

/** `status.devices[].networkData`, with the limits the API enforces. */
function networkDataOf(podInterface: PodInterface) {
  return {
    interfaceName: podInterface.interfaceName,
    ips: podInterface.ips.slice(0, 16),
    ...(podInterface.hardwareAddress ? { hardwareAddress: podInterface.hardwareAddress } : {}),
  };
}

function conditionsOf(outcome: NetworkOutcome, now: string): DeviceCondition[] {
  const condition = (type: DeviceCondition["type"]): DeviceCondition =>
    outcome.attached
      ? {
          type,
          status: "True",
          reason: "NetworkAttached",
          message: `interface ${outcome.podInterface.interfaceName} is up in the pod`,
          lastTransitionTime: now,
        }
      : {
          type,
          status: "False",
          reason: "NetworkAttachFailed",
          // The API caps condition messages at 32768 bytes.
          message: outcome.error.slice(0, 32_000),
          lastTransitionTime: now,
        };
  return [condition("Ready"), condition("NetworkReady")];
}

/**
 * Our `status.devices` entries for a claim once its pod's sandbox started: what prepare
 * applied (`data`, so this write can replace a pending one of prepare's) and, for each VF
 * with a network, `networkData` and the Ready/NetworkReady conditions.
 */
export function networkStatusesOf(
  claim: PreparedClaim,
  driverName: string,
  outcomes: ReadonlyMap<string, NetworkOutcome>,
  now: string,
): DeviceStatus[] {
  return deviceStatusesOf(claim, driverName).map((entry) => {
    const outcome = outcomes.get(entry.device);
    if (outcome === undefined) return entry;
    return {
      ...entry,
      conditions: conditionsOf(outcome, now),
      ...(outcome.attached ? { networkData: networkDataOf(outcome.podInterface) } : {}),
    };
  });
}
