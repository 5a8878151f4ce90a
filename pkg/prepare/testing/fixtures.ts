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
    cdiDeviceId: `sriovnetwork.openshift.io/vf=uid-1-${device}`,
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
