import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  deviceName,
  isPfDevice,
  pfDeviceName,
  type Device,
  type VfDevice,
} from "../devices/model.js";
import { x710Pf } from "../devices/testing/fixtures.js";
import { publishOrder, type PublishOrder } from "./order.js";
import { renderSlices, type ResourceSlice } from "./render.js";

/** VF `vfID` of the PF on `bus` (PCI `bus:02.0` onwards), optionally with a resourceName. */
function vf(bus: number, vfID: number, resourceName?: string): VfDevice {
  const hex = bus.toString(16).padStart(2, "0");
  const pciAddress = `0000:${hex}:${(2 + (vfID >> 3)).toString(16).padStart(2, "0")}.${vfID & 7}`;
  return {
    name: deviceName(pciAddress),
    vf: {
      pciAddress,
      vfID,
      driver: "iavf",
      iommuGroup: vfID,
      netdev: undefined,
      rdmaCapable: false,
    },
    pf: x710Pf({ pciAddress: `0000:${hex}:00.0`, netdev: `eth${bus}` }),
    ...(resourceName === undefined ? {} : { resourceName }),
  };
}

/** A host: PFs on distinct buses, each with its own number of VFs, each VF with a resourceName from a few. */
const hosts = fc
  .uniqueArray(fc.integer({ min: 0x10, max: 0xf0 }), { minLength: 1, maxLength: 9 })
  .chain((buses) =>
    fc.tuple(
      ...buses.map((bus) =>
        fc
          .array(fc.constantFrom(undefined, "a", "b"), { maxLength: 40 })
          .map((names) => names.map((name, vfID) => vf(bus, vfID, name))),
      ),
    ),
  )
  .map((pfs) => pfs.flat());

/** Devices in the order the scheduler meets them: slices by name, devices as listed. */
function schedulerOrder(slices: readonly ResourceSlice[]): string[] {
  return [...slices]
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
    .flatMap((slice) => (slice.spec.devices ?? []).map((device) => device.name));
}

/** For each prefix of `order`: max − min of VFs taken per PF, over the PFs that had one left. */
function worstImbalance(order: readonly VfDevice[]): number {
  const total = new Map<string, number>();
  for (const device of order)
    total.set(device.pf.pciAddress, (total.get(device.pf.pciAddress) ?? 0) + 1);
  const taken = new Map([...total.keys()].map((pf) => [pf, 0]));
  let worst = 0;
  for (const device of order) {
    taken.set(device.pf.pciAddress, taken.get(device.pf.pciAddress)! + 1);
    const counts = [...taken].map(([pf, count]) => ({ count, left: total.get(pf)! - count }));
    const max = Math.max(...counts.map((c) => c.count));
    // A PF with none left cannot be behind by choice; only PFs still offering VFs count.
    const open = counts.filter((c) => c.left > 0).map((c) => c.count);
    if (open.length > 0) worst = Math.max(worst, max - Math.min(...open));
  }
  return worst;
}

const names = (devices: readonly Device[]) => devices.map((device) => device.name);

describe("publishOrder", () => {
  it("spread: every prefix of each resourceName's VFs takes from each PF at most one more than from another", () => {
    fc.assert(
      fc.property(hosts, (devices) => {
        const ordered = publishOrder(devices, "spread");
        for (const resourceName of [undefined, "a", "b"]) {
          const group = ordered.filter(
            (device): device is VfDevice =>
              !isPfDevice(device) && device.resourceName === resourceName,
          );
          expect(worstImbalance(group)).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("pack: by PCI address, one PF after the other", () => {
    const devices = [vf(0x3c, 1), vf(0x3b, 1), vf(0x3c, 0), vf(0x3b, 0)];
    expect(names(publishOrder(devices, "pack"))).toEqual(
      names([vf(0x3b, 0), vf(0x3b, 1), vf(0x3c, 0), vf(0x3c, 1)]),
    );
    expect(names(publishOrder(devices, "spread"))).toEqual(
      names([vf(0x3b, 0), vf(0x3c, 0), vf(0x3b, 1), vf(0x3c, 1)]),
    );
  });

  it("spread lists whole PFs first; pack right before their VFs (PCI order)", () => {
    const pf = (bus: number): Device => {
      const whole = x710Pf({ pciAddress: `0000:${bus.toString(16)}:00.0` });
      return { name: pfDeviceName(whole.pciAddress), pf: whole, vfAddresses: [] };
    };
    const devices = [vf(0x3c, 0), pf(0x3c), vf(0x3b, 0), pf(0x3b)];
    expect(names(publishOrder(devices, "spread"))).toEqual(
      names([pf(0x3b), pf(0x3c), vf(0x3b, 0), vf(0x3c, 0)]),
    );
    expect(names(publishOrder(devices, "pack"))).toEqual(
      names([pf(0x3b), vf(0x3b, 0), pf(0x3c), vf(0x3c, 0)]),
    );
  });

  it("depends on the devices only, never on the order they were discovered in", () => {
    fc.assert(
      fc.property(
        hosts.chain((devices) =>
          fc.tuple(
            fc.constant(devices),
            fc.shuffledSubarray(devices, { minLength: devices.length }),
          ),
        ),
        fc.constantFrom<PublishOrder>("spread", "pack"),
        ([devices, shuffled], order) => {
          expect(names(publishOrder(shuffled, order))).toEqual(names(publishOrder(devices, order)));
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("renderSlices in publish order", () => {
  it("hands the scheduler the devices in publish order however many slices (names sort -10 before -2)", () => {
    fc.assert(
      fc.property(
        hosts,
        fc.integer({ min: 1, max: 16 }),
        fc.constantFrom<PublishOrder>("spread", "pack"),
        (devices, limit, order) => {
          const slices = renderSlices(devices, {
            driverName: "sriovnetwork.openshift.io",
            nodeName: "node-a",
            generation: 1,
            maxDevicesPerSlice: limit,
            order,
          });
          expect(schedulerOrder(slices)).toEqual(names(publishOrder(devices, order)));
        },
      ),
      { numRuns: 100 },
    );
  });
});
