import { waitFor } from "../../integration/kube.js";
import { PF_ADDRESS, type Guest } from "./guest.js";

/**
 * Makes `count` VFs on the guest's 82576 and brings its PF up, as a node's SR-IOV setup
 * does: a PF that is down has no link, and the node daemon would taint its VFs
 * (PFLinkDown). Waits for the carrier (QEMU's igb link comes up at once).
 */
export async function enableVfs(guest: Guest, count: number): Promise<void> {
  const pf = `/sys/bus/pci/devices/${PF_ADDRESS}`;
  await guest.sh(`echo ${count} > ${pf}/sriov_numvfs && ip link set "$(ls ${pf}/net)" up`);
  await waitFor(
    "the PF's carrier",
    async () => ((await guest.sh(`cat ${pf}/net/*/carrier`)).trim() === "1" ? true : undefined),
    30_000,
  );
}
