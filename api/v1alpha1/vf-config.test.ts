import { describe, expect, it } from "vitest";
import { SchemaError } from "../schema/index.js";
import { API_VERSION, UPSTREAM_API_VERSION } from "./group.js";
import { decodeVfConfig, mergeVfConfigs, vfConfigSchema, type VfConfig } from "./vf-config.js";

const PATH = "ResourceClaim default/dpdk config[0].opaque.parameters";

function decodeError(json: unknown): string {
  try {
    decodeVfConfig(json, PATH);
  } catch (error) {
    if (error instanceof SchemaError) return error.message;
    throw error;
  }
  throw new Error("expected decodeVfConfig to throw");
}

const config = (fields: Omit<VfConfig, "apiVersion" | "kind">): VfConfig => ({
  apiVersion: API_VERSION,
  kind: "VfConfig",
  ...fields,
});

describe("decodeVfConfig", () => {
  it("decodes every field under both API versions", () => {
    const full = {
      driver: "vfio-pci",
      ifName: "net1",
      netAttachDefName: "sriov-net.a",
      netAttachDefNamespace: "networks",
      addVhostMount: true,
      ips: ["10.56.217.10/24", "fd00::10/64"],
      mac: "02:00:00:aa:bb:01",
    };
    for (const apiVersion of [API_VERSION, UPSTREAM_API_VERSION]) {
      const json = { apiVersion, kind: "VfConfig", ...full };
      expect(decodeVfConfig(json, PATH)).toEqual(json);
    }
  });

  it("accepts a config that only names its type, and every driver spelling", () => {
    expect(decodeVfConfig({ apiVersion: API_VERSION, kind: "VfConfig" }, PATH)).toEqual({
      apiVersion: API_VERSION,
      kind: "VfConfig",
    });
    for (const driver of ["", "default", "vfio-pci"] as const) {
      expect(decodeVfConfig(config({ driver }), PATH).driver).toBe(driver);
    }
  });

  it("names the path and field of an unknown field", () => {
    expect(decodeError({ ...config({}), ifname: "net1" })).toBe(
      `${PATH}.ifname: unknown field (did you mean "ifName"?)`,
    );
  });

  it("refuses a huge unknown field without echoing it or guessing at it", () => {
    const key = "x".repeat(1_400_000);
    const message = decodeError({ ...config({}), [key]: 1 });
    expect(message).toMatch(
      new RegExp(
        `^${PATH.replace(/[.[\]]/g, "\\$&")}\\.x{64}…: unknown field \\(known fields: [^)]{1,200}\\)$`,
      ),
    );
  });

  it("rejects other groups, kinds and a missing type", () => {
    expect(decodeError({ ...config({}), apiVersion: "example.com/v1" })).toBe(
      `${PATH}.apiVersion: must be one of "${API_VERSION}", "${UPSTREAM_API_VERSION}"; got "example.com/v1"`,
    );
    expect(decodeError({ ...config({}), kind: "GpuConfig" })).toBe(
      `${PATH}.kind: must be "VfConfig"; got "GpuConfig"`,
    );
    expect(decodeError({ driver: "vfio-pci" })).toBe(
      [
        `${PATH}.apiVersion: required field is missing`,
        `${PATH}.kind: required field is missing`,
      ].join("\n"),
    );
  });

  it("rejects a driver it cannot bind", () => {
    expect(decodeError({ ...config({}), driver: "igb_uio" })).toBe(
      `${PATH}.driver: must be one of "", "default", "vfio-pci"; got "igb_uio"`,
    );
  });

  it.each([
    ["eth0:1", `must not contain ":"; got "eth0:1"`],
    ["a/b", `must not contain "/"; got "a/b"`],
    ["net 1", `must not contain " "; got "net 1"`],
    ["tab\there", `must not contain "\\t"; got "tab\\there"`],
    [
      "abcdefghijklmnop",
      `must be at most 15 bytes (the kernel's limit); "abcdefghijklmnop" has 16`,
    ],
    ["ñetwork-ñ-ñ-ñ", `must be at most 15 bytes (the kernel's limit); "ñetwork-ñ-ñ-ñ" has 17`],
    ["net\u00001", `must not contain "\\u0000"; got "net\\u00001"`],
    ["net\u007f", `must not contain "\\u007f"; got "net\\u007f"`],
    ["net%d", `must not contain "%" (the kernel reads it as a name template); got "net%d"`],
    [".", `must not be "."`],
    ["..", `must not be ".."`],
    ["", "must not be empty"],
  ])("rejects ifName %j", (ifName, message) => {
    expect(decodeError(config({ ifName }))).toBe(`${PATH}.ifName: ${message}`);
  });

  it("accepts ifNames at the kernel's limits", () => {
    for (const ifName of ["a", "abcdefghijklmno", "net-1_2.3", "..."]) {
      expect(decodeVfConfig(config({ ifName }), PATH).ifName).toBe(ifName);
    }
  });

  it("checks the NetworkAttachmentDefinition reference", () => {
    expect(decodeError(config({ netAttachDefName: "Sriov_Net" }))).toMatch(
      /\.netAttachDefName: must be a DNS subdomain/,
    );
    expect(decodeError(config({ netAttachDefNamespace: "a.b" }))).toMatch(
      /\.netAttachDefNamespace: must be a DNS label/,
    );
    expect(decodeError({ ...config({}), addVhostMount: "true" })).toBe(
      `${PATH}.addVhostMount: must be a boolean; got the string "true"`,
    );
  });
  it("checks static addresses and the MAC", () => {
    for (const bad of [
      "10.0.0.1",
      "10.0.0.1/33",
      "fd00::1/129",
      "10.0.0.1/24/1",
      "host/24",
      "10.0.0.1/x",
    ]) {
      expect(decodeError(config({ ips: [bad] }))).toBe(
        `${PATH}.ips[0]: must be an IP address with a prefix length; got ${JSON.stringify(bad)}`,
      );
    }
    expect(decodeError(config({ mac: "03:00:00:00:00:01" }))).toMatch(
      /\.mac: must be a unicast MAC address/,
    );
  });
});

describe("mergeVfConfigs", () => {
  it("lets the later config win field by field, for every field", () => {
    const first = config({
      driver: "vfio-pci",
      ifName: "net1",
      netAttachDefName: "a",
      netAttachDefNamespace: "ns-a",
      addVhostMount: true,
      ips: ["10.0.0.1/24"],
      mac: "02:00:00:00:00:01",
    });
    const second = config({
      driver: "default",
      ifName: "net2",
      netAttachDefName: "b",
      netAttachDefNamespace: "ns-b",
      addVhostMount: false,
      ips: ["10.0.0.2/24"],
      mac: "02:00:00:00:00:02",
    });
    expect(mergeVfConfigs([first, second])).toEqual(second);
    // Every field of the schema but the type meta takes part, so a new field cannot be missed.
    const settings = Object.keys(vfConfigSchema.shape).filter(
      (key) => key !== "apiVersion" && key !== "kind",
    );
    expect(
      Object.keys(second)
        .filter((key) => settings.includes(key))
        .sort(),
    ).toEqual(settings.sort());
  });

  it("keeps earlier values for fields a later config leaves out", () => {
    const base = config({ driver: "vfio-pci", netAttachDefNamespace: "ns-a", addVhostMount: true });
    const override = config({ ifName: "net1", netAttachDefName: "b" });
    expect(mergeVfConfigs([base, override])).toEqual(
      config({
        driver: "vfio-pci",
        ifName: "net1",
        netAttachDefName: "b",
        netAttachDefNamespace: "ns-a",
        addVhostMount: true,
      }),
    );
  });

  it("treats explicit empty and false values as set", () => {
    const merged = mergeVfConfigs([
      config({ driver: "vfio-pci", addVhostMount: true }),
      config({ driver: "", addVhostMount: false }),
    ]);
    expect(merged).toEqual(config({ driver: "", addVhostMount: false }));
  });

  it("merges upstream-versioned configs into our own version, and nothing into defaults", () => {
    const upstream: VfConfig = { apiVersion: UPSTREAM_API_VERSION, kind: "VfConfig", ifName: "a" };
    expect(mergeVfConfigs([upstream])).toEqual(config({ ifName: "a" }));
    expect(mergeVfConfigs([])).toEqual(config({}));
  });
});
