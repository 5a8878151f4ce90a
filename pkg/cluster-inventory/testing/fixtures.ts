import { x710Vf } from "../../devices/testing/fixtures.js";
import { pfDeviceName, type Device, type PfDevice, type VfDevice } from "../../devices/model.js";
import type { KubeObject } from "../../../lib/kube/client.js";
import { renderSlices, type DeviceTaint } from "../../slices/render.js";

export const DRIVER = "sriovnetwork.openshift.io";

/** VF `vfID` of X710 PF eth<pfIndex>, with a resourceName when given. */
export function vf(pfIndex: number, vfID: number, resourceName?: string): VfDevice {
  return { ...x710Vf(pfIndex, vfID), ...(resourceName === undefined ? {} : { resourceName }) };
}

/** X710 PF eth<pfIndex> published whole (its VFs 0-3), with a resourceName when given. */
export function wholePf(pfIndex: number, resourceName?: string): PfDevice {
  const { pf } = x710Vf(pfIndex, 0);
  return {
    name: pfDeviceName(pf.pciAddress),
    pf: { ...pf, vendor: "8086", driver: "i40e", totalVfs: 64, numVfs: 4 },
    vfAddresses: [0, 1, 2, 3].map((id) => x710Vf(pfIndex, id).vf.pciAddress),
    ...(resourceName === undefined ? {} : { resourceName }),
  };
}

/** A node's slices as a list from the API server returns them. */
export function slicesOf(
  nodeName: string,
  devices: readonly Device[],
  taints?: ReadonlyMap<string, readonly DeviceTaint[]>,
): KubeObject[] {
  const rendered = renderSlices(devices, { driverName: DRIVER, nodeName, generation: 1, taints });
  return JSON.parse(JSON.stringify(rendered)) as KubeObject[];
}

/** A ResourceClaim allocated `devices` of `pool`, reserved for `pods`. */
export function claim(
  namespace: string,
  name: string,
  pool: string,
  devices: readonly string[],
  pods: readonly string[],
): unknown {
  return {
    metadata: { namespace, name },
    status: {
      allocation: {
        devices: {
          results: devices.map((device) => ({ request: "vf", driver: DRIVER, pool, device })),
        },
      },
      reservedFor: pods.map((pod) => ({ resource: "pods", name: pod, uid: `uid-${pod}` })),
    },
  };
}
