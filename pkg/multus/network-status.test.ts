import { describe, expect, it } from "vitest";
import { networkStatusOf } from "./network-status.js";

describe("networkStatusOf", () => {
  it("lists each interface as Multus does: network, interface, addresses without prefix, MAC, PCI device-info", () => {
    expect(
      networkStatusOf([
        {
          network: "team-a/sriov-net",
          pciAddress: "0000:3b:02.0",
          podInterface: {
            interfaceName: "net1",
            ips: ["10.56.217.11/24", "fd00::11/64"],
            hardwareAddress: "02:00:00:aa:bb:01",
          },
        },
        {
          network: "team-a/no-ipam",
          pciAddress: "0000:3b:02.1",
          podInterface: { interfaceName: "data", ips: [] },
        },
      ]),
    ).toEqual([
      {
        name: "team-a/sriov-net",
        interface: "net1",
        ips: ["10.56.217.11", "fd00::11"],
        mac: "02:00:00:aa:bb:01",
        dns: {},
        "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:3b:02.0" } },
      },
      {
        name: "team-a/no-ipam",
        interface: "data",
        dns: {},
        "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:3b:02.1" } },
      },
    ]);
  });
});
