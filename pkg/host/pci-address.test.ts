import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatPciAddress,
  fromRoutingId,
  isPciAddress,
  parsePciAddress,
  routingId,
  vfAddress,
} from "./pci-address.js";

describe("PCI addresses", () => {
  it("parses and formats the kernel spelling", () => {
    const address = parsePciAddress("0000:3b:02.1");
    expect(address).toEqual({ domain: 0, bus: 0x3b, device: 2, function: 1 });
    expect(formatPciAddress(address)).toBe("0000:3b:02.1");
  });

  it.each(["0000:3b:02", "0000:3B:02.1", "0000:3b:20.0", "0000:3b:02.8", "3b:02.1", ""])(
    "rejects %j with a message naming it",
    (text) => {
      expect(isPciAddress(text)).toBe(false);
      expect(() => parsePciAddress(text)).toThrow(text === "" ? /not a PCI address/ : text);
    },
  );

  it("places VFs by routing id: X710 port 0 (offset 16, stride 1)", () => {
    const pf = parsePciAddress("0000:3b:00.0");
    expect(formatPciAddress(vfAddress(pf, 16, 1, 0))).toBe("0000:3b:02.0");
    expect(formatPciAddress(vfAddress(pf, 16, 1, 9))).toBe("0000:3b:03.1");
  });

  it("places VFs by routing id: X540 (offset 128, stride 2)", () => {
    const pf = parsePciAddress("0000:03:00.1");
    expect(formatPciAddress(vfAddress(pf, 128, 2, 0))).toBe("0000:03:10.1");
    expect(formatPciAddress(vfAddress(pf, 128, 2, 1))).toBe("0000:03:10.3");
    expect(formatPciAddress(vfAddress(pf, 128, 2, 4))).toBe("0000:03:11.1");
  });

  it("crosses into the next bus when the VF range overflows", () => {
    const pf = parsePciAddress("0000:18:00.0");
    expect(formatPciAddress(vfAddress(pf, 16, 1, 255))).toBe("0000:19:01.7");
  });

  it("refuses routing ids beyond 16 bits", () => {
    expect(() => fromRoutingId(0, 0x10000)).toThrow(/16-bit/);
  });

  it("round-trips every address through its routing id", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (domain, id) => {
          const address = fromRoutingId(domain, id);
          expect(routingId(address)).toBe(id);
          expect(parsePciAddress(formatPciAddress(address))).toEqual(address);
        },
      ),
    );
  });
});
