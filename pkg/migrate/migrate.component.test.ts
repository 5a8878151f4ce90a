import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileSelector } from "../claim-explain/cel.js";
import { celDevice } from "../claim-explain/input.js";
import { deviceAttributes } from "../devices/attributes.js";
import { pciAddressOf, selectDevices, type Device } from "../devices/model.js";
import {
  buildEmulatedHost,
  builtinProfiles,
  parseProfile,
  type ExpectedInventory,
  type HostProfile,
} from "../emulator/index.js";
import { applyResourceFilters } from "../filters/apply.js";
import { scanHostSysfs } from "../host/discovery.js";
import { HostPaths } from "../host/paths.js";
import {
  networkAttachmentsOf,
  objectsOfManifest,
  parseDevicePluginConfig,
  translateDevicePluginConfig,
  type DevicePluginConfig,
  type DpSelector,
  type Migration,
} from "./index.js";

/*
 * Proof on emulated hosts: for each of the device plugin's documented configurations
 * (testdata/, sources in testdata/README.md), the VFs each migrated resource offers (its
 * filter config's pool, as the real filter code makes it on the discovered devices,
 * narrowed by its DeviceClass's CEL, evaluated as the scheduler does) are exactly the VFs
 * the device plugin would put in that resource's pool. The device plugin's side is
 * `devicePluginPools` below, written from its README, not from the translation.
 */

const DRIVER = "sriovnetwork.openshift.io";
const PREFIX = "intel.com";
const TESTDATA = new URL("./testdata/", import.meta.url);
const read = (file: string) => fs.readFileSync(new URL(file, TESTDATA), "utf8");

const HOSTS: Record<string, HostProfile> = {
  "docs-host": parseProfile(read("docs-host.yaml"), "testdata/docs-host.yaml"),
  x710: builtinProfiles.x710,
  e810: builtinProfiles.e810,
  x540: builtinProfiles.x540,
  cx6dx: builtinProfiles.cx6dx,
  "igb-82576": builtinProfiles["igb-82576"],
};

/** Each documented configuration, with the ConfigMap key(s) that hold it. */
const EXAMPLES: { file: string; key?: string }[] = [
  { file: "readme-config.json" },
  { file: "readme-ranges.json" },
  { file: "deployments-configMap.yaml" },
  { file: "dpdk-configMap.yaml" },
  { file: "dpdk-configMap-all-nics.yaml" },
  { file: "dpdk-configMap-virt.yaml" },
  { file: "mlnx-dpdk-configMap.yaml" },
  { file: "rdma-configMap.yaml" },
  { file: "ddp-x700-configMap.yaml" },
  { file: "ddp-e800-configMap.yaml" },
  { file: "config-file-per-node-configMap.yaml", key: "sriov-node-0" },
  { file: "config-file-per-node-configMap.yaml", key: "sriov-node-1" },
];

interface Host {
  /** What the emulated kernel shows: the device plugin's view. */
  expected: ExpectedInventory;
  /** What this driver discovers and would publish. */
  devices: Device[];
}

const hosts = new Map<string, Host>();
const roots: string[] = [];

beforeAll(async () => {
  for (const [name, profile] of Object.entries(HOSTS)) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `migrate-${name}-`));
    roots.push(root);
    const { inventory } = await buildEmulatedHost({ root, profile });
    const discovered = scanHostSysfs(new HostPaths({ root }));
    expect(discovered.warnings).toEqual([]);
    // Whole PFs published too (--publish-pfs): filters may give them a resourceName, and
    // the classes must still offer VFs only, as the device plugin's pools hold them.
    const selection = selectDevices(discovered, false, true);
    expect(selection.pfs.length).toBeGreaterThan(0);
    hosts.set(name, { expected: inventory, devices: [...selection.devices, ...selection.pfs] });
  }
});
afterAll(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

// ---- The device plugin's selection, from its README ("Config parameters", "Workflow") ----

interface DpDevice {
  pciAddress: string;
  vendor: string;
  device: string;
  driver: string;
  pfName: string;
  rootDevice: string;
  /** The function's index on its PF. */
  index: number;
  /** netlink's name of the link type. */
  linkType: string;
  rdma: boolean;
}

/** The VFs the device plugin sees (a netDevice list: PFs with VFs configured are left out). */
function dpDevices(inventory: ExpectedInventory): DpDevice[] {
  return inventory.pfs.flatMap((pf) =>
    pf.vfs
      // This driver never publishes a VF whose netdev the host itself uses (documented);
      // the device plugin would pool it. Compare the rest.
      .filter((vf) => vf.netdev === undefined || !inventory.hostUsedNetdevs.includes(vf.netdev))
      .map((vf) => ({
        pciAddress: vf.pciAddress,
        vendor: pf.vfVendor,
        device: pf.vfDeviceID,
        driver: vf.driver,
        pfName: pf.netdev,
        rootDevice: pf.pciAddress,
        index: vf.vfID,
        linkType: pf.linkType === "ethernet" ? "ether" : "infiniband",
        rdma: vf.rdmaCapable,
      })),
  );
}

/** `<name>#0,2-7,9`: the first entry naming the PF (ignoring case) decides; a bad one never matches. */
function rangedMatches(entries: readonly string[], name: string, index: number): boolean {
  const entry = entries.find((e) => e.split("#")[0]!.toLowerCase() === name.toLowerCase());
  if (entry === undefined) return false;
  const parts = entry.split("#");
  if (parts.length === 1) return true;
  if (parts.length !== 2) return false;
  return parts[1]!.split(",").some((item) => {
    const bounds = item.split("-");
    if (bounds.length > 2 || bounds.some((b) => !/^\d+$/.test(b))) return false;
    const [first, last = first] = bounds.map(Number);
    return index >= first! && index <= last!;
  });
}

/** Every selector that is set narrows the list (AND); a list selector keeps devices with any value (OR). */
function dpSelects(selector: DpSelector, device: DpDevice): boolean {
  const list = (values: readonly string[] | undefined, value: string) =>
    values === undefined || values.length === 0 || values.includes(value);
  const ranged = (values: readonly string[] | undefined, key: string) =>
    values === undefined || values.length === 0 || rangedMatches(values, key, device.index);
  const none = (values: readonly string[] | undefined) =>
    values === undefined || values.length === 0;
  return (
    list(selector.vendors, device.vendor) &&
    list(selector.devices, device.device) &&
    list(selector.drivers, device.driver) &&
    list(selector.pciAddresses, device.pciAddress) &&
    ranged(selector.pfNames, device.pfName) &&
    ranged(selector.rootDevices, device.rootDevice) &&
    list(selector.linkTypes, device.linkType) &&
    (selector.isRdma !== true || device.rdma) &&
    // The emulated hosts have no ACPI indexes, DDP profiles, partition keys or vDPA
    // devices: such selectors keep nothing there.
    none(selector.acpiIndexes) &&
    none(selector.ddpProfiles) &&
    none(selector.pKeys) &&
    selector.vdpaType === undefined
  );
}

/**
 * Pools per `<prefix>/<name>`: resources in order, each one's selector objects in order; a
 * device goes to the first that selects it and is not offered to later ones. Only
 * netDevice resources hold VFs (accelerators and auxiliary devices are other devices).
 */
function devicePluginPools(config: DevicePluginConfig, devices: readonly DpDevice[]) {
  const taken = new Set<string>();
  const pools = new Map<string, Set<string>>();
  for (const resource of config.resourceList) {
    const name = `${resource.resourcePrefix ?? PREFIX}/${resource.resourceName}`;
    const pool = new Set<string>();
    if (resource.deviceType === "netDevice") {
      for (const selector of resource.selectors) {
        for (const device of devices) {
          if (taken.has(device.pciAddress) || !dpSelects(selector, device)) continue;
          taken.add(device.pciAddress);
          pool.add(device.pciAddress);
        }
      }
    }
    if (!pools.has(name)) pools.set(name, pool);
  }
  return pools;
}

// ---- What the migration offers on this driver ----

/** Per extended resource: the VFs its DeviceClass selects among what the filter publishes. */
function migratedPools(migration: Migration, devices: readonly Device[]) {
  const published = applyResourceFilters({
    nodeLabels: {},
    devices,
    filters: migration.filter === undefined ? [] : [migration.filter],
  });
  expect(published.rejected).toEqual([]);
  const pools = new Map<string, Set<string>>();
  for (const resource of migration.resources) {
    const deviceClass = migration.deviceClasses.find(
      (c) => c.metadata.name === resource.deviceClass,
    )!;
    const selectors = deviceClass.spec.selectors.map(({ cel }) => compileSelector(cel.expression));
    for (const selector of selectors) expect(selector.compileError).toBeUndefined();
    const pool = new Set<string>();
    for (const device of published.devices) {
      const { cel } = celDevice(DRIVER, deviceAttributes(device, DRIVER), {});
      const outcomes = selectors.map((selector) => selector.evaluate(cel!));
      if (outcomes.every((outcome) => outcome.result === "pass")) pool.add(pciAddressOf(device));
    }
    pools.set(resource.extendedResourceName, pool);
  }
  return pools;
}

function migrate(config: DevicePluginConfig): Migration {
  return translateDevicePluginConfig(config, [], {
    driverName: DRIVER,
    defaultPrefix: PREFIX,
    filterName: "sriov-device-plugin",
    namespace: "dra-sriov-driver",
    nodeSelector: {},
  });
}

/** Fields this driver cannot select on: their resource's pool may only be larger. */
const WIDENING = /selectors\[\d+\]\.(ddpProfiles|pKeys|acpiIndexes)$/;

const sorted = (pool: ReadonlySet<string> | undefined) => [...(pool ?? [])].sort();

describe.each(EXAMPLES)("device plugin example $file $key", ({ file, key }) => {
  const config = parseDevicePluginConfig(read(file), file, key);
  const migration = migrate(config);

  it.each(Object.keys(HOSTS))(
    "each migrated resource offers on the %s host the VFs the device plugin pools",
    (hostName) => {
      const host = hosts.get(hostName)!;
      const expected = devicePluginPools(config, dpDevices(host.expected));
      const actual = migratedPools(migration, host.devices);
      for (const [name, pool] of expected) {
        const widened = migration.findings.some(
          (f) => f.subject === name && WIDENING.test(`${f.subject} ${f.field}`),
        );
        if (!actual.has(name)) {
          // Left out (reported): the device plugin pools no VF of this host for it either.
          expect(sorted(pool), `${name} is left out but pools VFs`).toEqual([]);
        } else if (widened) {
          expect(sorted(actual.get(name)), `${name} (widened, reported)`).toEqual(
            expect.arrayContaining(sorted(pool)),
          );
        } else {
          expect(sorted(actual.get(name)), name).toEqual(sorted(pool));
        }
      }
    },
  );

  it("selects VFs on some host: the comparison is not between empty pools", () => {
    const total = [...hosts.values()].reduce(
      (sum, host) =>
        sum +
        [...migratedPools(migration, host.devices).values()].reduce((n, pool) => n + pool.size, 0),
      0,
    );
    expect(total).toBeGreaterThan(0);
  });
});

describe("documented examples this driver cannot take as they are", () => {
  it("refuses the vDPA example, which is not JSON (`[{ {`), naming where", () => {
    expect(() =>
      parseDevicePluginConfig(read("vdpa-configMap.yaml"), "vdpa-configMap.yaml"),
    ).toThrow(/vdpa-configMap.yaml config.json: not JSON or YAML: .*line 21/);
  });

  it("reports each selector of the README's example it cannot express exactly", () => {
    const migration = migrate(parseDevicePluginConfig(read("readme-config.json"), "readme"));
    expect(migration.findings.map((f) => `${f.kind} ${f.subject} ${f.field}`.trim())).toEqual([
      "approximate mellanox.com/mlnx_sriov_rdma selectors[0].isRdma",
      "approximate intel.com/infiniband_rdma_netdevs selectors[0].linkTypes",
      "approximate intel.com/infiniband_rdma_netdevs selectors[0].isRdma",
      "unsupported intel.com/ct6dx_vdpa_vhost selectors[0].vdpaType",
      "unsupported intel.com/ct6dx_vdpa_vhost selectors",
      "unsupported intel.com/intel_fpga deviceType",
      "unsupported nvidia.com/bf2_sf deviceType",
      "unsupported intel.com/intel_sriov_netdevice_additional_env additionalInfo",
      "approximate mellanox.com/mlnx_sriov_rdma",
      "approximate intel.com/infiniband_rdma_netdevs",
    ]);
  });

  it("refuses the documented NetworkAttachmentDefinitions, whose multi-line config strict YAML rejects", () => {
    for (const file of ["deployments-sriov-crd.yaml", "dpdk-crd-dpdk-net2000.yaml"]) {
      expect(() => objectsOfManifest(read(file), file)).toThrow(/not YAML: .*kubectl get/);
    }
  });

  it("maps a NetworkAttachmentDefinition to the class of the resource it names", () => {
    const nads = networkAttachmentsOf(
      [
        {
          kind: "NetworkAttachmentDefinition",
          metadata: {
            name: "sriov-dpdk-net2000",
            annotations: { "k8s.v1.cni.cncf.io/resourceName": "intel.com/intel_x710vfio" },
          },
        },
      ],
      "default",
    );
    const config = parseDevicePluginConfig(read("dpdk-configMap.yaml"), "dpdk");
    const migration = translateDevicePluginConfig(config, nads, {
      driverName: DRIVER,
      defaultPrefix: PREFIX,
      filterName: "f",
      namespace: "dra-sriov-driver",
      nodeSelector: {},
    });
    expect(migration.networks.map((n) => n.deviceClass)).toEqual(["intel-x710vfio.intel.com"]);
  });
});
