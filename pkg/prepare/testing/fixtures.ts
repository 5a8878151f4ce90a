import type { PreparedClaim, PreparedVf } from "../prepared-claim.js";

/** A prepared kernel-driver VF of claim `uid-1`; tests override what they look at. */
export function preparedVf(fields: Partial<PreparedVf> = {}): PreparedVf {
  const pciAddress = fields.pciAddress ?? "0000:3b:02.0";
  const device = pciAddress.replace(/[:.]/g, "-");
  return {
    request: "vf",
    pool: "node-a",
    device,
    pciAddress,
    originalDriver: "iavf",
    targetDriver: "iavf",
    iommuGroup: 40,
    ifName: "net1",
    addVhostMount: false,
    resourceName: "vf",
    netAttachDef: null,
    cniConfig: null,
    cdiDeviceId: `sriovnetwork.openshift.io/vf=${pciAddress}`,
    ...fields,
  };
}

export function preparedClaim(fields: Partial<PreparedClaim> = {}): PreparedClaim {
  return {
    namespace: "ns",
    name: "claim",
    podUids: ["pod-1"],
    state: "PrepareCompleted",
    devices: [preparedVf()],
    cdiSpecFile: "/var/run/cdi/sriovnetwork.openshift.io-vf_uid-1.json",
    ...fields,
  };
}

/**
 * A NetworkAttachmentDefinition as the device plugin's users write it: the pool in the
 * `k8s.v1.cni.cncf.io/resourceName` annotation (none: a network of no pool), the SR-IOV CNI
 * on VLAN 201 with static addresses and MACs from the pod.
 */
export function deviceNetwork(name: string, namespace: string, resourceName?: string) {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: {
      namespace,
      name,
      ...(resourceName ? { annotations: { "k8s.v1.cni.cncf.io/resourceName": resourceName } } : {}),
    },
    spec: {
      config: JSON.stringify({
        cniVersion: "1.0.0",
        name,
        type: "sriov",
        vlan: 201,
        ipam: { type: "static" },
        capabilities: { ips: true, mac: true },
      }),
    },
  };
}
