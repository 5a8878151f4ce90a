import { describe, expect, it } from "vitest";
import type { VfDevice } from "../devices/model.js";
import { x710Pf } from "../devices/testing/fixtures.js";
import { applyResourceFilters } from "./apply.js";
import { filterObjectOf } from "./decode.js";

const API_VERSION = "sriovnetwork.openshift.io/v1alpha1";

/** VF `id` of PF eth<pf> (the shared X710 fixture, one PF per index). */
function vf(pf: number, id: number): VfDevice {
  const pciAddress = `0000:${(0x3b + pf).toString(16)}:02.${id}`;
  return {
    name: pciAddress.replace(/[:.]/g, "-"),
    vf: {
      pciAddress,
      vfID: id,
      driver: "iavf",
      iommuGroup: undefined,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: x710Pf({ pciAddress: `0000:${(0x3b + pf).toString(16)}:00.0`, netdev: `eth${pf}` }),
  };
}

const DEVICES = [vf(0, 0), vf(0, 1), vf(1, 0), vf(1, 1)];

/** A filter giving PF eth0's VFs the resourceName `fast`, plus whatever `extra` adds. */
function onlyEth0(name: string, extra: { spec?: object; status?: object } = {}) {
  return {
    apiVersion: API_VERSION,
    kind: "SriovResourceFilter",
    metadata: { namespace: "sriov", name, generation: 3 },
    spec: {
      configs: [{ resourceName: "fast", resourceFilters: [{ pfNames: ["eth0"] }] }],
      ...extra.spec,
    },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

function publish(...objects: object[]) {
  return applyResourceFilters({
    nodeLabels: { pool: "a" },
    devices: DEVICES,
    filters: objects.map((object) => filterObjectOf(object, "sriov")),
  });
}

describe("filterObjectOf", () => {
  it("reads a filter whatever its status says (the controller may be newer than the node)", () => {
    const result = publish(onlyEth0("f", { status: { conditions: [], newField: { x: 1 } } }));
    expect(result.devices.map((d) => [d.vf.pciAddress, d.resourceName])).toEqual([
      ["0000:3b:02.0", "fast"],
      ["0000:3b:02.1", "fast"],
    ]);
  });

  it("fails closed on a filter it cannot read: it takes no VFs, and the node publishes only what readable filters give", () => {
    const unreadable = onlyEth0("newer", { spec: { futureField: true } });
    const result = publish(unreadable);
    expect(result.devices).toEqual([]);
    expect(result.rejected).toEqual([
      {
        filter: { namespace: "sriov", name: "newer", generation: 3 },
        problems: [{ path: "spec.futureField", message: expect.stringContaining("unknown field") }],
      },
    ]);
    const beside = publish(unreadable, onlyEth0("readable"));
    expect(beside.devices.map((d) => d.vf.pciAddress)).toEqual(["0000:3b:02.0", "0000:3b:02.1"]);
  });

  it("keeps an unreadable filter's nodeSelector when it is a plain label map, else selects every node", () => {
    const elsewhere = onlyEth0("elsewhere", {
      spec: { nodeSelector: { pool: "b" }, futureField: 1 },
    });
    expect(publish(elsewhere).devices).toHaveLength(4);
    const garbled = onlyEth0("garbled", { spec: { nodeSelector: ["pool"], futureField: 1 } });
    expect(publish(garbled).devices).toEqual([]);
    expect(publish({ metadata: "nonsense" }).devices).toEqual([]);
  });
});
