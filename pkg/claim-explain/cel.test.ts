import { describe, expect, it } from "vitest";
import { compileSelector, type CelDevice } from "./cel.js";
import { compareQuantity, parseQuantity, parseSemver } from "./cel-library.js";

const D = "sriovnetwork.openshift.io";

function device(attributes: Record<string, Record<string, unknown>> = {}): CelDevice {
  return {
    driver: D,
    allowMultipleAllocations: false,
    attributes: new Map(
      Object.entries(attributes).map(([domain, values]) => [
        domain,
        new Map(Object.entries(values)) as Map<string, never>,
      ]),
    ),
    capacity: new Map([[D, new Map([["bandwidth", parseQuantity("10Gi")!]])]]),
  };
}

const vf = device({
  [D]: { resourceName: "fast", vfID: 3n, PFName: "ens1f0", rdmaCapable: false },
  "resource.kubernetes.io": { pcieRoot: "pci0000:3a" },
});
const run = (expression: string, on: CelDevice = vf) => compileSelector(expression).evaluate(on);

describe("compileSelector: the scheduler's CEL semantics on one device", () => {
  it.each([
    [`device.driver == "${D}"`, "pass"],
    [`device.attributes["${D}"].resourceName == "fast"`, "pass"],
    [`device.attributes["${D}"].vfID >= 2 && device.attributes["${D}"].vfID < 4`, "pass"],
    [`device.attributes["${D}"].PFName.startsWith("ens1")`, "pass"],
    [`device.attributes["${D}"].PFName.upperAscii() == "ENS1F0"`, "pass"],
    [`device.attributes["${D}"].PFName.replace("f0", "f1") == "ens1f1"`, "pass"],
    [`cel.bind(d, device.attributes["${D}"], d.vfID == 3 && !d.rdmaCapable)`, "pass"],
    [`device.capacity["${D}"].bandwidth.isGreaterThan(quantity("1G"))`, "pass"],
    [`semver("1.10.0").isGreaterThan(semver("1.9.9"))`, "pass"],
    [`[1, 2, 3].sum() == 6 && [3, 1].min() == 1`, "pass"],
    [`device.attributes["${D}"].?missing.orValue("z") == "z"`, "pass"],
    [`device.attributes["${D}"].PFName.find("[0-9]+") == "1"`, "pass"],
    [`device.attributes["${D}"].PFName.findAll("[0-9]") == ["1", "0"]`, "pass"],
    // Heterogeneous equality: an int compared with a string is false, not an error.
    [`device.attributes["${D}"].vfID == "3"`, "fail"],
  ])("%s → %s", (expression, result) => {
    expect(run(expression).result).toBe(result);
  });

  it("a missing attribute is a runtime error naming the key, as the scheduler's", () => {
    expect(run(`device.attributes["${D}"].resourceNmae == "fast"`)).toEqual({
      result: "fail",
      kind: "missing-attribute",
      message: "no such key: resourceNmae",
      key: "resourceNmae",
    });
  });

  it("a domain the device does not publish reads as an empty map (has/in guards are false)", () => {
    expect(run(`device.attributes["gpu.example.com"].model == "x"`)).toMatchObject({
      kind: "missing-attribute",
      key: "model",
    });
    expect(run(`"model" in device.attributes["gpu.example.com"]`)).toMatchObject({ kind: "false" });
    expect(run(`has(device.attributes["gpu.example.com"].model)`)).toMatchObject({ kind: "false" });
    expect(run(`"gpu.example.com" in device.attributes`)).toMatchObject({ kind: "false" });
  });

  it("has() and `in` guard an attribute only some devices publish", () => {
    const bare = device({ [D]: { vfID: 1n } });
    const guarded = `has(device.attributes["${D}"].resourceName) && device.attributes["${D}"].resourceName == "fast"`;
    expect(run(guarded).result).toBe("pass");
    expect(run(guarded, bare)).toMatchObject({ result: "fail", kind: "false" });
    const inGuard = `"resourceName" in device.attributes["${D}"] && device.attributes["${D}"].resourceName == "fast"`;
    expect(run(inGuard, bare)).toMatchObject({ kind: "false" });
    // `false && error` is false and `error || true` is true, as in CEL.
    expect(run(`device.attributes["${D}"].resourceName == "x" || true`, bare).result).toBe("pass");
  });

  it("an operator on the wrong type is a type mismatch (a runtime error)", () => {
    expect(run(`device.attributes["${D}"].PFName > 2`)).toMatchObject({
      result: "fail",
      kind: "type-mismatch",
    });
  });

  it("a result that is not a bool is a runtime error", () => {
    expect(run(`device.attributes["${D}"].PFName`)).toMatchObject({ kind: "runtime-error" });
  });

  it("reports what it cannot evaluate instead of guessing, and what does not compile", () => {
    const unsupported = compileSelector(`isIP(device.attributes["${D}"].PFName)`);
    expect(unsupported.unsupported).toMatch(/isIP/);
    expect(unsupported.evaluate(vf).result).toBe("unknown");
    expect(compileSelector(`device.driver ==`).compileError).toBeDefined();
    const twoVariables = compileSelector(`device.attributes["${D}"].all(k, v, v != "")`);
    expect(twoVariables).toMatchObject({ unsupported: expect.stringMatching(/two-variable/) });
    expect(twoVariables.compileError).toBeUndefined();
  });

  it("lists the attributes read and the literal comparisons", () => {
    const compiled = compileSelector(
      `device.attributes["${D}"].vfID == "3" && "resourceName" in device.attributes["${D}"]`,
    );
    expect(compiled.references).toEqual(
      expect.arrayContaining([
        { map: "attributes", domain: D, name: "vfID" },
        { map: "attributes", domain: D, name: "resourceName" },
      ]),
    );
    expect(compiled.comparisons).toEqual([
      { map: "attributes", domain: D, name: "vfID", op: "==", literal: "3" },
    ]);
  });
});

describe("semver and quantity", () => {
  it("parses strict SemVer 2.0.0 only", () => {
    expect(parseSemver("1.2.3-rc.1+build")).toMatchObject({ major: 1n, pre: ["rc", "1"] });
    for (const bad of ["v1.2.3", "1.2", "01.2.3", "1.2.3-01"])
      expect(parseSemver(bad)).toBeUndefined();
  });

  it("orders pre-releases below releases", () => {
    expect(run(`semver("1.0.0-alpha").isLessThan(semver("1.0.0"))`).result).toBe("pass");
    expect(run(`semver("1.0.0-alpha.2").compareTo(semver("1.0.0-alpha.10")) == -1`).result).toBe(
      "pass",
    );
  });

  it("compares quantities exactly across suffixes", () => {
    expect(compareQuantity(parseQuantity("1Ki")!, parseQuantity("1024")!)).toBe(0);
    expect(compareQuantity(parseQuantity("1500m")!, parseQuantity("1.5")!)).toBe(0);
    expect(compareQuantity(parseQuantity("1e3")!, parseQuantity("1k")!)).toBe(0);
    expect(parseQuantity("1.5.5")).toBeUndefined();
    expect(run(`quantity("2Gi").sub(quantity("1Gi")) == quantity("1Gi")`).result).toBe("pass");
  });
});
