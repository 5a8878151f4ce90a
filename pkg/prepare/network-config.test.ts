import { describe, expect, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { VfConfig } from "../../api/v1alpha1/vf-config.js";
import type { NetworkAttachmentDefinition } from "./network-config.js";
import {
  cniConfigListOf,
  deviceIdPluginIndex,
  netAttachDefRefOf,
  withDeviceId,
} from "./network-config.js";

const nad = (config: unknown): NetworkAttachmentDefinition => ({
  metadata: { namespace: "ns", name: "sriov-net" },
  spec: { config: typeof config === "string" ? config : JSON.stringify(config) },
});

const vfConfig = (fields: Partial<VfConfig>): VfConfig => ({
  apiVersion: API_VERSION,
  kind: "VfConfig",
  ...fields,
});

describe("cniConfigListOf", () => {
  it("turns a single plugin configuration into a list of it, naming it after the object if unnamed", () => {
    const single = { cniVersion: "1.0.0", type: "sriov", vlan: 100, ipam: { type: "static" } };
    expect(cniConfigListOf(nad(single))).toEqual({
      cniVersion: "1.0.0",
      name: "sriov-net",
      plugins: [{ ...single, name: "sriov-net" }],
    });
    expect(cniConfigListOf(nad({ ...single, name: "mynet" })).name).toBe("mynet");
  });

  it("keeps a configuration list as it is", () => {
    const list = {
      cniVersion: "0.4.0",
      name: "chain",
      disableCheck: true,
      plugins: [
        { type: "sriov", vlan: 5 },
        { type: "tuning", mtu: 9000 },
      ],
    };
    expect(cniConfigListOf(nad(list))).toEqual(list);
  });

  it("explains what is wrong with a bad configuration", () => {
    const error = (config: unknown) => {
      try {
        cniConfigListOf(nad(config));
      } catch (caught) {
        return (caught as Error).message;
      }
      return "no error";
    };
    const prefix =
      "NetworkAttachmentDefinition ns/sriov-net has an invalid CNI configuration in spec.config:";
    expect(error("")).toBe(
      `${prefix} it is empty (this driver needs the configuration in the object, not on disk); fix the NetworkAttachmentDefinition`,
    );
    expect(error("{not json")).toMatch(`${prefix} not JSON (`);
    expect(error("[1]")).toMatch(`${prefix} not a JSON object`);
    expect(error({ type: "sriov" })).toMatch(`${prefix} cniVersion is missing`);
    expect(error({ cniVersion: "1.0.0" })).toMatch(
      `${prefix} the configuration has no plugin type`,
    );
    expect(error({ cniVersion: "1.0.0", name: 5, type: "sriov" })).toMatch("name is not a string");
    expect(error({ cniVersion: "1.0.0", plugins: [] })).toMatch("plugins is not a non-empty list");
    expect(error({ cniVersion: "1.0.0", plugins: [{ type: "sriov" }, { mtu: 1 }] })).toMatch(
      "plugins[1] has no plugin type",
    );
    expect(error({ cniVersion: "1.0.0", plugins: ["sriov"] })).toMatch(
      "plugins[0] is not an object",
    );
  });

  it("refuses a configuration nested or sized beyond what any CNI plugin reads", () => {
    const deep = `{"cniVersion":"1.0.0","type":"sriov","x":${"[".repeat(5000)}${"]".repeat(5000)}}`;
    expect(() => cniConfigListOf(nad(deep))).toThrow(
      "invalid CNI configuration in spec.config: nested deeper than 64 levels",
    );
    // As deep as a real configuration gets is fine.
    const nested = { cniVersion: "1.0.0", type: "sriov", a: { b: { c: { d: [[["x"]]] } } } };
    expect(cniConfigListOf(nad(nested)).plugins).toHaveLength(1);
    const huge = { cniVersion: "1.0.0", type: "sriov", pad: "x".repeat(1024 * 1024) };
    expect(() => cniConfigListOf(nad(huge))).toThrow(/larger than 256 KiB/);
  });
});

describe("withDeviceId", () => {
  const list = (types: string[]) => ({
    cniVersion: "1.0.0",
    name: "n",
    plugins: types.map((type) => ({ type })),
  });

  it("sets deviceID and pciBusID on the sriov plugin, wherever it is in the list", () => {
    const input = list(["tuning", "sriov", "sbr"]);
    expect(deviceIdPluginIndex(input)).toBe(1);
    expect(withDeviceId(input, "0000:3b:02.1").plugins).toEqual([
      { type: "tuning" },
      { type: "sriov", deviceID: "0000:3b:02.1", pciBusID: "0000:3b:02.1" },
      { type: "sbr" },
    ]);
    expect(input.plugins[1]).toEqual({ type: "sriov" });
  });

  it("falls back to the first plugin, the list's main one", () => {
    // host-device finds the VF by pciBusID (it ignores deviceID), as the real kernel's
    // test showed: both keys, as Multus injects them, serve the SR-IOV CNI and host-device.
    expect(withDeviceId(list(["host-device", "tuning"]), "0000:3b:02.1").plugins).toEqual([
      { type: "host-device", deviceID: "0000:3b:02.1", pciBusID: "0000:3b:02.1" },
      { type: "tuning" },
    ]);
  });
});

describe("netAttachDefRefOf", () => {
  it("defaults to the claim's namespace and refuses others unless allowed", () => {
    expect(netAttachDefRefOf(vfConfig({ netAttachDefName: "a" }), "ns", false)).toEqual({
      namespace: "ns",
      name: "a",
    });
    expect(netAttachDefRefOf(vfConfig({}), "ns", false)).toBeNull();
    const other = vfConfig({ netAttachDefName: "a", netAttachDefNamespace: "networks" });
    expect(() => netAttachDefRefOf(other, "ns", false)).toThrow(
      "VfConfig names NetworkAttachmentDefinition networks/a, outside the claim's namespace ns: create it in ns, or run the driver with cross-namespace networks allowed",
    );
    expect(netAttachDefRefOf(other, "ns", true)).toEqual({ namespace: "networks", name: "a" });
    expect(
      netAttachDefRefOf(
        vfConfig({ netAttachDefName: "a", netAttachDefNamespace: "ns" }),
        "ns",
        false,
      ),
    ).toEqual({ namespace: "ns", name: "a" });
  });

  it("refuses a namespace without a name", () => {
    expect(() => netAttachDefRefOf(vfConfig({ netAttachDefNamespace: "ns" }), "ns", true)).toThrow(
      /netAttachDefNamespace "ns" without netAttachDefName/,
    );
  });
});
