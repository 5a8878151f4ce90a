import { describe, expect, it } from "vitest";
import { holdersByDevice } from "../cluster-inventory/claims.js";
import { claim, DRIVER, slicesOf, vf, wholePf } from "../cluster-inventory/testing/fixtures.js";
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

describe("explainClaim with whole PFs (shared counters)", () => {
  // Node c publishes eth0 whole beside its 4 VFs: one counter set, the PF takes all 4.
  const withPf = devicesByNode(
    slicesOf("c", [wholePf(0), ...[0, 1, 2, 3].map((id) => vf(0, id))]),
    DRIVER,
  );
  const onC = (request: Record<string, unknown>, held: unknown[]) => {
    const spec = readClaimSpec({
      devices: { requests: [{ name: "nic", exactly: { deviceClassName: DRIVER, ...request } }] },
    });
    if (typeof spec === "string") throw new Error(spec);
    return explainClaim({
      driver: DRIVER,
      claim: { kind: "ResourceClaim", namespace: "team", name: "net" },
      spec,
      classes: CLASS,
      devices: withPf,
      holders: holdersByDevice(held, DRIVER),
    }).nodes[0]!;
  };
  const isVf = { selectors: [{ cel: { expression: `${attr("deviceType")} == "vf"` } }] };
  const isPf = { selectors: [{ cel: { expression: `${attr("deviceType")} == "pf"` } }] };
  const pfName = wholePf(0).name;

  it("says a VF request is refused because the whole PF is allocated", () => {
    const result = onC(isVf, [claim("team", "whole", "c", [pfName], ["dpdk"])]);
    expect(result.verdict).toBe("does-not-fit");
    expect(result.requests[0]).toMatchObject({ matching: 4, usable: 0 });
    expect(result.requests[0]!.blockedByCounters).toHaveLength(4);
    expect(result.requests[0]!.blockedByCounters[0]).toEqual({
      device: nameOf(0, 0),
      counterSet: pfName,
      heldDevices: [pfName],
      holders: ["team/whole"],
    });
    expect(result.reason).toBe(
      `request nic: needs 1, 0 usable (4 match, 0 allocated to other claims, 4 held back by shared counters (${pfName} of counter set ${pfName} is allocated to team/whole), 0 tainted)`,
    );
    expect(result.hints[0]).toMatch(
      new RegExp(
        `^4 of the 4 matching devices cannot be allocated while ${pfName} .*a whole PF and its VFs are never allocated together`,
      ),
    );
    const text = formatExplanation({
      apiVersion: "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1",
      kind: "ClaimExplanation",
      driver: DRIVER,
      claim: { kind: "ResourceClaim", namespace: "team", name: "net" },
      problems: [],
      nodes: [result],
      fits: [],
    });
    expect(text).toContain("held back by shared counters 4, tainted 0, usable 0");
    expect(text).toContain(
      `    ${nameOf(0, 0)} held back: ${pfName} of counter set ${pfName} allocated to team/whole`,
    );
  });

  it("says a whole PF is refused while one of its VFs is allocated, and fits once none is", () => {
    const result = onC(isPf, [claim("team", "one", "c", [nameOf(0, 2)], ["web"])]);
    expect(result.requests[0]!.blockedByCounters).toEqual([
      { device: pfName, counterSet: pfName, heldDevices: [nameOf(0, 2)], holders: ["team/one"] },
    ]);
    expect(result.reason).toContain(`held back by shared counters (${nameOf(0, 2)} of counter set`);
    // The other VFs stay free: a VF takes one unit of the set, not all.
    expect(onC(isVf, [claim("team", "one", "c", [nameOf(0, 2)], ["web"])]).verdict).toBe("fits");
    expect(onC(isPf, []).reason).toBe(`fits: nic → ${pfName}`);
  });

  it("adds up one claim's own picks: a whole PF and one of its VFs never fit together", () => {
    const spec = readClaimSpec({
      devices: {
        requests: [
          { name: "pf", exactly: { deviceClassName: DRIVER, ...isPf } },
          { name: "vf", exactly: { deviceClassName: DRIVER, ...isVf } },
        ],
      },
    });
    if (typeof spec === "string") throw new Error(spec);
    const result = explainClaim({
      driver: DRIVER,
      claim: { kind: "ResourceClaim", namespace: "team", name: "both" },
      spec,
      classes: CLASS,
      devices: withPf,
      holders: new Map(),
    }).nodes[0]!;
    expect(result.verdict).toBe("does-not-fit");
    expect(result.requests.map((request) => request.usable)).toEqual([1, 4]);
  });
});
