import { describe, expect, it } from "vitest";
import { holdersByDevice } from "../cluster-inventory/claims.js";
import { claim, DRIVER, slicesOf, vf } from "../cluster-inventory/testing/fixtures.js";
import { explainClaim, type ClaimExplanation } from "./explain.js";
import { formatExplanation } from "./format.js";
import { devicesByNode, readClaimSpec } from "./input.js";

const CLASS = new Map([[DRIVER, [`device.driver == "${DRIVER}"`]]]);
const attr = (name: string) => `device.attributes["${DRIVER}"].${name}`;

/** Node a: PF 0 with VFs 0-3, PF 1 with VFs 0-1, all resourceName "fast"; node b: 4 VFs, none. */
const slices = [
  ...slicesOf(
    "a",
    [0, 1, 2, 3].map((id) => vf(0, id, "fast")).concat([vf(1, 0, "fast"), vf(1, 1, "fast")]),
  ),
  ...slicesOf(
    "b",
    [0, 1, 2, 3].map((id) => vf(2, id)),
  ),
];
const devices = devicesByNode(slices, DRIVER);
const nameOf = (pf: number, id: number) => vf(pf, id).name;

function explain(
  request: Record<string, unknown>,
  options: { constraints?: unknown[]; held?: unknown[]; classes?: Map<string, string[]> } = {},
): ClaimExplanation {
  const spec = readClaimSpec({
    devices: {
      requests: [{ name: "vf", exactly: { deviceClassName: DRIVER, ...request } }],
      constraints: options.constraints ?? [],
    },
  });
  if (typeof spec === "string") throw new Error(spec);
  return explainClaim({
    driver: DRIVER,
    claim: { kind: "ResourceClaim", namespace: "team", name: "net" },
    spec,
    classes: options.classes ?? CLASS,
    devices,
    holders: holdersByDevice(options.held ?? [], DRIVER),
  });
}

const node = (explanation: ClaimExplanation, name: string) =>
  explanation.nodes.find((entry) => entry.name === name)!;

describe("explainClaim", () => {
  it("fits where the selectors hold, naming the devices it would get", () => {
    const result = explain({
      selectors: [{ cel: { expression: `${attr("resourceName")} == "fast"` } }],
    });
    expect(node(result, "a")).toMatchObject({
      verdict: "fits",
      reason: `fits: vf → ${nameOf(0, 0)}`,
    });
    expect(result.fits).toEqual(["a"]);
  });

  it("a typo in an attribute name: a runtime error on the first device, and the name meant", () => {
    const result = explain({
      selectors: [{ cel: { expression: `${attr("resourceNmae")} == "fast"` } }],
    });
    expect(result.fits).toEqual([]);
    const a = node(result, "a");
    expect(a.verdict).toBe("does-not-fit");
    expect(a.reason).toContain(`CEL runtime error on device ${nameOf(0, 0)}`);
    expect(a.requests[0]!.selectors[1]).toMatchObject({
      passed: 0,
      failures: [{ kind: "missing-attribute", message: "no such key: resourceNmae", count: 6 }],
    });
    expect(a.hints).toEqual([
      `no device publishes ${DRIVER}/resourceNmae; did you mean "resourceName"?`,
    ]);
  });

  it("an unguarded read of resourceName fails the node whose VFs have none, and names the guard", () => {
    const result = explain({
      selectors: [{ cel: { expression: `${attr("resourceName")} == "fast"` } }],
    });
    const b = node(result, "b");
    expect(b.verdict).toBe("does-not-fit");
    expect(b.hints[0]).toContain(`"resourceName" in device.attributes["${DRIVER}"] && `);
    expect(b.hints[0]).toContain("kubectl sriov filters");
  });

  it("a guarded selector on a node no filter selected: the value is published elsewhere", () => {
    const expression = `"resourceName" in device.attributes["${DRIVER}"] && ${attr("resourceName")} == "fast"`;
    const b = node(explain({ selectors: [{ cel: { expression } }] }), "b");
    expect(b.reason).toBe("request vf: no device passes its selectors");
    expect(b.hints).toEqual([
      `no device on b has ${DRIVER}/resourceName == "fast"; published on: a (no SriovResourceFilter giving "fast" selects b: kubectl sriov filters)`,
    ]);
  });

  it("a literal of the wrong type: never true, with the published type", () => {
    const a = node(
      explain({ selectors: [{ cel: { expression: `${attr("vfID")} == "1"` } }] }),
      "a",
    );
    expect(a.requests[0]!.matching).toBe(0);
    expect(a.hints).toEqual([
      `the selector \`${attr("vfID")} == "1"\` is never true (${DRIVER}/vfID is published as int, compared with a string)`,
    ]);
  });

  it("matchAttribute on the PF: groups per PF, and whether one has `count` free VFs", () => {
    const constraints = [{ matchAttribute: `${DRIVER}/pfPciAddress` }];
    expect(node(explain({ count: 4 }, { constraints }), "a").verdict).toBe("fits");
    const five = node(explain({ count: 5 }, { constraints }), "a");
    expect(five.verdict).toBe("does-not-fit");
    expect(five.constraints[0]).toMatchObject({
      needed: 5,
      groups: [
        { value: "0000:3b:00.0", devices: 4 },
        { value: "0000:3c:00.0", devices: 2 },
      ],
    });
    expect(five.reason).toContain("the most on this node is 4 (0000:3b:00.0)");
  });

  it("devices allocated to other claims are not usable, and their holders are named", () => {
    const held = [
      claim(
        "other",
        "taken",
        "b",
        [0, 1, 2, 3].map((id) => nameOf(2, id)),
        ["p"],
      ),
    ];
    const b = node(explain({}, { held }), "b");
    expect(b.verdict).toBe("does-not-fit");
    expect(b.requests[0]).toMatchObject({ matching: 4, usable: 0 });
    expect(b.hints[0]).toContain("allocated to other claims (other/taken)");
  });

  it("firstAvailable: the first subrequest that fits, in order", () => {
    const spec = readClaimSpec({
      devices: {
        requests: [
          {
            name: "vf",
            firstAvailable: [
              { name: "four", deviceClassName: DRIVER, count: 5 },
              { name: "one", deviceClassName: DRIVER },
            ],
          },
        ],
        constraints: [{ matchAttribute: `${DRIVER}/pfPciAddress` }],
      },
    });
    if (typeof spec === "string") throw new Error(spec);
    const result = explainClaim({
      driver: DRIVER,
      claim: { kind: "ResourceClaim", namespace: "team", name: "net" },
      spec,
      classes: CLASS,
      devices,
      holders: new Map(),
    });
    expect(node(result, "a").reason).toBe(`fits: vf/one → ${nameOf(0, 0)}`);
  });

  it("a missing DeviceClass fails everywhere, said once", () => {
    const result = explain({}, { classes: new Map() });
    expect(result.problems).toEqual([
      `request vf: DeviceClass ${DRIVER} does not exist; the scheduler cannot allocate the claim on any node`,
    ]);
    expect(result.fits).toEqual([]);
  });

  it("prints the per-node story as text", () => {
    const text = formatExplanation(
      explain({ selectors: [{ cel: { expression: `${attr("resourceNmae")} == "fast"` } }] }),
    );
    expect(text).toContain("NODE a  6 devices  DOES NOT FIT: CEL runtime error");
    expect(text).toContain("      6 attribute missing (runtime error): no such key: resourceNmae");
    expect(text).toContain(
      'likely fix: no device publishes sriovnetwork.openshift.io/resourceNmae; did you mean "resourceName"?',
    );
    expect(text).toMatch(/Fits on no node \(2 publish devices/);
  });
});
