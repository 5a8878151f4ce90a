import { describe, expect, it } from "vitest";
import { isVfDevice, pfDeviceName, type Device, type PfDevice } from "../devices/model.js";
import { x710Vf } from "../devices/testing/fixtures.js";
import type { DeviceTaint } from "../slices/render.js";
import { withWholePfTaints } from "./whole-pf-taints.js";

const taint = (value: string): DeviceTaint => ({
  key: "sriovnetwork.openshift.io/unhealthy",
  value,
  effect: "NoSchedule",
  timeAdded: "2026-12-05T01:00:00Z",
});

/** Whole PF eth<index> of the x710 fixtures, with its 4 VFs. */
function wholePf(index: number): PfDevice {
  const { pf } = x710Vf(index, 0);
  return {
    name: pfDeviceName(pf.pciAddress),
    pf,
    vfAddresses: [0, 1, 2, 3].map((id) => x710Vf(index, id).vf.pciAddress),
  };
}

describe("withWholePfTaints", () => {
  const devices: Device[] = [
    wholePf(0),
    wholePf(1),
    ...[0, 1].flatMap((pf) => [0, 1, 2, 3].map((id) => x710Vf(pf, id))),
  ];

  it("taints a whole PF when its VFs are tainted for a PF-wide reason, and only that PF", () => {
    const vfTaints = new Map(
      [0, 1, 2, 3].map((id) => [x710Vf(0, id).name, [taint("PFLinkDown")]] as const),
    );
    const result = withWholePfTaints(vfTaints, devices);
    expect(result.get(wholePf(0).name)).toEqual([taint("PFLinkDown")]);
    expect(result.has(wholePf(1).name)).toBe(false);
    for (const [name, taints] of vfTaints) expect(result.get(name)).toEqual(taints);
  });

  it("leaves the PF alone for a problem of one VF (its driver, its presence)", () => {
    const vfTaints = new Map([[x710Vf(1, 2).name, [taint("UnexpectedDriver")]]]);
    expect(withWholePfTaints(vfTaints, devices)).toEqual(vfTaints);
  });

  it("changes nothing where no PF is published whole", () => {
    const vfTaints = new Map([[x710Vf(0, 0).name, [taint("PFLinkDown")]]]);
    expect(withWholePfTaints(vfTaints, devices.filter(isVfDevice))).toBe(vfTaints);
  });
});
