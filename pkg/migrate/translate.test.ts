import { parse as parseCel } from "@marcbachmann/cel-js";
import { describe, expect, it } from "vitest";
import { decodeSriovResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import { decodeVfConfig } from "../../api/v1alpha1/vf-config.js";
import { validateFilterSpec } from "../filters/validate.js";
import { decodeDevicePluginConfig } from "./device-plugin-config.js";
import { renderYamlStream } from "./render.js";
import { translateDevicePluginConfig, type Migration, type MigrateOptions } from "./translate.js";

const OPTIONS: MigrateOptions = {
  driverName: "sriovnetwork.openshift.io",
  defaultPrefix: "intel.com",
  filterName: "sriov-device-plugin",
  namespace: "dra-sriov-driver",
  nodeSelector: {},
};
const A = 'device.attributes["sriovnetwork.openshift.io"]';

function migrate(
  resourceList: unknown[],
  networks: Parameters<typeof translateDevicePluginConfig>[1] = [],
): Migration {
  const config = decodeDevicePluginConfig({ resourceList }, "test");
  const migration = translateDevicePluginConfig(config, networks, OPTIONS);
  if (migration.filter !== undefined) {
    // Whatever is written must be a filter the driver accepts.
    const filter = decodeSriovResourceFilter(migration.filter);
    expect(validateFilterSpec(filter.spec)).toEqual([]);
  }
  for (const deviceClass of migration.deviceClasses) {
    for (const { cel } of deviceClass.spec.selectors)
      expect(() => parseCel(cel.expression)).not.toThrow();
    for (const { opaque } of deviceClass.spec.config ?? []) {
      expect(() => decodeVfConfig(opaque.parameters, deviceClass.metadata.name)).not.toThrow();
    }
  }
  return migration;
}

const kinds = (migration: Migration) =>
  migration.findings.map((f) => `${f.kind} ${f.subject} ${f.field}`.trim());

describe("translateDevicePluginConfig", () => {
  it("puts the fields a filter has into one config per resource, and a class per resource", () => {
    const migration = migrate([
      {
        resourceName: "intel_sriov_netdevice",
        selectors: [
          { vendors: ["8086"], devices: ["154c"], drivers: ["iavf"], pfNames: ["ens1f0#0-3,6"] },
          { pciAddresses: ["0000:3b:02.0"], rootDevices: ["0000:86:00.0"] },
        ],
      },
      { resourceName: "mlnx", resourcePrefix: "mellanox.com", selectors: { vendors: ["15b3"] } },
    ]);
    expect(migration.findings).toEqual([]);
    expect(migration.filter).toEqual({
      apiVersion: "sriovnetwork.openshift.io/v1alpha1",
      kind: "SriovResourceFilter",
      metadata: { name: "sriov-device-plugin", namespace: "dra-sriov-driver" },
      spec: {
        configs: [
          {
            resourceName: "intel.com_intel_sriov_netdevice",
            resourceFilters: [
              {
                vendors: ["8086"],
                devices: ["154c"],
                drivers: ["iavf"],
                pfNames: ["ens1f0#0-3,6"],
              },
              { pciAddresses: ["0000:3b:02.0"], rootDevices: ["0000:86:00.0"] },
            ],
          },
          { resourceName: "mellanox.com_mlnx", resourceFilters: [{ vendors: ["15b3"] }] },
        ],
      },
    });
    expect(migration.deviceClasses[0]).toEqual({
      apiVersion: "resource.k8s.io/v1",
      kind: "DeviceClass",
      metadata: { name: "intel-sriov-netdevice.intel.com" },
      spec: {
        selectors: [
          {
            cel: {
              expression: `device.driver == "sriovnetwork.openshift.io" && (!("deviceType" in ${A}) || ${A}.deviceType == "vf") && "resourceName" in ${A} && ${A}.resourceName == "intel.com_intel_sriov_netdevice"`,
            },
          },
        ],
        extendedResourceName: "intel.com/intel_sriov_netdevice",
      },
    });
    expect(migration.resources.map((r) => [r.extendedResourceName, r.deviceClass])).toEqual([
      ["intel.com/intel_sriov_netdevice", "intel-sriov-netdevice.intel.com"],
      ["mellanox.com/mlnx", "mlnx.mellanox.com"],
    ]);
  });

  it("gives the class a VfConfig for needVhostNet and for vfio-pci pools", () => {
    const migration = migrate([
      { resourceName: "dpdk", selectors: [{ drivers: ["vfio-pci"], needVhostNet: true }] },
      { resourceName: "kernel", selectors: [{ drivers: ["iavf"] }] },
    ]);
    expect(migration.findings).toEqual([]);
    expect(migration.deviceClasses.map((c) => c.spec.config)).toEqual([
      [
        {
          opaque: {
            driver: "sriovnetwork.openshift.io",
            parameters: {
              apiVersion: "sriovnetwork.openshift.io/v1alpha1",
              kind: "VfConfig",
              addVhostMount: true,
              driver: "vfio-pci",
            },
          },
        },
      ],
      undefined,
    ]);
  });

  it("reports needVhostNet on some selectors only, and pools that mix vfio-pci with kernel drivers", () => {
    const migration = migrate([
      {
        resourceName: "mixed",
        selectors: [{ drivers: ["vfio-pci"], needVhostNet: true }, { drivers: ["iavf"] }],
      },
    ]);
    expect(kinds(migration)).toEqual([
      "approximate intel.com/mixed needVhostNet",
      "approximate intel.com/mixed drivers",
    ]);
    expect(migration.deviceClasses[0]!.spec.config![0]!.opaque.parameters).toEqual({
      apiVersion: "sriovnetwork.openshift.io/v1alpha1",
      kind: "VfConfig",
      addVhostMount: true,
    });
  });

  it("narrows with CEL in the class what a filter cannot say, and puts such configs last", () => {
    const migration = migrate([
      { resourceName: "ib", selectors: [{ linkTypes: ["infiniband"], isRdma: true }] },
      {
        resourceName: "rdma",
        selectors: [{ vendors: ["15b3"], isRdma: true }, { rootDevices: ["0000:86:00.0#0-1,3"] }],
      },
      { resourceName: "ranged", selectors: [{ rootDevices: ["0000:AF:00.0#2"] }] },
      { resourceName: "bnxt", selectors: [{ vendors: ["14e4"] }] },
    ]);
    expect(migration.filter!.spec.configs).toEqual([
      { resourceName: "intel.com_ranged", resourceFilters: [{ rootDevices: ["0000:AF:00.0#2"] }] },
      { resourceName: "intel.com_bnxt", resourceFilters: [{ vendors: ["14e4"] }] },
      { resourceName: "intel.com_ib", resourceFilters: [{}] },
      {
        resourceName: "intel.com_rdma",
        resourceFilters: [{ vendors: ["15b3"] }, { rootDevices: ["0000:86:00.0#0-1,3"] }],
      },
    ]);
    const [ib, rdma, ranged] = migration.deviceClasses.map(
      (c) => c.spec.selectors[0]!.cel.expression,
    );
    expect(ib!.endsWith(`&& ((${A}.linkType in ["infiniband"] && ${A}.rdmaCapable == true))`)).toBe(
      true,
    );
    // Every selector object of the resource, whole, ORed.
    expect(rdma).toContain(
      `&& ((${A}.vendor in ["15b3"] && ${A}.rdmaCapable == true) || ((${A}.pfPciAddress == "0000:86:00.0" && ((${A}.vfID >= 0 && ${A}.vfID <= 1) || ${A}.vfID == 3))))`,
    );
    expect(ranged).toMatch(/resourceName == "intel.com_ranged"$/);
    expect(kinds(migration)).toEqual([
      "approximate intel.com/ib selectors[0].linkTypes",
      "approximate intel.com/ib selectors[0].isRdma",
      "approximate intel.com/rdma selectors[0].isRdma",
      // ib's empty filter may take VFs of every later resource, rdma's those of the others.
      "approximate intel.com/ib",
      "approximate intel.com/rdma",
    ]);
    expect(migration.findings.at(-2)!.message).toContain(
      "intel.com/rdma, intel.com/ranged, intel.com/bnxt both select",
    );
    expect(migration.findings.at(-1)!.message).toContain("intel.com/ranged, intel.com/bnxt both");
  });

  it("reports what this driver cannot select on, and leaves out what it cannot serve", () => {
    const migration = migrate([
      {
        resourceName: "gtp",
        excludeTopology: true,
        additionalInfo: { "*": { token: "x" } },
        selectors: [
          { vendors: ["8086"], ddpProfiles: ["GTP"], acpiIndexes: ["101"], pKeys: ["0x1"] },
        ],
      },
      { resourceName: "vdpa", selectors: [{ vendors: ["15b3"], vdpaType: "vhost" }] },
      { resourceName: "fpga", deviceType: "accelerator", selectors: [{ vendors: ["8086"] }] },
      { resourceName: "sf", deviceType: "auxNetDevice", selectors: [{ auxTypes: ["sf"] }] },
    ]);
    expect(kinds(migration)).toEqual([
      "ignored intel.com/gtp excludeTopology",
      "unsupported intel.com/gtp additionalInfo",
      "unsupported intel.com/gtp selectors[0].ddpProfiles",
      "unsupported intel.com/gtp selectors[0].pKeys",
      "unsupported intel.com/gtp selectors[0].acpiIndexes",
      "unsupported intel.com/vdpa selectors[0].vdpaType",
      "unsupported intel.com/vdpa selectors",
      "unsupported intel.com/fpga deviceType",
      "unsupported intel.com/sf deviceType",
    ]);
    expect(migration.filter!.spec.configs).toEqual([
      { resourceName: "intel.com_gtp", resourceFilters: [{ vendors: ["8086"] }] },
    ]);
  });

  it("drops values the device plugin never matches, and selectors left with none", () => {
    const migration = migrate([
      {
        resourceName: "a",
        selectors: [
          { vendors: ["8086", "15B3", "0x8086"], pfNames: ["ens1f0#0-1", "ENS1F0#4-5", "p0#x"] },
          { devices: ["XYZ"] },
        ],
      },
    ]);
    expect(migration.filter!.spec.configs[0]!.resourceFilters).toEqual([
      { vendors: ["8086"], pfNames: ["ens1f0#0-1"] },
    ]);
    expect(kinds(migration)).toEqual([
      "ignored intel.com/a selectors[0].vendors",
      "ignored intel.com/a selectors[0].vendors",
      "ignored intel.com/a selectors[0].pfNames",
      "ignored intel.com/a selectors[0].pfNames",
      "ignored intel.com/a selectors[1].devices",
      "ignored intel.com/a selectors[1]",
    ]);
  });

  it("leaves out a resource named twice, and one whose name this driver cannot carry", () => {
    const migration = migrate([
      { resourceName: "a", selectors: [{}] },
      { resourceName: "a", selectors: [{ vendors: ["8086"] }] },
      { resourceName: "a", resourcePrefix: "acme.com", selectors: [{}] },
      { resourceName: "x".repeat(60), selectors: [{}] },
    ]);
    expect(migration.resources.map((r) => r.extendedResourceName)).toEqual([
      "intel.com/a",
      "acme.com/a",
    ]);
    expect(kinds(migration)).toEqual([
      "ignored intel.com/a",
      `unsupported intel.com/${"x".repeat(60)} resourceName`,
    ]);
  });

  it("maps each NetworkAttachmentDefinition to the class of its resource, and reports the rest", () => {
    const migration = migrate(
      [{ resourceName: "intel_sriov_netdevice", selectors: [{}] }],
      [
        { namespace: "a", name: "net1", resourceName: "intel.com/intel_sriov_netdevice" },
        { namespace: "b", name: "net2", resourceName: "intel.com/gone" },
      ],
    );
    expect(migration.networks.map((n) => n.deviceClass)).toEqual([
      "intel-sriov-netdevice.intel.com",
      undefined,
    ]);
    expect(migration.findings).toEqual([
      {
        kind: "unsupported",
        subject: "NetworkAttachmentDefinition b/net2",
        field: "",
        message: "asks for intel.com/gone, which no migrated resource provides",
      },
    ]);
  });

  it("writes one YAML stream with the report as comments, and no filter when nothing is left", () => {
    const empty = migrate([{ resourceName: "fpga", deviceType: "accelerator" }]);
    expect(empty.filter).toBeUndefined();
    const stream = renderYamlStream(empty);
    expect(stream.split("\n").filter((line) => line !== "" && !line.startsWith("#"))).toEqual([]);
    expect(stream).toContain("# No resource could be carried over.");
    expect(stream).toContain("# - [unsupported] intel.com/fpga deviceType: accelerator");
  });
});
