import type { CniConfigList } from "../../lib/cni/index.js";
import type { PodInterface } from "../../lib/cni/index.js";
import type { PreparedClaim, PreparedVf } from "../prepare/index.js";

/** A pod sandbox as the runtime announces it, reduced to what attaching needs. */
export interface SandboxRef {
  /** Sandbox (pause container) ID: CNI_CONTAINERID. */
  id: string;
  /** Kubernetes pod UID: how prepared claims name their pods. */
  uid: string;
  namespace: string;
  name: string;
  /** Path of the sandbox's network namespace; "" for a pod on the host network. */
  netns: string;
}

/** One VF's network in a sandbox: everything DEL needs, so detaching reads no claim. */
export interface AttachedInterface {
  claimUid: string;
  claimNamespace: string;
  claimName: string;
  pool: string;
  device: string;
  pciAddress: string;
  ifName: string;
  cniConfig: CniConfigList;
  /** `namespace/name` of the NetworkAttachmentDefinition (absent in older checkpoints). */
  network?: string;
  runtimeConfig?: PreparedVf["runtimeConfig"];
  /** What ADD reported for the pod's side; absent until ADD succeeded. */
  podInterface?: PodInterface;
}

/**
 * Checkpoint entry of one sandbox, keyed by sandbox ID. `Attaching` is written before the
 * first ADD, so a crash in the middle is found and undone; `Attached` once every ADD passed.
 */
export interface SandboxAttachment {
  podUid: string;
  namespace: string;
  name: string;
  netns: string;
  state: "Attaching" | "Attached";
  interfaces: AttachedInterface[];
}

/** A prepared claim with its UID, as the attach step reads them. */
export interface ClaimOfPod {
  uid: string;
  claim: PreparedClaim;
}

/**
 * The VFs of a pod's prepared claims that have a network to plug into the sandbox, in
 * claim then device order; a whole PF's VFs follow it, under its device name. A VF without
 * a NetworkAttachmentDefinition (vfio for DPDK, a VF the workload configures itself) needs
 * no CNI.
 */
export function interfacesToAttach(claims: readonly ClaimOfPod[]): AttachedInterface[] {
  return claims.flatMap(({ uid, claim }) =>
    claim.devices.flatMap((vf): AttachedInterface[] =>
      [vf, ...(vf.wholePfVfs ?? [])].flatMap(({ pciAddress, ifName, cniConfig }) =>
        cniConfig === null
          ? []
          : [
              {
                claimUid: uid,
                claimNamespace: claim.namespace,
                claimName: claim.name,
                pool: vf.pool,
                device: vf.device,
                pciAddress,
                ifName,
                cniConfig,
                ...(vf.netAttachDef
                  ? { network: `${vf.netAttachDef.namespace}/${vf.netAttachDef.name}` }
                  : {}),
                // Addresses a VfConfig asks for belong to the device's own interface.
                ...(vf.runtimeConfig && ifName === vf.ifName
                  ? { runtimeConfig: vf.runtimeConfig }
                  : {}),
              },
            ],
      ),
    ),
  );
}
