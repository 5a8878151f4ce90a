import { describe, expect, it } from "vitest";
import { DevicePluginConfigError, parseDevicePluginConfig } from "./device-plugin-config.js";
import { networkAttachmentsOf, objectsOfManifest } from "./network-attachments.js";

const configMap = (key: string, json: string) =>
  [
    "apiVersion: v1",
    "kind: ConfigMap",
    "metadata: { name: sriovdp-config, namespace: kube-system }",
    "data:",
    `  ${key}: '${json}'`,
  ].join("\n");

describe("parseDevicePluginConfig", () => {
  it("reads config.json from a ConfigMap, and the raw config.json alike", () => {
    const json = '{"resourceList":[{"resourceName":"a","selectors":{"vendors":["8086"]}}]}';
    const expected = {
      resourceList: [
        {
          resourceName: "a",
          deviceType: "netDevice",
          excludeTopology: false,
          selectors: [{ vendors: ["8086"], unknownFields: [] }],
          hasAdditionalInfo: false,
        },
      ],
    };
    expect(parseDevicePluginConfig(configMap("config.json", json), "cm.yaml")).toEqual(expected);
    expect(parseDevicePluginConfig(json, "config.json")).toEqual(expected);
  });

  it("reads a per-node key when asked, and names the keys there are when it is missing", () => {
    const text = configMap("node-0", '{"resourceList":[]}');
    expect(parseDevicePluginConfig(text, "cm.yaml", "node-0")).toEqual({ resourceList: [] });
    expect(() => parseDevicePluginConfig(text, "cm.yaml")).toThrow(
      /no data\["config.json"\] \(its keys: node-0\).*--config-key/,
    );
  });

  it("matches field names ignoring case, as Go's encoding/json does, and keeps unknown ones", () => {
    const config = parseDevicePluginConfig(
      '{"resourceList":[{"ResourceName":"a","selectors":[{"IsRdma":true,"PFNames":["p0"],"typo":1}]}]}',
      "config.json",
    );
    expect(config.resourceList[0]!.resourceName).toBe("a");
    expect(config.resourceList[0]!.selectors).toEqual([
      { isRdma: true, pfNames: ["p0"], unknownFields: ["typo"] },
    ]);
  });

  it("accepts trailing commas (a JSON superset) but names the path of a wrong type", () => {
    expect(
      parseDevicePluginConfig('{"resourceList":[{"resourceName":"a",},],}', "c").resourceList,
    ).toHaveLength(1);
    expect(() =>
      parseDevicePluginConfig(
        '{"resourceList":[{"resourceName":"a","selectors":{"vendors":"8086"}}]}',
        "c",
      ),
    ).toThrow("c: resourceList[0] (a).selectors.vendors: must be a list of strings");
    expect(() =>
      parseDevicePluginConfig('{"resourceList":[{"resourceName":"a","deviceType":"gpu"}]}', "c"),
    ).toThrow(/deviceType: must be one of netDevice, accelerator, auxNetDevice/);
  });

  it("refuses what is not a config, and input too large or too deep to be one", () => {
    expect(() => parseDevicePluginConfig("[1, 2]", "c")).toThrow(DevicePluginConfigError);
    expect(() => parseDevicePluginConfig("{ nope", "c")).toThrow(/c: not JSON or YAML/);
    expect(() => parseDevicePluginConfig(" ".repeat(1024 * 1024 + 1), "c")).toThrow(/larger than/);
    expect(() => parseDevicePluginConfig("[".repeat(40) + "]".repeat(40), "c")).toThrow(/deeper/);
  });
});

describe("networkAttachmentsOf", () => {
  it("keeps the NetworkAttachmentDefinitions that name a resource, from documents and Lists", () => {
    const text = [
      "apiVersion: v1",
      "kind: List",
      "items:",
      "  - kind: NetworkAttachmentDefinition",
      "    metadata:",
      "      name: sriov-net1",
      "      namespace: team-a",
      "      annotations: { k8s.v1.cni.cncf.io/resourceName: intel.com/intel_sriov_netdevice }",
      "  - kind: NetworkAttachmentDefinition",
      "    metadata: { name: bridge-net }",
      "---",
      "kind: NetworkAttachmentDefinition",
      "metadata:",
      "  name: dpdk",
      "  annotations: { k8s.v1.cni.cncf.io/resourceName: intel.com/intel_x710vfio }",
      "---",
      "kind: ConfigMap",
      "metadata: { name: other }",
    ].join("\n");
    expect(networkAttachmentsOf(objectsOfManifest(text, "nads.yaml"), "default")).toEqual([
      { namespace: "team-a", name: "sriov-net1", resourceName: "intel.com/intel_sriov_netdevice" },
      { namespace: "default", name: "dpdk", resourceName: "intel.com/intel_x710vfio" },
    ]);
  });

  it("refuses a file that is not YAML, pointing at kubectl's output", () => {
    expect(() => objectsOfManifest("a: 'open", "nads.yaml")).toThrow(
      /nads.yaml: not YAML: .*kubectl get network-attachment-definitions -A -o yaml/,
    );
  });
});
