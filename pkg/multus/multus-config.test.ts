import { describe, expect, it } from "vitest";
import { isMultusConfig } from "./multus-config.js";

describe("isMultusConfig", () => {
  it("finds thin Multus, thick Multus (multus-shim) and Multus inside a list", () => {
    expect(
      isMultusConfig('{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus"}'),
    ).toBe(true);
    expect(
      isMultusConfig('{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim"}'),
    ).toBe(true);
    expect(isMultusConfig('{"name":"x","plugins":[{"type":"multus"},{"type":"portmap"}]}')).toBe(
      true,
    );
  });

  it("passes over other configurations and what is not JSON", () => {
    expect(isMultusConfig('{"name":"cbr0","plugins":[{"type":"bridge"},{"type":"portmap"}]}')).toBe(
      false,
    );
    expect(isMultusConfig('{"name":"x","plugins":[null, 3]}')).toBe(false);
    expect(isMultusConfig("not json")).toBe(false);
    expect(isMultusConfig("null")).toBe(false);
  });
});
