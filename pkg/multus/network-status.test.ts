import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { KubeRequest } from "../../lib/kube/client.js";
import { networkStatusOf, PodNetworkStatusWriter } from "./network-status.js";

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

describe("PodNetworkStatusWriter", () => {
  const attached = [
    {
      network: "ns/net",
      pciAddress: "0000:3b:02.0",
      podInterface: { interfaceName: "net1", ips: ["10.0.0.2/24"] },
    },
  ];

  it("merge-patches the annotation, with the pod's UID as a precondition", async () => {
    const requests: KubeRequest[] = [];
    const writer = new PodNetworkStatusWriter(
      { request: <T>(r: KubeRequest) => (requests.push(r), Promise.resolve({} as T)) },
      pino({ level: "silent" }),
    );
    writer.write({ namespace: "ns", name: "app", uid: "uid-1" }, attached);
    await writer.settled();
    expect(requests).toEqual([
      {
        method: "PATCH",
        path: "/api/v1/namespaces/ns/pods/app",
        contentType: "application/merge-patch+json",
        body: {
          metadata: {
            uid: "uid-1",
            annotations: {
              "k8s.v1.cni.cncf.io/network-status": JSON.stringify(networkStatusOf(attached)),
            },
          },
        },
      },
    ]);
  });

  it("logs a failed write instead of failing the attach", async () => {
    const lines: string[] = [];
    const writer = new PodNetworkStatusWriter(
      { request: () => Promise.reject(new Error("forbidden")) },
      pino({ level: "warn" }, { write: (line: string) => void lines.push(line) }),
    );
    writer.write({ namespace: "ns", name: "app", uid: "uid-1" }, attached);
    await writer.settled();
    const [line] = lines.map((l) => JSON.parse(l) as { msg: string; err: string; pod: string });
    expect(line).toMatchObject({
      msg: "cannot write the pod's k8s.v1.cni.cncf.io/network-status annotation",
      err: "forbidden",
      pod: "ns/app",
    });
  });
});
