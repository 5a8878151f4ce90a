import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { MAX_ATTRIBUTE_STRING_LENGTH } from "../../pkg/devices/attributes.js";
import { SchemaError } from "../schema/index.js";
import { MAX_RESOURCE_NAME_LENGTH } from "./formats.js";
import { decodeSriovResourceFilter } from "./sriov-resource-filter.js";

const EXAMPLE = `
apiVersion: sriovnetwork.openshift.io/v1alpha1
kind: SriovResourceFilter
metadata:
  name: example-filter
  namespace: dra-sriov-driver
  generation: 3
  uid: 0d5d0c2e-4c5e-4a8e-9d1f-2f0c2b8a7e11
  resourceVersion: "1234"
spec:
  nodeSelector: {kubernetes.io/hostname: worker-node-1}
  configs:
  - resourceName: eth0_resource
    resourceFilters:
    - vendors: ["8086"]
      devices: ["154C"]
      pfNames: ["eth0", "eth1#0-3,5"]
      pciAddresses: []
      rootDevices: ["0000:3b:00.0"]
      numaNodes: ["0"]
      drivers: ["vfio-pci"]
  - resourceName: rest
    resourceFilters: [{}]
status:
  conditions:
  - type: Accepted
    status: "True"
    reason: Valid
    message: ""
    lastTransitionTime: "2026-11-23T08:00:00Z"
    observedGeneration: 3
  matchedNodes: 1
  devicesExposed: [{resourceName: eth0_resource, count: 4}]
`;

const example = () => parse(EXAMPLE) as Record<string, unknown> & { spec: { configs: unknown[] } };

function issues(json: unknown): string[] {
  try {
    decodeSriovResourceFilter(json);
  } catch (error) {
    if (error instanceof SchemaError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected a SchemaError");
}

describe("decodeSriovResourceFilter", () => {
  it("decodes the documented example, keeping only the metadata the driver reads", () => {
    const filter = decodeSriovResourceFilter(parse(EXAMPLE));
    expect(filter.metadata).toEqual({
      name: "example-filter",
      namespace: "dra-sriov-driver",
      generation: 3,
    });
    expect(filter.spec.configs[0]?.resourceFilters[0]?.pfNames).toEqual(["eth0", "eth1#0-3,5"]);
    expect(filter.status?.devicesExposed).toEqual([{ resourceName: "eth0_resource", count: 4 }]);
  });

  it("names the full path of a misspelt field and suggests the right one", () => {
    const json = example();
    json.spec.configs[0] = {
      resourceName: "a",
      resourceFilters: [{}, { vendor: ["8086"] }],
    };
    expect(issues(json)).toEqual([
      'spec.configs[0].resourceFilters[1].vendor: unknown field (did you mean "vendors"?)',
    ]);
  });

  it("requires unique resourceNames within a filter (the CRD's CEL rule)", () => {
    const json = example();
    json.spec.configs.push({ resourceName: "rest", resourceFilters: [{}] });
    expect(issues(json)).toEqual(["spec.configs: resourceName must be unique within a filter"]);
  });

  it.each([
    ["resourceName", { resourceName: "eth0 resource", resourceFilters: [{}] }, /made of letters/],
    ["resourceName length", { resourceName: "r".repeat(64), resourceFilters: [{}] }, /at most 63/],
    ["empty resourceFilters", { resourceName: "a", resourceFilters: [] }, /at least 1 item/],
    ["hex id", { resourceName: "a", resourceFilters: [{ vendors: ["808"] }] }, /4 hex digits/],
    ["pfName range", { resourceName: "a", resourceFilters: [{ pfNames: ["eth0#x"] }] }, /PF/],
    ["pfName colon", { resourceName: "a", resourceFilters: [{ pfNames: ["eth0:1"] }] }, /PF/],
    ["PCI address", { resourceName: "a", resourceFilters: [{ pciAddresses: ["3b:02.1"] }] }, /PCI/],
    ["NUMA node", { resourceName: "a", resourceFilters: [{ numaNodes: [0] }] }, /a string/],
  ])("rejects a bad %s", (_, config, message) => {
    const json = example();
    json.spec.configs[0] = config;
    const [issue, ...rest] = issues(json);
    expect(rest).toEqual([]);
    expect(issue).toMatch(/^spec\.configs\[0\]/);
    expect(issue).toMatch(message);
  });

  it("keeps resourceName short enough for a DRA string attribute", () => {
    expect(MAX_RESOURCE_NAME_LENGTH).toBeLessThanOrEqual(MAX_ATTRIBUTE_STRING_LENGTH);
  });

  it("requires the type meta, a namespace and a spec", () => {
    expect(
      issues({ apiVersion: "v1", kind: "SriovResourceFilter", metadata: { name: "a" } }),
    ).toEqual([
      'apiVersion: must be "sriovnetwork.openshift.io/v1alpha1"; got "v1"',
      "metadata.namespace: required field is missing",
      "spec: required field is missing",
    ]);
  });
});
