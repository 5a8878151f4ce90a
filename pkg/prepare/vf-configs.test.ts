import { describe, expect, it } from "vitest";
import { API_VERSION, UPSTREAM_API_VERSION } from "../../api/v1alpha1/group.js";
import type { AllocationConfig } from "./allocation.js";
import { ClaimError } from "./claim-error.js";
import { configAppliesTo, decodeRequestConfigs, vfConfigFor } from "./vf-configs.js";

const DRIVER = "sriovnetwork.openshift.io";
const OPTIONS = { driverName: DRIVER, claimName: "ns/claim" };

function config(
  source: AllocationConfig["source"],
  parameters: Record<string, unknown>,
  requests?: string[],
  driver = DRIVER,
): AllocationConfig {
  return {
    source,
    ...(requests ? { requests } : {}),
    opaque: { driver, parameters: { apiVersion: API_VERSION, kind: "VfConfig", ...parameters } },
  };
}

const resolve = (configs: AllocationConfig[], request: string) =>
  vfConfigFor(decodeRequestConfigs(configs, OPTIONS), request);

describe("VfConfig resolution", () => {
  it("merges class configs before claim configs, whatever the allocation's order", () => {
    const merged = resolve(
      [
        config("FromClaim", { ifName: "claim0" }),
        config("FromClass", { ifName: "class0", driver: "vfio-pci" }),
        config("FromClaim", { netAttachDefName: "claim1" }),
        config("FromClass", { netAttachDefName: "class1", addVhostMount: true }),
      ],
      "vf",
    );
    expect(merged).toEqual({
      apiVersion: API_VERSION,
      kind: "VfConfig",
      driver: "vfio-pci",
      ifName: "claim0",
      netAttachDefName: "claim1",
      addVhostMount: true,
    });
  });

  it("lets a later config override every field, false and empty included", () => {
    const merged = resolve(
      [
        config("FromClass", {
          driver: "vfio-pci",
          ifName: "a",
          netAttachDefName: "net-a",
          netAttachDefNamespace: "ns-a",
          addVhostMount: true,
        }),
        config("FromClaim", {
          driver: "",
          ifName: "b",
          netAttachDefName: "net-b",
          netAttachDefNamespace: "ns-b",
          addVhostMount: false,
        }),
      ],
      "vf",
    );
    expect(merged).toMatchObject({
      driver: "",
      ifName: "b",
      netAttachDefName: "net-b",
      netAttachDefNamespace: "ns-b",
      addVhostMount: false,
    });
  });

  it("applies a config only to the requests it names; a main request covers its subrequests", () => {
    const configs = [
      config("FromClaim", { ifName: "all" }),
      config("FromClaim", { driver: "vfio-pci" }, ["dpdk"]),
      config("FromClaim", { addVhostMount: true }, ["dpdk/intel"]),
      config("FromClaim", { netAttachDefName: "kernel-net" }, ["kernel"]),
    ];
    expect(resolve(configs, "dpdk/intel")).toMatchObject({
      ifName: "all",
      driver: "vfio-pci",
      addVhostMount: true,
    });
    expect(resolve(configs, "dpdk/mellanox")).toMatchObject({ driver: "vfio-pci" });
    expect(resolve(configs, "dpdk/mellanox").addVhostMount).toBeUndefined();
    expect(resolve(configs, "kernel")).toMatchObject({
      ifName: "all",
      netAttachDefName: "kernel-net",
    });
    expect(resolve(configs, "kernel").driver).toBeUndefined();
    expect(configAppliesTo([], "x/y")).toBe(true);
    expect(configAppliesTo(["x/z"], "x/y")).toBe(false);
  });

  it("ignores other drivers' configs, and accepts the upstream API group", () => {
    const merged = resolve(
      [
        config("FromClaim", { ifName: "theirs" }, undefined, "gpu.example.com"),
        {
          source: "FromClaim",
          opaque: {
            driver: DRIVER,
            parameters: { apiVersion: UPSTREAM_API_VERSION, kind: "VfConfig", ifName: "up" },
          },
        },
      ],
      "vf",
    );
    expect(merged.ifName).toBe("up");
    expect(decodeRequestConfigs([config("FromClaim", {}, undefined, "other")], OPTIONS)).toEqual(
      [],
    );
  });

  it("refuses a malformed config, naming where it is and whose it is", () => {
    const attempt = (configs: AllocationConfig[]) => () => decodeRequestConfigs(configs, OPTIONS);
    expect(attempt([config("FromClaim", {}), config("FromClaim", { ifname: "x" })])).toThrow(
      new ClaimError(
        'invalid VfConfig (ResourceClaim ns/claim status.allocation.devices.config[1].opaque.parameters.ifname: unknown field (did you mean "ifName"?)): fix the claim\'s config',
      ),
    );
    expect(attempt([config("FromClass", { driver: "igb_uio" })])).toThrow(
      /config\[0\]\.opaque\.parameters\.driver: must be one of .*: fix the DeviceClass's config/,
    );
    expect(attempt([config("FromClaim", { ifName: "a-very-long-ifname" })])).toThrow(
      /at most 15 bytes/,
    );
    expect(
      attempt([{ source: "FromClaim", opaque: { driver: DRIVER, parameters: "text" } }]),
    ).toThrow(ClaimError);
  });
});
