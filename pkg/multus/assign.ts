import {
  NetworksAnnotationError,
  RESOURCE_NAME_ANNOTATION,
  type NetworkSelection,
} from "./networks-annotation.js";

/** A device of the pod's extended-resource claim, with the extended resource it serves. */
export interface ExtendedResourceDevice {
  device: string;
  /** `intel.com/intel_sriov_netdevice`: what the pod requested and the class serves. */
  resourceName: string;
}

/** One VF plugged into one network of the annotation. */
export interface NetworkAssignment {
  device: string;
  network: NetworkSelection;
  /** The annotation's interface, else `net<position in the annotation>`, as Multus names it. */
  ifName: string;
}

export interface Assignment {
  assigned: NetworkAssignment[];
  /** Networks no VF of the claim serves (no resourceName, or one the pod got elsewhere). */
  notServed: { network: NetworkSelection; resourceName: string | undefined }[];
}

/**
 * Matches the networks of the annotation, in its order, with the claim's VFs: a network
 * whose NetworkAttachmentDefinition names resource R (`k8s.v1.cni.cncf.io/resourceName`)
 * takes the next VF allocated for R, as Multus takes the next device the device plugin
 * gave the pod for R. VFs left over get no network. Throws NetworksAnnotationError when
 * the pod names more networks of R than it requests VFs of R, or one interface twice.
 */
export function assignNetworks(
  networks: readonly NetworkSelection[],
  resourceNameOf: (network: NetworkSelection) => string | undefined,
  devices: readonly ExtendedResourceDevice[],
): Assignment {
  const served = new Set(devices.map((device) => device.resourceName));
  const taken = new Set<string>();
  const assigned: NetworkAssignment[] = [];
  const notServed: Assignment["notServed"] = [];
  networks.forEach((network, index) => {
    const resourceName = resourceNameOf(network);
    if (resourceName === undefined || !served.has(resourceName)) {
      notServed.push({ network, resourceName });
      return;
    }
    const device = devices.find((d) => d.resourceName === resourceName && !taken.has(d.device));
    if (device === undefined) {
      const count = devices.filter((d) => d.resourceName === resourceName).length;
      throw new NetworksAnnotationError(
        `network ${network.namespace}/${network.name} needs a VF of ${resourceName} (its ${RESOURCE_NAME_ANNOTATION}), but the pod requests ${count} and names more networks of it: request one ${resourceName} per network`,
      );
    }
    taken.add(device.device);
    const ifName = network.interface ?? `net${index + 1}`;
    const twice = assigned.find((a) => a.ifName === ifName);
    if (twice !== undefined) {
      throw new NetworksAnnotationError(
        `networks ${twice.network.namespace}/${twice.network.name} and ${network.namespace}/${network.name} both get interface ${ifName}: give one another "interface"`,
      );
    }
    assigned.push({ device: device.device, network, ifName });
  });
  return { assigned, notServed };
}
