import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_ATTRIBUTE_STRING_LENGTH, MAX_ATTRIBUTES_PER_DEVICE } from "../devices/attributes.js";
import {
  deviceName,
  pfDeviceName,
  type Device,
  type PfDevice,
  type VfDevice,
} from "../devices/model.js";
import { formatPciAddress, fromRoutingId } from "../host/pci-address.js";
import {
  MAX_COUNTER_SETS_PER_SLICE,
  MAX_DEVICES_PER_SLICE,
  MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS,
  renderSlices,
  sliceName,
  type ResourceSlice,
} from "./render.js";
import { x710Pf } from "../devices/testing/fixtures.js";

const DRIVER = "sriovnetwork.openshift.io";
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function device(routing: number, overrides: Partial<VfDevice> = {}): VfDevice {
  const pciAddress = formatPciAddress(fromRoutingId(0, routing));
  return {
    name: deviceName(pciAddress),
    vf: {
      pciAddress,
      vfID: routing % 256,
      driver: "iavf",
      iommuGroup: routing,
      netdev: `ens1f0v${routing % 256}`,
      rdmaCapable: false,
    },
    pf: x710Pf(),
    ...overrides,
  };
}

const deviceSets = fc
  .uniqueArray(fc.integer({ min: 0, max: 0xffff }), { maxLength: 600 })
  .map((ids) => ids.map((id) => device(id)));

/** PF `bus`:00.0 published whole, with `vfCount` VFs (bus:02.0, ...), each a device too. */
function wholePf(bus: number, vfCount: number): Device[] {
  const hex = bus.toString(16).padStart(2, "0");
  const pf = x710Pf({ pciAddress: `0000:${hex}:00.0`, netdev: `eth${bus}`, numVfs: vfCount });
  const vfs = Array.from({ length: vfCount }, (_, vfID): VfDevice => {
    const pciAddress = `0000:${hex}:${(2 + (vfID >> 3)).toString(16).padStart(2, "0")}.${vfID & 7}`;
    return {
      ...device(0),
      name: deviceName(pciAddress),
      vf: { ...device(0).vf, pciAddress, vfID },
      pf,
    };
  });
  const whole: PfDevice = {
    name: pfDeviceName(pf.pciAddress),
    pf,
    vfAddresses: vfs.map((vf) => vf.vf.pciAddress),
  };
  return [whole, ...vfs];
}

/** Counter set name → [what its set holds, what the PF consumes, what all VFs consume together]. */
function counterBooks(slices: readonly ResourceSlice[]): Map<string, [number, number, number]> {
  const books = new Map<string, [number, number, number]>();
  for (const set of slices.flatMap((slice) => slice.spec.sharedCounters ?? [])) {
    books.set(set.name, [Number(set.counters["vfs"]!.value), 0, 0]);
  }
  for (const published of slices.flatMap((slice) => slice.spec.devices ?? [])) {
    for (const consumed of published.consumesCounters ?? []) {
      const book = books.get(consumed.counterSet);
      if (book === undefined) throw new Error(`${published.name} consumes from a missing set`);
      book[published.name.startsWith("pf-") ? 1 : 2] += Number(consumed.counters["vfs"]!.value);
    }
  }
  return books;
}

describe("renderSlices", () => {
  it("makes a whole PF and its VFs exclusive: one counter set per PF, each VF takes 1, the PF all", () => {
    const devices = [...wholePf(0x3b, 3), device(0x3c10)];
    const slices = renderSlices(devices, { driverName: DRIVER, nodeName: "n", generation: 1 });
    expect(
      slices.map((slice) => [slice.spec.sharedCounters?.length, slice.spec.devices?.length]),
    ).toEqual([
      [1, undefined],
      [undefined, 5],
    ]);
    expect(slices[0]!.spec.sharedCounters).toEqual([
      { name: "pf-0000-3b-00-0", counters: { vfs: { value: "3" } } },
    ]);
    const consumed = Object.fromEntries(
      slices[1]!.spec.devices!.map((d) => [d.name, d.consumesCounters]),
    );
    expect(consumed).toEqual({
      "pf-0000-3b-00-0": [{ counterSet: "pf-0000-3b-00-0", counters: { vfs: { value: "3" } } }],
      "0000-3b-02-0": [{ counterSet: "pf-0000-3b-00-0", counters: { vfs: { value: "1" } } }],
      "0000-3b-02-1": [{ counterSet: "pf-0000-3b-00-0", counters: { vfs: { value: "1" } } }],
      "0000-3b-02-2": [{ counterSet: "pf-0000-3b-00-0", counters: { vfs: { value: "1" } } }],
      // A VF of a PF not published whole shares nothing.
      "0000-3c-02-0": undefined,
    });
    expect(slices[1]!.spec.devices![0]!.attributes[`${DRIVER}/deviceType`]).toEqual({
      string: "pf",
    });
    // Without whole PFs: no counters, and the 128-device limit.
    const plain = renderSlices([device(0x3c10)], {
      driverName: DRIVER,
      nodeName: "n",
      generation: 1,
    });
    expect(plain[0]!.spec.sharedCounters).toBeUndefined();
    expect(plain[0]!.spec.devices![0]!.consumesCounters).toBeUndefined();
  });

  it("keeps the API's limits with counters: 8 sets per slice, 64 devices, every consumption of a set in the pool", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 0xfe }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 40 }),
        (buses, vfCount) => {
          const devices = buses.flatMap((bus) => wholePf(bus, vfCount));
          const slices = renderSlices(devices, {
            driverName: DRIVER,
            nodeName: "n",
            generation: 2,
          });
          for (const slice of slices) {
            expect(slice.spec.devices === undefined).not.toBe(
              slice.spec.sharedCounters === undefined,
            );
            expect(slice.spec.sharedCounters?.length ?? 0).toBeLessThanOrEqual(
              MAX_COUNTER_SETS_PER_SLICE,
            );
            expect(slice.spec.devices?.length ?? 0).toBeLessThanOrEqual(
              MAX_DEVICES_PER_SLICE_WITH_TAINTS_OR_COUNTERS,
            );
          }
          const names = slices.flatMap((slice) => (slice.spec.devices ?? []).map((d) => d.name));
          expect(names.sort()).toEqual(devices.map((d) => d.name).sort());
          const books = counterBooks(slices);
          expect(books.size).toBe(vfCount === 0 ? 0 : buses.length);
          for (const [total, pf, vfs] of books.values()) {
            expect([pf, vfs]).toEqual([total, total]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("renders a device's taints, and at most 64 devices per slice while any device has one", () => {
    const devices = Array.from({ length: 130 }, (_, index) => device(index));
    const taint = {
      key: `${DRIVER}/unhealthy`,
      value: "PFLinkDown",
      effect: "NoSchedule" as const,
      timeAdded: "2026-12-04T22:00:00Z",
    };
    const render = (taints: ReadonlyMap<string, readonly (typeof taint)[]>) =>
      renderSlices(devices, { driverName: DRIVER, nodeName: "node-a", generation: 1, taints });
    expect(render(new Map()).map((slice) => slice.spec.devices!.length)).toEqual([128, 2]);
    const tainted = render(new Map([[devices[129]!.name, [taint]]]));
    expect(tainted.map((slice) => slice.spec.devices!.length)).toEqual([64, 64, 2]);
    const rendered = tainted.flatMap((slice) => slice.spec.devices!);
    expect(rendered.filter((d) => d.taints !== undefined)).toEqual([
      expect.objectContaining({ name: devices[129]!.name, taints: [taint] }),
    ]);
    // An empty list is no taint: the slices stay as without one.
    expect(render(new Map([[devices[0]!.name, []]]))).toEqual(render(new Map()));
  });

  it("publishes every device exactly once, within the per-slice limit, in PCI order (slices read by name, as the scheduler does)", () => {
    fc.assert(
      fc.property(
        deviceSets,
        fc.integer({ min: 1, max: MAX_DEVICES_PER_SLICE }),
        (devices, limit) => {
          const slices = renderSlices(devices, {
            driverName: DRIVER,
            nodeName: "node-a",
            generation: 3,
            maxDevicesPerSlice: limit,
          });
          const names = [...slices]
            .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
            .flatMap((slice) => slice.spec.devices!.map((d) => d.name));
          expect([...names].sort()).toEqual(devices.map((d) => d.name).sort());
          expect(names).toEqual([...names].sort());
          expect(new Set(names).size).toBe(names.length);
          expect(slices.length).toBe(Math.max(1, Math.ceil(devices.length / limit)));
          for (const slice of slices) {
            expect(slice.spec.devices!.length).toBeLessThanOrEqual(limit);
            expect(slice.spec.pool).toEqual({
              name: "node-a",
              generation: 3,
              resourceSliceCount: slices.length,
            });
            expect(slice.metadata.name).toMatch(DNS_SUBDOMAIN);
          }
          expect(new Set(slices.map((s) => s.metadata.name)).size).toBe(slices.length);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("is deterministic whatever order devices arrive in", () => {
    fc.assert(
      fc.property(
        deviceSets.chain((devices) =>
          fc.tuple(
            fc.constant(devices),
            fc.shuffledSubarray(devices, { minLength: devices.length }),
          ),
        ),
        ([devices, shuffled]) => {
          const options = { driverName: DRIVER, nodeName: "n", generation: 1 };
          expect(renderSlices(shuffled, options)).toEqual(renderSlices(devices, options));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("keeps device names DNS labels and attributes within the API's limits", () => {
    const devices = [device(0x3b10, { resourceName: "eth0_resource" }), device(0xffff)];
    for (const slice of renderSlices(devices, {
      driverName: DRIVER,
      nodeName: "n",
      generation: 1,
    })) {
      for (const published of slice.spec.devices!) {
        expect(published.name).toMatch(DNS_LABEL);
        expect(Object.keys(published.attributes).length).toBeLessThanOrEqual(
          MAX_ATTRIBUTES_PER_DEVICE,
        );
        for (const [key, value] of Object.entries(published.attributes)) {
          expect(key).toMatch(/^[a-z0-9.-]+\/[A-Za-z][A-Za-z0-9_]*$/);
          if ("string" in value)
            expect(value.string.length).toBeLessThanOrEqual(MAX_ATTRIBUTE_STRING_LENGTH);
        }
      }
    }
  });

  it("publishes the documented attributes", () => {
    const [slice] = renderSlices([device(0x3b10, { resourceName: "eth0_resource" })], {
      driverName: DRIVER,
      nodeName: "n",
      generation: 1,
    });
    expect(slice!.spec.devices![0]).toEqual({
      name: "0000-3b-02-0",
      attributes: {
        "sriovnetwork.openshift.io/deviceType": { string: "vf" },
        "sriovnetwork.openshift.io/vendor": { string: "8086" },
        "sriovnetwork.openshift.io/deviceID": { string: "154c" },
        "sriovnetwork.openshift.io/pfDeviceID": { string: "1572" },
        "sriovnetwork.openshift.io/pciAddress": { string: "0000:3b:02.0" },
        "sriovnetwork.openshift.io/PFName": { string: "ens1f0" },
        "sriovnetwork.openshift.io/pfPciAddress": { string: "0000:3b:00.0" },
        "sriovnetwork.openshift.io/vfID": { int: 16 },
        "sriovnetwork.openshift.io/EswitchMode": { string: "legacy" },
        "sriovnetwork.openshift.io/linkType": { string: "ethernet" },
        "sriovnetwork.openshift.io/rdmaCapable": { bool: false },
        "sriovnetwork.openshift.io/driver": { string: "iavf" },
        "sriovnetwork.openshift.io/iommuGroup": { int: 0x3b10 },
        "sriovnetwork.openshift.io/numaNode": { int: 0 },
        "sriovnetwork.openshift.io/resourceName": { string: "eth0_resource" },
        "resource.kubernetes.io/pcieRoot": { string: "pci0000:3a" },
        "resource.kubernetes.io/pciBusID": { string: "0000:3b:02.0" },
        "k8s.cni.cncf.io/deviceID": { string: "0000:3b:02.0" },
        "k8s.cni.cncf.io/resourceName": { string: "eth0_resource" },
        "dra.net/numaNode": { int: 0 },
      },
    });
  });

  it("renders an empty pool as one empty slice", () => {
    const slices = renderSlices([], { driverName: DRIVER, nodeName: "n", generation: 1 });
    expect(slices).toHaveLength(1);
    expect(slices[0]!.spec.devices!).toEqual([]);
    expect(slices[0]!.spec.pool.resourceSliceCount).toBe(1);
  });

  it("refuses a per-slice limit the API would reject", () => {
    expect(() =>
      renderSlices([], {
        driverName: DRIVER,
        nodeName: "n",
        generation: 1,
        maxDevicesPerSlice: 129,
      }),
    ).toThrow(/1\.\.128/);
  });

  it("shortens slice names of very long node names to a valid, stable, distinct name", () => {
    const long = "a".repeat(250);
    const name = sliceName(long, DRIVER, 0);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(DNS_SUBDOMAIN);
    expect(sliceName(long, DRIVER, 0)).toBe(name);
    expect(sliceName("b" + long.slice(1), DRIVER, 0)).not.toBe(name);
  });
});
