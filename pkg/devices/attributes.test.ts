import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileResourceFilter } from "../filters/match.js";
import { deviceAttributes, vfDeviceFromAttributes } from "./attributes.js";
import type { VfDevice } from "./model.js";
import { overTheWire, resourceFilters, vfDevices, without } from "./testing/arbitraries.js";

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
