import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { publishedDevicesByNode } from "../controller/slice-devices.js";
import { holdersByDevice, MAX_CONSUMERS_PER_CLAIM, MAX_RESULTS_PER_CLAIM } from "./claims.js";
import { buildNodeInventory, formatNodeInventoryTable } from "./nodes.js";
import { claim, DRIVER, slicesOf, vf, wholePf } from "./testing/fixtures.js";

const unhealthy = {
  key: `${DRIVER}/unhealthy`,
  value: "LinkDown",
  effect: "NoSchedule" as const,
  timeAdded: "2026-01-01T00:00:00Z",
};

/** node-a: eth0 VFs 0-1 and eth1 VF 0; node-b: eth0 VF 0, tainted. One claim on node-a. */
function cluster() {
  const slices = [
    ...slicesOf("node-a", [vf(1, 0, "fast"), vf(0, 1, "fast"), vf(0, 0, "fast")]),
    ...slicesOf("node-b", [vf(0, 0)], new Map([[vf(0, 0).name, [unhealthy]]])),
  ];
  const claims = [
    claim("team", "web-net-x7", "node-a", [vf(0, 1).name], ["web"]),
    claim("team", "pending", "node-b", [], []),
    claim("team", "other-driver", "node-a", [vf(0, 0).name], ["x"]),
  ];
  (
    claims[2] as { status: { allocation: { devices: { results: { driver: string }[] } } } }
  ).status.allocation.devices.results[0]!.driver = "gpu.example.com";
  return buildNodeInventory(
    publishedDevicesByNode(slices, DRIVER),
    holdersByDevice(claims, DRIVER),
    DRIVER,
  );
}

describe("buildNodeInventory", () => {
  it("builds each node's PF → VF tree in order, with the claim and pod holding each VF", () => {
    const inventory = cluster();
    expect(inventory.nodes.map((node) => node.name)).toEqual(["node-a", "node-b"]);
    const [a, b] = inventory.nodes;
    expect(a!.pfs.map((pf) => [pf.pciAddress, pf.name, pf.vfs.map((v) => v.vfID)])).toEqual([
      ["0000:3b:00.0", "eth0", [0, 1]],
      ["0000:3c:00.0", "eth1", [0]],
    ]);
    const held = a!.pfs[0]!.vfs[1]!;
    expect(held).toMatchObject({ device: "0000-3b-02-1", resourceName: "fast", taints: [] });
    expect(held.allocatedTo).toEqual([
      {
        namespace: "team",
        claim: "web-net-x7",
        request: "vf",
        consumers: [{ resource: "pods", name: "web" }],
      },
    ]);
    // Another driver's allocation of a device of the same name is not ours.
    expect(a!.pfs[0]!.vfs[0]!.allocatedTo).toEqual([]);
    expect(b!.pfs[0]!.vfs[0]).toMatchObject({
      resourceName: null,
      taints: [{ key: `${DRIVER}/unhealthy`, value: "LinkDown", effect: "NoSchedule" }],
      allocatedTo: [],
    });
  });

  it("shows a PF published whole on its PF line: free, held (its VFs with it), or blocked by a VF", () => {
    const slices = [
      ...slicesOf("node-a", [wholePf(0, "nic"), vf(0, 0), vf(0, 1), wholePf(1)]),
      ...slicesOf("node-b", [wholePf(0), vf(0, 0), vf(0, 1)]),
    ];
    const claims = [
      claim("team", "whole", "node-a", [wholePf(0).name], ["dpdk"]),
      claim("team", "one-vf", "node-b", [vf(0, 1).name], ["web"]),
    ];
    const inventory = buildNodeInventory(
      publishedDevicesByNode(slices, DRIVER),
      holdersByDevice(claims, DRIVER),
      DRIVER,
    );
    const [a, b] = inventory.nodes;
    // eth1 is published whole only (a filter may hide its VFs): it still has its PF entry.
    expect(a!.pfs.map((pf) => [pf.pciAddress, pf.wholePf?.device, pf.vfs.length])).toEqual([
      ["0000:3b:00.0", "pf-0000-3b-00-0", 2],
      ["0000:3c:00.0", "pf-0000-3c-00-0", 0],
    ]);
    expect(a!.pfs[0]!.wholePf).toMatchObject({
      driver: "i40e",
      numVfs: 4,
      resourceName: "nic",
      allocatedTo: [{ namespace: "team", claim: "whole" }],
    });
    const table = formatNodeInventoryTable(inventory, false).split("\n");
    expect(table).toEqual([
      "NODE node-a  sriovnetwork.openshift.io  2 VFs, 0 allocated; 2 whole PFs, 1 allocated",
      "  PF 0000:3b:00.0 eth0  numa 0  ethernet/legacy  whole pf-0000-3b-00-0 i40e nic team/whole (pod dpdk) (all 4 VFs with it)",
      "    ├─ 0000-3b-02-0  vf 0  iavf  -  with whole pf-0000-3b-00-0",
      "    └─ 0000-3b-02-1  vf 1  iavf  -  with whole pf-0000-3b-00-0",
      "  PF 0000:3c:00.0 eth1  numa 0  ethernet/legacy  whole pf-0000-3c-00-0 i40e - free",
      "NODE node-b  sriovnetwork.openshift.io  2 VFs, 1 allocated; 1 whole PF, 0 allocated",
      "  PF 0000:3b:00.0 eth0  numa 0  ethernet/legacy  whole pf-0000-3b-00-0 i40e - not allocatable: 1 of its VFs allocated",
      "    ├─ 0000-3b-02-0  vf 0  iavf  -  free",
      "    └─ 0000-3b-02-1  vf 1  iavf  -  team/one-vf (pod web)",
    ]);
    expect(b!.pfs[0]!.wholePf!.allocatedTo).toEqual([]);
  });

  it("keeps one node when asked, and none when it publishes nothing", () => {
    const slices = [...slicesOf("node-a", [vf(0, 0)]), ...slicesOf("node-b", [vf(0, 1)])];
    const published = publishedDevicesByNode(slices, DRIVER);
    expect(
      buildNodeInventory(published, new Map(), DRIVER, "node-b").nodes.map((n) => n.name),
    ).toEqual(["node-b"]);
    expect(buildNodeInventory(published, new Map(), DRIVER, "node-c").nodes).toEqual([]);
  });
});

describe("holdersByDevice", () => {
  it("skips what is not well formed and cuts long lists", () => {
    const many = claim(
      "ns",
      "big",
      "p",
      Array.from({ length: MAX_RESULTS_PER_CLAIM + 50 }, (_, i) => `d${i}`),
      Array.from({ length: MAX_CONSUMERS_PER_CLAIM + 5 }, (_, i) => `pod${i}`),
    );
    const holders = holdersByDevice(
      [
        many,
        null,
        "claim",
        { metadata: { namespace: "ns" }, status: { allocation: { devices: { results: [{}] } } } },
        { metadata: { namespace: "ns", name: "x".repeat(300) } },
        {
          metadata: { namespace: "ns", name: "odd" },
          status: {
            allocation: {
              devices: { results: [{ driver: DRIVER, pool: "p", device: 7, request: "r" }, "x"] },
            },
            reservedFor: "pods",
          },
        },
        { metadata: { namespace: "ns", name: "proto" }, status: { constructor: {} } },
      ],
      DRIVER,
    );
    const pool = holders.get("p")!;
    expect(pool.size).toBe(MAX_RESULTS_PER_CLAIM);
    expect(pool.get("d0")![0]!.consumers).toHaveLength(MAX_CONSUMERS_PER_CLAIM);
    expect(pool.has(`d${MAX_RESULTS_PER_CLAIM}`)).toBe(false);
    expect([...holders.keys()]).toEqual(["p"]);
  });
});

describe("formatNodeInventoryTable", () => {
  it("prints the tree: node totals, PFs, VFs with resourceName, holder and taint", () => {
    expect(formatNodeInventoryTable(cluster(), false)).toBe(
      [
        `NODE node-a  ${DRIVER}  3 VFs, 1 allocated`,
        "  PF 0000:3b:00.0 eth0  numa 0  ethernet/legacy",
        "    ├─ 0000-3b-02-0  vf 0  iavf  fast  free",
        "    └─ 0000-3b-02-1  vf 1  iavf  fast  team/web-net-x7 (pod web)",
        "  PF 0000:3c:00.0 eth1  numa 0  ethernet/legacy",
        "    └─ 0000-3c-02-0  vf 0  iavf  fast  free",
        `NODE node-b  ${DRIVER}  1 VF, 0 allocated, 1 tainted`,
        "  PF 0000:3b:00.0 eth0  numa 0  ethernet/legacy",
        `    └─ 0000-3b-02-0  vf 0  iavf  -  free  TAINT ${DRIVER}/unhealthy=LinkDown:NoSchedule`,
      ].join("\n"),
    );
  });

  it("adds the VF's address, ids, IOMMU group and the claim's request when wide", () => {
    const wide = formatNodeInventoryTable(cluster(), true);
    expect(wide).toContain(
      "└─ 0000-3b-02-1  vf 1  0000:3b:02.1  8086:154c  iommu 41  iavf  fast  team/web-net-x7 (pod web) request vf",
    );
  });

  it("escapes control characters from the cluster", () => {
    const inventory = cluster();
    inventory.nodes[0]!.pfs[0]!.vfs[0]!.resourceName = "evil\u001b[2Jname";
    const table = formatNodeInventoryTable(inventory, false);
    expect(table).not.toContain("\u001b");
    expect(table).toContain("evil\\u001b[2Jname");
  });

  it("says so when no node publishes devices", () => {
    const empty = buildNodeInventory(publishedDevicesByNode([], DRIVER), new Map(), DRIVER);
    expect(formatNodeInventoryTable(empty, false)).toBe(`No node publishes devices of ${DRIVER}.`);
  });
});

describe("the json/yaml structure", () => {
  it("is plain data that survives a round trip as is", () => {
    const inventory = cluster();
    expect(JSON.parse(JSON.stringify(inventory))).toEqual(inventory);
    expect(parse(JSON.stringify(inventory))).toEqual(inventory);
    expect(Object.keys(inventory.nodes[0]!.pfs[0]!.vfs[0]!)).toEqual([
      "device",
      "vfID",
      "pciAddress",
      "vendor",
      "deviceID",
      "driver",
      "iommuGroup",
      "rdmaCapable",
      "resourceName",
      "taints",
      "allocatedTo",
    ]);
  });
});
