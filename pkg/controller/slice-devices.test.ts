import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import { deviceAttributes } from "../devices/attributes.js";
import { deviceName, pfDeviceName, type PfDevice, type VfDevice } from "../devices/model.js";
import { compileResourceFilter } from "../filters/match.js";
import type { KubeObject } from "../../lib/kube/client.js";
import { renderSlices } from "../slices/render.js";
import { publishedDevicesByNode, vfDeviceFromAttributes } from "./slice-devices.js";

const DRIVER = "sriovnetwork.openshift.io";

const pciAddress = fc
  .tuple(
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: 0x1f }),
    fc.integer({ min: 0, max: 7 }),
  )
  .map(([domain, bus, device, fn]) => `${hex(domain, 4)}:${hex(bus, 2)}:${hex(device, 2)}.${fn}`);

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/** Small value pools, so that generated filters match generated devices often. */
const vendor = fc.constantFrom("8086", "15b3", "15B3");
const deviceId = fc.constantFrom("154c", "1018", "101e");
const pfName = fc.constantFrom("eth0", "eth1", "ens1f0");
const driver = fc.constantFrom("iavf", "mlx5_core", "vfio-pci", "");
const numa = fc.integer({ min: -1, max: 3 });

const vfDevices: fc.Arbitrary<VfDevice> = fc
  .record({
    pciAddress,
    pfPciAddress: pciAddress,
    vfID: fc.integer({ min: 0, max: 255 }),
    driver,
    iommuGroup: fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }),
    pfNetdev: fc.option(pfName, { nil: undefined }),
    vfVendor: vendor,
    vfDeviceID: deviceId,
    pfDeviceID: deviceId,
    numaNode: numa,
    pcieRoot: fc.constantFrom("pci0000:3a", "pci0000:00"),
    linkType: fc.constantFrom("ethernet", "infiniband", "unknown" as const),
    eswitchMode: fc.constantFrom("legacy", "switchdev" as const),
    rdmaCapable: fc.boolean(),
    resourceName: fc.option(fc.constantFrom("intel_sriov", "fast"), { nil: undefined }),
  })
  .map((r) => {
    const device: VfDevice = {
      name: deviceName(r.pciAddress),
      vf: {
        pciAddress: r.pciAddress,
        vfID: r.vfID,
        driver: r.driver,
        iommuGroup: r.iommuGroup,
        netdev: `vf${r.vfID}`,
        rdmaCapable: false,
      },
      pf: {
        pciAddress: r.pfPciAddress,
        netdev: r.pfNetdev,
        vendor: "8086",
        deviceID: r.pfDeviceID,
        driver: "i40e",
        vfVendor: r.vfVendor,
        vfDeviceID: r.vfDeviceID,
        numaNode: r.numaNode,
        pcieRoot: r.pcieRoot,
        linkType: r.linkType,
        eswitchMode: r.eswitchMode,
        rdmaCapable: r.rdmaCapable,
        totalVfs: 64,
        numVfs: 8,
      },
    };
    if (r.resourceName !== undefined) device.resourceName = r.resourceName;
    return device;
  });

const values = <T>(item: fc.Arbitrary<T>) =>
  fc.option(fc.array(item, { maxLength: 3 }), { nil: undefined });

const resourceFilters: fc.Arbitrary<ResourceFilter> = fc.record(
  {
    vendors: values(vendor),
    devices: values(deviceId),
    pfNames: values(
      fc.oneof(
        pfName,
        fc.tuple(pfName, fc.nat(8), fc.nat(8)).map(([n, a, b]) => `${n}#${a}-${a + b}`),
      ),
    ),
    pciAddresses: values(pciAddress),
    rootDevices: values(pciAddress),
    numaNodes: values(numa.map(String)),
    drivers: values(driver.filter((d) => d !== "")),
  },
  { requiredKeys: [] },
);

/** What the API server hands back: JSON, so no undefined members and no shared objects. */
function overTheWire<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function without<T>(attributes: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(attributes).filter(([name]) => name !== key));
}

function readBack(device: VfDevice): VfDevice {
  const read = vfDeviceFromAttributes(
    device.name,
    overTheWire(deviceAttributes(device, DRIVER)),
    DRIVER,
  );
  if (typeof read === "string") throw new Error(read);
  return read;
}

describe("vfDeviceFromAttributes", () => {
  it("reads back every published attribute: publishing the result gives the same attributes", () => {
    fc.assert(
      fc.property(vfDevices, (device) => {
        expect(deviceAttributes(readBack(device), DRIVER)).toEqual(
          deviceAttributes(device, DRIVER),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("gives filter matching the same answer as the device the node discovered", () => {
    fc.assert(
      fc.property(vfDevices, resourceFilters, (device, filter) => {
        const matches = compileResourceFilter(filter);
        expect(matches(readBack(device))).toBe(matches(device));
      }),
      { numRuns: 1000 },
    );
  });

  it("names the attributes it needs and did not get", () => {
    const device = fc.sample(vfDevices, { numRuns: 1, seed: 1 })[0]!;
    const attributes = {
      ...without(deviceAttributes(device, DRIVER), `${DRIVER}/vfID`),
      [`${DRIVER}/numaNode`]: { string: "0" },
    };
    expect(vfDeviceFromAttributes(device.name, attributes, DRIVER)).toBe(
      `missing or mistyped attributes: ${DRIVER}/vfID, ${DRIVER}/numaNode`,
    );
  });

  it("reads attributes under the configured driver name only", () => {
    const device = fc.sample(vfDevices, { numRuns: 1, seed: 2 })[0]!;
    const attributes = deviceAttributes(device, "other.example.com");
    expect(vfDeviceFromAttributes(device.name, attributes, DRIVER)).toMatch(/^missing/);
  });
});

describe("publishedDevicesByNode", () => {
  const sample = (seed: number, count: number) => {
    const devices = fc.sample(vfDevices, { numRuns: count, seed });
    // Unique PCI addresses, as on a real node.
    return [...new Map(devices.map((d) => [d.vf.pciAddress, d])).values()];
  };

  const slices = (nodeName: string, devices: VfDevice[], generation: number) =>
    overTheWire(
      renderSlices(devices, { driverName: DRIVER, nodeName, generation, maxDevicesPerSlice: 4 }),
    ) as unknown as KubeObject[];

  it("rebuilds each node's devices from its rendered slices", () => {
    const a = sample(3, 10);
    const b = sample(4, 3);
    const published = publishedDevicesByNode(
      [...slices("node-a", a, 1), ...slices("node-b", b, 7)],
      DRIVER,
    );
    expect(published.unreadable).toEqual([]);
    expect([...published.byNode.keys()].sort()).toEqual(["node-a", "node-b"]);
    for (const [node, devices] of [
      ["node-a", a],
      ["node-b", b],
    ] as const) {
      const rebuilt = published.byNode.get(node)!;
      const byName = (list: readonly VfDevice[]) =>
        [...list]
          .sort((x, y) => (x.name < y.name ? -1 : 1))
          .map((d) => deviceAttributes(d, DRIVER));
      expect(byName(rebuilt)).toEqual(byName(devices));
    }
  });

  it("keeps only the newest generation of a pool while an update is half done", () => {
    const old = sample(5, 8);
    const current = old.slice(0, 2);
    const published = publishedDevicesByNode(
      [...slices("node-a", old, 3), ...slices("node-a", current, 4)],
      DRIVER,
    );
    expect(
      published.byNode
        .get("node-a")!
        .map((d) => d.name)
        .sort(),
    ).toEqual(current.map((d) => d.name).sort());
  });

  it("leaves whole PFs and their counter slices out of the VF tree, and reports none of them unreadable", () => {
    const vfs = sample(6, 4);
    const { pf } = vfs[0]!;
    const whole: PfDevice = { name: pfDeviceName(pf.pciAddress), pf, vfAddresses: [] };
    const rendered = overTheWire(
      renderSlices([whole, ...vfs], { driverName: DRIVER, nodeName: "node-a", generation: 1 }),
    ) as unknown as KubeObject[];
    const published = publishedDevicesByNode(rendered, DRIVER);
    expect(published.unreadable).toEqual([]);
    expect(
      published.byNode
        .get("node-a")!
        .map((d) => d.name)
        .sort(),
    ).toEqual(vfs.map((d) => d.name).sort());
  });

  it("gives a node that publishes an empty pool no devices", () => {
    const published = publishedDevicesByNode(slices("node-a", [], 1), DRIVER);
    expect(published.byNode.get("node-a")).toEqual([]);
  });

  it("ignores other drivers' slices and slices not tied to a node", () => {
    const devices = sample(6, 2);
    const foreign = renderSlices(devices, {
      driverName: "gpu.example.com",
      nodeName: "node-a",
      generation: 1,
    });
    const networkAttached = overTheWire(slices("node-b", devices, 1)).map((slice) => {
      const spec = { ...(slice as unknown as { spec: Record<string, unknown> }).spec };
      delete spec["nodeName"];
      return { ...slice, spec } as KubeObject;
    });
    const published = publishedDevicesByNode(
      [...(overTheWire(foreign) as unknown as KubeObject[]), ...networkAttached],
      DRIVER,
    );
    expect(published.byNode.size).toBe(0);
  });

  it("reports devices it cannot read and keeps the rest", () => {
    const [good, bad] = sample(7, 2);
    const rendered = slices("node-a", [good!, bad!], 1) as unknown as {
      metadata: { name: string };
      spec: { devices: { name: string; attributes: Record<string, unknown> }[] };
    }[];
    const badDevice = rendered[0]!.spec.devices.find((d) => d.name === bad!.name)!;
    badDevice.attributes = without(badDevice.attributes, `${DRIVER}/pciAddress`);
    const published = publishedDevicesByNode(rendered as unknown as KubeObject[], DRIVER);
    expect(published.byNode.get("node-a")!.map((d) => d.name)).toEqual([good!.name]);
    expect(published.unreadable).toEqual([
      {
        slice: rendered[0]!.metadata.name,
        node: "node-a",
        device: bad!.name,
        problem: `missing or mistyped attributes: ${DRIVER}/pciAddress`,
      },
    ]);
  });

  it("reads each device's taints and which node publishes each pool, skipping malformed taints", () => {
    const [a, b] = sample(8, 2);
    const taint = {
      key: `${DRIVER}/unhealthy`,
      value: "LinkDown",
      effect: "NoSchedule" as const,
      timeAdded: "2026-01-01T00:00:00Z",
    };
    const rendered = overTheWire(
      renderSlices([a!, b!], {
        driverName: DRIVER,
        nodeName: "node-a",
        generation: 1,
        taints: new Map([[a!.name, [taint]]]),
      }),
    ) as unknown as { spec: { devices: { name: string; taints?: unknown[] }[] } }[];
    const other = rendered[0]!.spec.devices.find((d) => d.name === b!.name)!;
    other.taints = [{ key: 7, effect: "NoSchedule" }, "x", { key: "k".repeat(400), effect: "E" }];
    const published = publishedDevicesByNode(rendered as unknown as KubeObject[], DRIVER);
    expect(published.taints.get("node-a")).toEqual(
      new Map([[a!.name, [{ key: taint.key, value: "LinkDown", effect: "NoSchedule" }]]]),
    );
    expect(published.poolNodes).toEqual(new Map([["node-a", "node-a"]]));
    expect(published.byNode.get("node-a")).toHaveLength(2);
  });
});
