import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { SchemaError } from "../schema/index.js";
import { decodeDeviceAttributes, decodeSriovResourcePolicy } from "./sriov-resource-policy.js";

// The shapes of the upstream driver's demo/resource-policies manifest.
const POLICY = `
apiVersion: sriovnetwork.k8snetworkplumbingwg.io/v1alpha1
kind: SriovResourcePolicy
metadata:
  name: example-resource-policy
  namespace: dra-driver-sriov
  uid: 3c1e
  generation: 2
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions:
      - key: kubernetes.io/hostname
        operator: In
        values: [worker-0]
  configs:
  - deviceAttributesSelector:
      matchLabels: {pool: eth0-resource}
    resourceFilters:
    - vendors: ["8086"]
      pfNames: ["eth0"]
      pfPciAddresses: ["0000:01:00.0"]
      linkType: eth
  - {}
`;

const ATTRIBUTES = `
apiVersion: sriovnetwork.k8snetworkplumbingwg.io/v1alpha1
kind: DeviceAttributes
metadata:
  name: eth0-attrs
  namespace: dra-driver-sriov
  labels: {pool: eth0-resource}
spec:
  attributes:
    sriovnetwork.k8snetworkplumbingwg.io/resourceName: {string: eth0_resource}
    example.com/rank: {int: 3}
    fast: {bool: true}
    example.com/firmware: {version: 1.2.3}
`;

function problems(decodeIt: () => unknown): string[] {
  try {
    decodeIt();
  } catch (error) {
    if (error instanceof SchemaError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected a SchemaError");
}

type Json = Record<string, unknown>;
const policy = () => parse(POLICY) as Json & { spec: Json };
const attributes = () => parse(ATTRIBUTES) as Json & { spec: { attributes: Json } };

describe("decodeSriovResourcePolicy", () => {
  it("decodes upstream's demo shape, keeping the metadata the driver reads", () => {
    const decoded = decodeSriovResourcePolicy(policy());
    expect(decoded.metadata).toEqual({
      name: "example-resource-policy",
      namespace: "dra-driver-sriov",
      generation: 2,
    });
    expect(decoded.spec.configs?.[0]?.resourceFilters?.[0]).toEqual({
      vendors: ["8086"],
      pfNames: ["eth0"],
      pfPciAddresses: ["0000:01:00.0"],
      linkType: "eth",
    });
    expect(decoded.spec.configs?.[1]).toEqual({});
  });

  it("decodes a policy with no spec fields (every node, no configs)", () => {
    const minimal = { ...policy(), spec: {} };
    expect(decodeSriovResourcePolicy(minimal).spec).toEqual({});
  });

  it("names a link type upstream does not know", () => {
    const bad = policy();
    bad.spec = { configs: [{ resourceFilters: [{ linkType: "wifi" }] }] };
    expect(problems(() => decodeSriovResourcePolicy(bad)).join("\n")).toContain(
      "spec.configs[0].resourceFilters[0].linkType",
    );
  });

  it.each([
    ["In without values", { key: "a", operator: "In" }, "In and NotIn need at least one value"],
    ["Exists with values", { key: "a", operator: "Exists", values: ["x"] }, "take no values"],
    ["Gt with a word", { key: "a", operator: "Gt", values: ["many"] }, "an integer"],
    ["an unknown operator", { key: "a", operator: "Near", values: ["x"] }, "operator"],
  ])("refuses a node selector requirement with %s", (_name, requirement, message) => {
    const bad = policy();
    bad.spec = { nodeSelector: { nodeSelectorTerms: [{ matchExpressions: [requirement] }] } };
    expect(problems(() => decodeSriovResourcePolicy(bad)).join("\n")).toContain(message);
  });

  it("refuses matchFields other than metadata.name", () => {
    const bad = policy();
    bad.spec = {
      nodeSelector: {
        nodeSelectorTerms: [
          { matchFields: [{ key: "spec.unschedulable", operator: "In", values: ["x"] }] },
        ],
      },
    };
    expect(problems(() => decodeSriovResourcePolicy(bad)).join("\n")).toContain(
      "matchFields supports only metadata.name",
    );
  });

  it("bounds every list", () => {
    const bad = policy();
    bad.spec = { configs: Array.from({ length: 65 }, () => ({})) };
    expect(problems(() => decodeSriovResourcePolicy(bad)).join("\n")).toContain("at most 64 items");
    bad.spec = {
      configs: [{ resourceFilters: [{ pciAddresses: Array(257).fill("0000:01:00.1") }] }],
    };
    expect(problems(() => decodeSriovResourcePolicy(bad)).join("\n")).toContain(
      "at most 256 items",
    );
  });

  it("refuses our own group and unknown spec fields", () => {
    const ours = { ...policy(), apiVersion: "sriovnetwork.openshift.io/v1alpha1" };
    expect(problems(() => decodeSriovResourcePolicy(ours)).join("\n")).toContain("apiVersion");
    const extra = policy();
    extra.spec = { ...extra.spec, resourceName: "x" };
    expect(problems(() => decodeSriovResourcePolicy(extra)).join("\n")).toContain("resourceName");
  });
});

describe("decodeDeviceAttributes", () => {
  it("decodes each kind of value and the labels selectors match", () => {
    const decoded = decodeDeviceAttributes(attributes());
    expect(decoded.metadata.labels).toEqual({ pool: "eth0-resource" });
    expect(decoded.spec.attributes).toEqual({
      "sriovnetwork.k8snetworkplumbingwg.io/resourceName": { string: "eth0_resource" },
      "example.com/rank": { int: 3 },
      fast: { bool: true },
      "example.com/firmware": { version: "1.2.3" },
    });
  });

  it.each([
    ["two values", { string: "a", int: 1 }, "exactly one of"],
    ["no value", {}, "exactly one of"],
    ["a list value", { strings: ["a"] }, "strings"],
    ["a long string", { string: "x".repeat(65) }, "at most 64 characters"],
    ["a version that is not semver", { version: "v1" }, "semantic version"],
  ])("refuses an attribute with %s", (_name, value, message) => {
    const bad = attributes();
    bad.spec.attributes = { "example.com/x": value };
    expect(problems(() => decodeDeviceAttributes(bad)).join("\n")).toContain(message);
  });

  it.each(["Example.com/x", "example.com/1x", "a/b/c", "example.com/" + "x".repeat(90)])(
    "refuses the attribute name %s",
    (name) => {
      const bad = attributes();
      bad.spec.attributes = { [name]: { bool: true } };
      expect(problems(() => decodeDeviceAttributes(bad)).join("\n")).toContain(
        "attribute names are",
      );
    },
  );

  it("bounds the number of attributes", () => {
    const bad = attributes();
    bad.spec.attributes = Object.fromEntries(
      Array.from({ length: 33 }, (_, i) => [`example.com/a${i}`, { int: i }]),
    );
    expect(problems(() => decodeDeviceAttributes(bad)).join("\n")).toContain("at most 32 keys");
  });
});
