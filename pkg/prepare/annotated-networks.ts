import { API_VERSION } from "../../api/v1alpha1/group.js";
import { VF_CONFIG_KIND, type VfConfig } from "../../api/v1alpha1/vf-config.js";
import type { ExtendedResourceDevice, NetworkAssignment } from "../multus/assign.js";
import type { DeviceResult } from "./allocation.js";
import { baseRequestName } from "./allocation.js";

/** The annotation the scheduler puts on the claim it creates for a pod's extended resources. */
export const EXTENDED_RESOURCE_CLAIM_ANNOTATION = "resource.kubernetes.io/extended-resource-claim";

/** The parts of a Pod that serving its networks annotation reads. */
export interface PodOfClaim {
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  status?: {
    extendedResourceClaimStatus?: {
      resourceClaimName: string;
      requestMappings?: { containerName: string; resourceName: string; requestName: string }[];
    };
  };
}

/**
 * The claim's devices with the extended resource each serves: the scheduler names a request
 * per container and resource (`container-0-request-1`) and maps it back in the pod's
 * `status.extendedResourceClaimStatus.requestMappings`. Devices of a request no mapping
 * names are left out.
 */
export function extendedResourceDevices(
  results: readonly DeviceResult[],
  pod: PodOfClaim,
): ExtendedResourceDevice[] {
  const resourceOf = new Map(
    (pod.status?.extendedResourceClaimStatus?.requestMappings ?? []).map((m) => [
      m.requestName,
      m.resourceName,
    ]),
  );
  return results.flatMap((result) => {
    const resourceName = resourceOf.get(baseRequestName(result.request));
    return resourceName === undefined ? [] : [{ device: result.device, resourceName }];
  });
}

/**
 * What the annotation asks of each VF it gives a network, as a VfConfig laid over the
 * class's: the network, the interface name, and `ips` and `mac` when the entry has them.
 */
export function vfConfigsOfAssignments(
  assigned: readonly NetworkAssignment[],
): Map<string, VfConfig> {
  return new Map(
    assigned.map(({ device, network, ifName }) => [
      device,
      {
        apiVersion: API_VERSION,
        kind: VF_CONFIG_KIND,
        netAttachDefName: network.name,
        netAttachDefNamespace: network.namespace,
        ifName,
        ...(network.ips ? { ips: network.ips } : {}),
        ...(network.mac ? { mac: network.mac } : {}),
      },
    ]),
  );
}
