import { describe, expect, it } from "vitest";
import { extendedResourceDevices, vfConfigsOfAssignments } from "./annotated-networks.js";

const result = (request: string, device: string) => ({
  request,
  device,
  driver: "sriovnetwork.openshift.io",
  pool: "node-a",
});

describe("extendedResourceDevices", () => {
  it("names each device's extended resource from the pod's request mappings", () => {
    const pod = {
      metadata: { name: "p", namespace: "ns", uid: "u" },
      status: {
        extendedResourceClaimStatus: {
          resourceClaimName: "p-extended-resources-abcde",
          requestMappings: [
            {
              containerName: "a",
              resourceName: "intel.com/dpdk",
              requestName: "container-0-request-0",
            },
            {
              containerName: "a",
              resourceName: "intel.com/net",
              requestName: "container-0-request-1",
            },
          ],
        },
      },
    };
    expect(
      extendedResourceDevices(
        [
          result("container-0-request-1", "vf-1"),
          result("container-0-request-0", "vf-2"),
          result("other", "vf-3"),
        ],
        pod,
      ),
    ).toEqual([
      { device: "vf-1", resourceName: "intel.com/net" },
      { device: "vf-2", resourceName: "intel.com/dpdk" },
    ]);
  });

  it("finds nothing in a pod without the scheduler's status", () => {
    const pod = { metadata: { name: "p", namespace: "ns", uid: "u" } };
    expect(extendedResourceDevices([result("r", "vf-1")], pod)).toEqual([]);
  });
});

describe("vfConfigsOfAssignments", () => {
  it("lays network, interface, ips and mac over the VF's config", () => {
    const configs = vfConfigsOfAssignments([
      {
        device: "vf-1",
        ifName: "net1",
        network: {
          namespace: "ns",
          name: "sriov",
          ips: ["10.0.0.2/24"],
          mac: "02:00:00:00:00:01",
          notCarried: [],
        },
      },
      {
        device: "vf-2",
        ifName: "data",
        network: { namespace: "ns", name: "other", notCarried: [] },
      },
    ]);
    expect(Object.fromEntries(configs)).toEqual({
      "vf-1": {
        apiVersion: "sriovnetwork.openshift.io/v1alpha1",
        kind: "VfConfig",
        netAttachDefName: "sriov",
        netAttachDefNamespace: "ns",
        ifName: "net1",
        ips: ["10.0.0.2/24"],
        mac: "02:00:00:00:00:01",
      },
      "vf-2": {
        apiVersion: "sriovnetwork.openshift.io/v1alpha1",
        kind: "VfConfig",
        netAttachDefName: "other",
        netAttachDefNamespace: "ns",
        ifName: "data",
      },
    });
  });
});
