import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileResourceFilter } from "../filters/match.js";
import {
  deviceAttributes,
  deviceFromAttributes,
  MAX_ATTRIBUTES_PER_DEVICE,
  pfDeviceFromAttributes,
  vfDeviceFromAttributes,
} from "./attributes.js";
import type { VfDevice } from "./model.js";
import {
  overTheWire,
  pfDevices,
  resourceFilters,
  vfDevices,
  without,
} from "./testing/arbitraries.js";
import { x710Vf } from "./testing/fixtures.js";

const DRIVER = "sriovnetwork.openshift.io";

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

describe("deviceAttributes with a SriovResourcePolicy's attributes", () => {
  const device: VfDevice = x710Vf(0, 1);

  it("publishes them beside the driver's own, never over an attribute discovery sets", () => {
    const published = deviceAttributes(
      {
        ...device,
        resourceName: "pool_a",
        attributes: {
          [`${DRIVER}/vendor`]: { string: "ffff" },
          "resource.kubernetes.io/pcieRoot": { string: "elsewhere" },
          "k8s.cni.cncf.io/resourceName": { string: "multus_name" },
          "example.com/firmware": { version: "1.2.3" },
        },
      },
      DRIVER,
    );
    expect(published[`${DRIVER}/vendor`]).toEqual({ string: "8086" });
    expect(published["resource.kubernetes.io/pcieRoot"]).toEqual({ string: "pci0000:3a" });
    expect(published[`${DRIVER}/resourceName`]).toEqual({ string: "pool_a" });
    expect(published["k8s.cni.cncf.io/resourceName"]).toEqual({ string: "multus_name" });
    expect(published["example.com/firmware"]).toEqual({ version: "1.2.3" });
  });

  it("stays within the API's attribute limit, keeping the first names in order", () => {
    const attributes = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [
        `example.com/a${String(i).padStart(2, "0")}`,
        { int: i },
      ]),
    );
    const published = deviceAttributes({ ...device, attributes }, DRIVER);
    const own = Object.keys(deviceAttributes(device, DRIVER)).length;
    expect(Object.keys(published)).toHaveLength(MAX_ATTRIBUTES_PER_DEVICE);
    expect(published["example.com/a00"]).toEqual({ int: 0 });
    expect(published[`example.com/a${MAX_ATTRIBUTES_PER_DEVICE - own - 1}`]).toBeDefined();
    expect(published[`example.com/a${MAX_ATTRIBUTES_PER_DEVICE - own}`]).toBeUndefined();
  });
});

describe("pfDeviceFromAttributes", () => {
  it("reads back a whole PF: publishing the result gives the same attributes, and filters match alike", () => {
    fc.assert(
      fc.property(pfDevices, resourceFilters, (device, filter) => {
        const published = overTheWire(deviceAttributes(device, DRIVER));
        const read = deviceFromAttributes(device.name, published, DRIVER);
        if (typeof read === "string") throw new Error(read);
        expect(deviceAttributes(read, DRIVER)).toEqual(deviceAttributes(device, DRIVER));
        const matches = compileResourceFilter(filter);
        expect(matches(read)).toBe(matches(device));
      }),
      { numRuns: 500 },
    );
  });

  it("names what a PF lacks, and reads a device without deviceType as a VF", () => {
    const pf = fc.sample(pfDevices, { numRuns: 1, seed: 3 })[0]!;
    const attributes = without(deviceAttributes(pf, DRIVER), `${DRIVER}/numVfs`);
    expect(pfDeviceFromAttributes(pf.name, attributes, DRIVER)).toBe(
      `missing or mistyped attributes: ${DRIVER}/numVfs`,
    );
    const vf = fc.sample(vfDevices, { numRuns: 1, seed: 4 })[0]!;
    const old = without(deviceAttributes(vf, DRIVER), `${DRIVER}/deviceType`);
    expect(deviceFromAttributes(vf.name, old, DRIVER)).toMatchObject({
      name: vf.name,
      vf: { pciAddress: vf.vf.pciAddress, vfID: vf.vf.vfID },
    });
  });
});
