import type { Logger } from "pino";
import type { KubeClient } from "../../lib/kube/client.js";
import { podsPath } from "../../lib/kube/api-paths.js";
import { messageOf } from "../../lib/util/errors.js";

/** The pod annotation in which Multus reports the networks it attached. */
export const NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status";

/** One entry of `k8s.v1.cni.cncf.io/network-status`, in the format Multus writes. */
export interface NetworkStatusEntry {
  /** `namespace/name` of the NetworkAttachmentDefinition. */
  name: string;
  interface: string;
  /** Addresses without prefix length, as Multus lists them. */
  ips?: string[];
  mac?: string;
  dns: Record<string, never>;
  "device-info": PciDeviceInfo;
}

/** The device-info spec (k8snetworkplumbingwg/device-info-spec) for a PCI device. */
export interface PciDeviceInfo {
  type: "pci";
  version: "1.1.0";
  pci: { "pci-address": string };
}

export function pciDeviceInfo(pciAddress: string): PciDeviceInfo {
  return { type: "pci", version: "1.1.0", pci: { "pci-address": pciAddress } };
}

/** What the pod-network step knows of one interface it plugged into a pod. */
export interface AttachedNetwork {
  /** `namespace/name` of the NetworkAttachmentDefinition. */
  network: string;
  pciAddress: string;
  podInterface: { interfaceName: string; ips: string[]; hardwareAddress?: string };
}

/** The annotation's entries for the interfaces a pod got, in their order. */
export function networkStatusOf(attached: readonly AttachedNetwork[]): NetworkStatusEntry[] {
  return attached.map(({ network, pciAddress, podInterface }) => {
    const ips = podInterface.ips.map((cidr) => cidr.split("/", 1)[0]!);
    return {
      name: network,
      interface: podInterface.interfaceName,
      ...(ips.length > 0 ? { ips } : {}),
      ...(podInterface.hardwareAddress ? { mac: podInterface.hardwareAddress } : {}),
      dns: {},
      "device-info": pciDeviceInfo(pciAddress),
    };
  });
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * Writes `k8s.v1.cni.cncf.io/network-status` on pods, in the background: the runtime waits
 * for the sandbox, not for the API server. The pod's UID is part of the patch, so a pod
 * re-created under the same name is never written. A failed write is logged; the next
 * attach of the pod writes again.
 */
export class PodNetworkStatusWriter {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly client: Pick<KubeClient, "request">,
    private readonly logger: Logger,
  ) {}

  write(pod: PodRef, attached: readonly AttachedNetwork[]): void {
    const body = {
      metadata: {
        uid: pod.uid,
        annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(networkStatusOf(attached)) },
      },
    };
    const write = this.client
      .request({
        method: "PATCH",
        path: podsPath(pod.namespace, pod.name),
        contentType: "application/merge-patch+json",
        body,
      })
      .then(
        () => undefined,
        (error: unknown) =>
          this.logger.warn(
            { pod: `${pod.namespace}/${pod.name}`, podUid: pod.uid, err: messageOf(error) },
            `cannot write the pod's ${NETWORK_STATUS_ANNOTATION} annotation`,
          ),
      );
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  /** Resolves once every write started so far has ended. */
  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
