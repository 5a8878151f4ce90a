import { describe, expect, it } from "vitest";
import { deviceAttributes } from "../devices/attributes.js";
import { pciAddressOf, type VfDevice } from "../devices/model.js";
import { x710Vf } from "../devices/testing/fixtures.js";
import { applyResourceFilters, type FilterObject, type PolicyObject } from "../filters/apply.js";
import { labelSelectorSelects, translatePolicies } from "./translate.js";

const DRIVER = "sriovnetwork.k8snetworkplumbingwg.io";
const NAMESPACE = "dra-driver-sriov";
const API_VERSION = `${DRIVER}/v1alpha1`;

/** eth0 (bus 3b) and eth1 (bus 3c), four VFs each; eth1 is InfiniBand. */
const DEVICES: VfDevice[] = [0, 1].flatMap((pf) =>
  [0, 1, 2, 3].map((id) => {
    const device = x710Vf(pf, id);
    return pf === 1 ? { ...device, pf: { ...device.pf, linkType: "infiniband" as const } } : device;
  }),
);

function policy(name: string, spec: Record<string, unknown>): unknown {
  return {
    apiVersion: API_VERSION,
    kind: "SriovResourcePolicy",
    metadata: { name, namespace: NAMESPACE },
    spec,
  };
}

function attributesObject(
  name: string,
  labels: Record<string, string>,
  attributes: Record<string, unknown>,
): unknown {
  return {
    apiVersion: API_VERSION,
    kind: "DeviceAttributes",
    metadata: { name, namespace: NAMESPACE, labels },
    spec: { attributes },
  };
}

function translate(policies: unknown[], attributes: unknown[] = []) {
  return translatePolicies(policies, attributes, { namespace: NAMESPACE, driverName: DRIVER });
}

function publish(policies: PolicyObject[], filters: FilterObject[] = [], labels = {}) {
  return applyResourceFilters({
    nodeLabels: labels,
    nodeName: "worker-0",
    devices: DEVICES,
    filters,
    policies,
  });
}

const addresses = (devices: readonly VfDevice[]) => devices.map(pciAddressOf);
const eth0 = addresses(DEVICES.slice(0, 4));
const eth1 = addresses(DEVICES.slice(4));

describe("translatePolicies + applyResourceFilters: upstream's demo shapes", () => {
  it("all-devices (single-vf-claim, multiple-vf-claim): `configs: [{}]` publishes every VF, without attributes", () => {
    const { policies } = translate([policy("all-devices", { configs: [{}] })]);
    const result = publish(policies);
    expect(addresses(result.devices)).toEqual([...eth0, ...eth1]);
    expect(
      result.devices.every((d) => d.attributes === undefined && d.resourceName === undefined),
    ).toBe(true);
  });

  it("resource-policies: each config's DeviceAttributes name its VFs' pool", () => {
    const { policies } = translate(
      [
        policy("example-resource-policy", {
          nodeSelector: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: "kubernetes.io/hostname", operator: "In", values: ["worker-0"] },
                ],
              },
            ],
          },
          configs: [
            {
              deviceAttributesSelector: { matchLabels: { pool: "eth0-resource" } },
              resourceFilters: [{ vendors: ["8086"], pfNames: ["eth0"] }],
            },
            {
              deviceAttributesSelector: { matchLabels: { pool: "eth1-resource" } },
              resourceFilters: [{ vendors: ["8086"], pfNames: ["eth1"] }],
            },
          ],
        }),
      ],
      [
        attributesObject(
          "eth0-attrs",
          { pool: "eth0-resource" },
          { [`${DRIVER}/resourceName`]: { string: "eth0_resource" } },
        ),
        attributesObject(
          "eth1-attrs",
          { pool: "eth1-resource" },
          { [`${DRIVER}/resourceName`]: { string: "eth1_resource" } },
        ),
      ],
    );
    const result = publish(policies, [], { "kubernetes.io/hostname": "worker-0" });
    const pools = Object.fromEntries(result.devices.map((d) => [pciAddressOf(d), d.resourceName]));
    expect(pools).toEqual({
      ...Object.fromEntries(eth0.map((a) => [a, "eth0_resource"])),
      ...Object.fromEntries(eth1.map((a) => [a, "eth1_resource"])),
    });
    const published = deviceAttributes(result.devices[0]!, DRIVER);
    expect(published[`${DRIVER}/resourceName`]).toEqual({ string: "eth0_resource" });

    // The same policy on a node its selector does not pick: opt-in, nothing published.
    expect(publish(policies, [], { "kubernetes.io/hostname": "worker-1" }).devices).toEqual([]);
  });

  it("extended-resource: pciAddresses pick the VFs of each pool", () => {
    const { policies } = translate(
      [
        policy("dual-port-vfs", {
          configs: [
            {
              deviceAttributesSelector: { matchLabels: { pool: "port1-vfs" } },
              resourceFilters: [{ pciAddresses: eth0.slice(0, 2) }],
            },
            {
              deviceAttributesSelector: { matchLabels: { pool: "port2-vfs" } },
              resourceFilters: [{ pciAddresses: eth1.slice(0, 2) }],
            },
          ],
        }),
      ],
      [
        attributesObject(
          "port1-attrs",
          { pool: "port1-vfs" },
          { [`${DRIVER}/resourceName`]: { string: "port1-vfs" } },
        ),
        attributesObject(
          "port2-attrs",
          { pool: "port2-vfs" },
          { [`${DRIVER}/resourceName`]: { string: "port2-vfs" } },
        ),
      ],
    );
    const result = publish(policies);
    expect(result.devices.map((d) => [pciAddressOf(d), d.resourceName])).toEqual([
      [eth0[0], "port1-vfs"],
      [eth0[1], "port1-vfs"],
      [eth1[0], "port2-vfs"],
      [eth1[1], "port2-vfs"],
    ]);
    expect(result.hiddenVfs).toEqual([...eth0.slice(2), ...eth1.slice(2)]);
  });

  it("multus-integration: k8s.cni.cncf.io/resourceName is published as given and names the pool", () => {
    const { policies } = translate(
      [
        policy("sriov-nic-1-policy", {
          configs: [
            {
              deviceAttributesSelector: { matchLabels: { pool: "sriov_nic_1" } },
              resourceFilters: [{}],
            },
          ],
        }),
      ],
      [
        attributesObject(
          "sriov-nic-1-attrs",
          { pool: "sriov_nic_1" },
          { "k8s.cni.cncf.io/resourceName": { string: "sriov_nic_1" } },
        ),
      ],
    );
    const [first] = publish(policies).devices;
    expect(first?.resourceName).toBe("sriov_nic_1");
    expect(deviceAttributes(first!, DRIVER)["k8s.cni.cncf.io/resourceName"]).toEqual({
      string: "sriov_nic_1",
    });
  });
});

describe("translatePolicies", () => {
  it("turns pfPciAddresses into rootDevices and linkType into the published link type", () => {
    const { policies } = translate([
      policy("p", {
        configs: [
          { resourceFilters: [{ pfPciAddresses: ["0000:3b:00.0"] }] },
          { resourceFilters: [{ linkType: "ib" }] },
        ],
      }),
    ]);
    expect(policies[0]?.configs.map((c) => c.resourceFilters)).toEqual([
      [{ rootDevices: ["0000:3b:00.0"] }],
      [{ linkTypes: ["infiniband"] }],
    ]);
    const result = publish(policies);
    expect(result.devices.map((d) => [pciAddressOf(d), d.pf.linkType])).toEqual([
      ...eth0.map((a) => [a, "ethernet"]),
      ...eth1.map((a) => [a, "infiniband"]),
    ]);
    expect(result.unmatchedConfigs).toEqual([]);
  });

  it("merges matching DeviceAttributes by name (the later wins), qualifies bare names, skips unreadable ones", () => {
    const { policies, skippedAttributes } = translate(
      [
        policy("p", {
          configs: [
            {
              deviceAttributesSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] },
            },
          ],
        }),
      ],
      [
        attributesObject(
          "b",
          { tier: "x" },
          { "example.com/rank": { int: 2 }, fast: { bool: true } },
        ),
        attributesObject(
          "a",
          { tier: "y" },
          { "example.com/rank": { int: 1 }, "example.com/fw": { version: "1.2.3" } },
        ),
        attributesObject("c", {}, { "example.com/rank": { int: 3 } }),
        attributesObject("broken", { tier: "z" }, { "example.com/rank": { int: 1, bool: true } }),
      ],
    );
    expect(policies[0]?.configs[0]?.attributes).toEqual({
      "example.com/rank": { int: 2 },
      "example.com/fw": { version: "1.2.3" },
      [`${DRIVER}/fast`]: { bool: true },
    });
    expect(skippedAttributes.map((s) => s.name)).toEqual(["broken"]);
  });

  it("gives no attributes without a deviceAttributesSelector, all with an empty one", () => {
    const objects = [attributesObject("a", { x: "1" }, { "example.com/a": { bool: true } })];
    const [none, all] = translate(
      [policy("p", { configs: [{}, { deviceAttributesSelector: {} }] })],
      objects,
    ).policies[0]!.configs;
    expect(none?.attributes).toEqual({});
    expect(all?.attributes).toEqual({ "example.com/a": { bool: true } });
  });

  it("fails closed on an unreadable policy: opt-in stays on, it takes no VFs and is reported", () => {
    const { policies } = translate([
      policy("bad", { configs: [{ resourceFilters: [{ linkType: "wifi" }] }] }),
    ]);
    const result = publish(policies);
    expect(result.devices).toEqual([]);
    expect(result.rejected.map((r) => [r.filter.name, r.filter.kind])).toEqual([
      ["bad", "SriovResourcePolicy"],
    ]);
  });

  it("publishes a resourceName only when the attribute is one the pools can use", () => {
    const { policies } = translate(
      [policy("p", { configs: [{ deviceAttributesSelector: {} }] })],
      [attributesObject("a", {}, { [`${DRIVER}/resourceName`]: { string: "has space" } })],
    );
    const [first] = publish(policies).devices;
    expect(first?.resourceName).toBeUndefined();
    expect(deviceAttributes(first!, DRIVER)[`${DRIVER}/resourceName`]).toEqual({
      string: "has space",
    });
  });
});

describe("policies beside SriovResourceFilters", () => {
  const filter: FilterObject = {
    metadata: { namespace: NAMESPACE, name: "zz-last-by-name" },
    spec: {
      configs: [{ resourceName: "from_filter", resourceFilters: [{ pfNames: ["eth0#0-1"] }] }],
    },
  };

  it("filters take VFs first, policies the rest; the policy's loss is reported", () => {
    const { policies } = translate(
      [
        policy("a-first-by-name", {
          configs: [{ deviceAttributesSelector: {}, resourceFilters: [{ pfNames: ["eth0"] }] }],
        }),
      ],
      [attributesObject("a", {}, { [`${DRIVER}/resourceName`]: { string: "from_policy" } })],
    );
    const result = publish(policies, [filter]);
    expect(result.devices.map((d) => [pciAddressOf(d), d.resourceName])).toEqual([
      [eth0[0], "from_filter"],
      [eth0[1], "from_filter"],
      [eth0[2], "from_policy"],
      [eth0[3], "from_policy"],
    ]);
    expect(result.conflicts.map((c) => [c.filter.name, c.lostVfs])).toEqual([
      ["a-first-by-name", eth0.slice(0, 2)],
    ]);
  });

  it("a policy that exists but does not select the node still makes publishing opt-in there", () => {
    const { policies } = translate([
      policy("elsewhere", {
        nodeSelector: {
          nodeSelectorTerms: [
            { matchFields: [{ key: "metadata.name", operator: "In", values: ["worker-9"] }] },
          ],
        },
        configs: [{}],
      }),
    ]);
    expect(publish(policies).devices).toEqual([]);
    expect(addresses(publish(policies, [filter]).devices)).toEqual(eth0.slice(0, 2));
    expect(addresses(publish([]).devices)).toEqual([...eth0, ...eth1]);
  });
});

describe("labelSelectorSelects", () => {
  const labels = { pool: "a", tier: "gold" };
  it.each([
    [{}, true],
    [{ matchLabels: { pool: "a" } }, true],
    [{ matchLabels: { pool: "b" } }, false],
    [{ matchExpressions: [{ key: "pool", operator: "In" as const, values: ["a", "b"] }] }, true],
    [{ matchExpressions: [{ key: "pool", operator: "NotIn" as const, values: ["a"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "zone", operator: "Exists" as const }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "DoesNotExist" as const }] }, true],
    [
      {
        matchLabels: { pool: "a" },
        matchExpressions: [{ key: "tier", operator: "In" as const, values: ["x"] }],
      },
      false,
    ],
  ])("%j → %s", (selector, expected) => {
    expect(labelSelectorSelects(selector, labels)).toBe(expected);
  });
});
