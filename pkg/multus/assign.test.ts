import { describe, expect, it } from "vitest";
import { assignNetworks } from "./assign.js";
import { parseNetworksAnnotation } from "./networks-annotation.js";

const NETDEV = "intel.com/intel_sriov_netdevice";
const DPDK = "intel.com/intel_sriov_dpdk";
/** NetworkAttachmentDefinition name → its resourceName annotation. */
const nads: Record<string, string | undefined> = {
  "sriov-a": NETDEV,
  "sriov-b": NETDEV,
  "sriov-dpdk": DPDK,
  macvlan: undefined,
  "device-plugin-net": "example.com/other",
};
const assign = (annotation: string, devices: [string, string][]) =>
  assignNetworks(
    parseNetworksAnnotation(annotation, "default"),
    (network) => nads[network.name],
    devices.map(([device, resourceName]) => ({ device, resourceName })),
  );

describe("assignNetworks", () => {
  it("gives each network the next VF of its resource, named net<position> as Multus does", () => {
    const { assigned, notServed } = assign("sriov-dpdk, macvlan, sriov-a, sriov-b@data", [
      ["vf-1", NETDEV],
      ["vf-2", DPDK],
      ["vf-3", NETDEV],
    ]);
    expect(assigned.map((a) => [a.device, a.network.name, a.ifName])).toEqual([
      ["vf-2", "sriov-dpdk", "net1"],
      ["vf-1", "sriov-a", "net3"],
      ["vf-3", "sriov-b", "data"],
    ]);
    expect(notServed.map((n) => [n.network.name, n.resourceName])).toEqual([
      ["macvlan", undefined],
    ]);
  });

  it("leaves networks of resources the claim does not serve to others", () => {
    const { assigned, notServed } = assign("device-plugin-net", [["vf-1", NETDEV]]);
    expect(assigned).toEqual([]);
    expect(notServed[0]!.resourceName).toBe("example.com/other");
  });

  it("leaves VFs without a network when the pod names fewer networks than it requests", () => {
    expect(
      assign("sriov-a", [
        ["vf-1", NETDEV],
        ["vf-2", NETDEV],
      ]).assigned,
    ).toHaveLength(1);
  });

  it("refuses more networks of a resource than VFs of it", () => {
    expect(() => assign("sriov-a,sriov-b", [["vf-1", NETDEV]])).toThrow(
      /default\/sriov-b needs a VF of intel.com\/intel_sriov_netdevice .* requests 1/,
    );
  });

  it("refuses one interface name for two networks", () => {
    expect(() =>
      assign("sriov-a@net2,sriov-b", [
        ["vf-1", NETDEV],
        ["vf-2", NETDEV],
      ]),
    ).toThrow(/both get interface net2/);
  });
});
