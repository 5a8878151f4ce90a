import { describe, expect, it } from "vitest";
import { assignInterfaceNames, interfaceNamesInPods } from "./interface-names.js";
import { preparedClaim, preparedVf } from "./testing/fixtures.js";

const req = (request: string, ifName?: string) => ({ request, ifName });

function prepared(name: string, podUids: string[], ifNames: string[]) {
  return preparedClaim({ name, podUids, devices: ifNames.map((ifName) => preparedVf({ ifName })) });
}

describe("assignInterfaceNames", () => {
  it("numbers defaults from 1 with the prefix, around explicit and taken names", () => {
    expect(assignInterfaceNames([req("a"), req("b")], new Map(), "net")).toEqual(["net1", "net2"]);
    expect(
      assignInterfaceNames(
        [req("a"), req("b", "net2"), req("c"), req("d")],
        new Map([["net1", "ns/other"]]),
        "net",
      ),
    ).toEqual(["net3", "net2", "net4", "net5"]);
    expect(assignInterfaceNames([req("a")], new Map(), "sriov")).toEqual(["sriov1"]);
  });

  it("refuses an explicit name twice in the claim or already used in the pod", () => {
    expect(() =>
      assignInterfaceNames([req("a", "data"), req("b", "data")], new Map(), "net"),
    ).toThrow(/ifName "data" is set for two VFs of the claim \(requests a and b\)/);
    expect(() =>
      assignInterfaceNames([req("a", "net1")], new Map([["net1", "ns/first"]]), "net"),
    ).toThrow('ifName "net1" (request a) is already used in the pod by claim ns/first');
  });

  it("refuses a default name longer than the kernel allows", () => {
    expect(() => assignInterfaceNames([req("a")], new Map(), "averylongprefix")).toThrow(
      /default interface name "averylongprefix1" must be at most 15 bytes.*shorten the driver's interface prefix/,
    );
  });
});

describe("interfaceNamesInPods", () => {
  it("collects names of other claims sharing a pod, not of the claim itself or of other pods", () => {
    const claims = new Map([
      ["uid-a", prepared("a", ["pod-1"], ["net1", "net2"])],
      ["uid-b", prepared("b", ["pod-2", "pod-3"], ["net1", "data"])],
      ["uid-self", prepared("self", ["pod-1"], ["net9"])],
    ]);
    expect(interfaceNamesInPods(claims, ["pod-1"], "uid-self")).toEqual(
      new Map([
        ["net1", "ns/a"],
        ["net2", "ns/a"],
      ]),
    );
    expect([...interfaceNamesInPods(claims, ["pod-3"], "uid-self").keys()]).toEqual([
      "net1",
      "data",
    ]);
    expect(interfaceNamesInPods(claims, ["pod-9"], "uid-self").size).toBe(0);
  });
});
