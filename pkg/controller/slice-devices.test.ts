import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deviceAttributes } from "../devices/attributes.js";
import { pfDeviceName, type PfDevice, type VfDevice } from "../devices/model.js";
import { overTheWire, vfDevices, without } from "../devices/testing/arbitraries.js";
import type { KubeObject } from "../../lib/kube/client.js";
import { renderSlices } from "../slices/render.js";
import { allDevicesByNode, publishedDevicesByNode } from "./slice-devices.js";

const DRIVER = "sriovnetwork.openshift.io";

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

  it("reads whole PFs apart from the VFs, each with the VFs of it the node publishes, and skips counter slices", () => {
    const vfs = sample(6, 4).map((vf, index) => ({ ...vf, vf: { ...vf.vf, vfID: 10 - index } }));
    const { pf } = vfs[0]!;
    const ofPf = vfs
      .filter((vf) => vf.pf.pciAddress === pf.pciAddress)
      .sort((a, b) => a.vf.vfID - b.vf.vfID)
      .map((vf) => vf.vf.pciAddress);
    const whole: PfDevice = { name: pfDeviceName(pf.pciAddress), pf, vfAddresses: ofPf };
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
    const [read] = published.pfsByNode.get("node-a")!;
    expect(read!.name).toBe(whole.name);
    expect(read!.vfAddresses).toEqual(ofPf);
    expect(deviceAttributes(read!, DRIVER)).toEqual(deviceAttributes(whole, DRIVER));
    expect(
      allDevicesByNode(published)
        .get("node-a")!
        .map((d) => d.name),
    ).toEqual([...published.byNode.get("node-a")!.map((d) => d.name), whole.name]);
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
