import { describe, expect, it } from "vitest";
import {
  MAX_ANNOTATION_BYTES,
  MAX_NETWORKS,
  NetworksAnnotationError,
  parseNetworksAnnotation,
} from "./networks-annotation.js";

const parse = (text: string) => parseNetworksAnnotation(text, "team-a");
const refused = (text: string) => {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(NetworksAnnotationError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${text}`);
};

describe("the networks annotation, comma form", () => {
  it("takes name, namespace/name and @interface, in the pod's namespace by default", () => {
    expect(parse("net1, other/net2@eth5 ,net3@data")).toEqual([
      { namespace: "team-a", name: "net1", notCarried: [] },
      { namespace: "other", name: "net2", interface: "eth5", notCarried: [] },
      { namespace: "team-a", name: "net3", interface: "data", notCarried: [] },
    ]);
  });

  it("keeps repeated networks: one VF each", () => {
    expect(parse("net1,net1").map((n) => n.name)).toEqual(["net1", "net1"]);
  });

  it("refuses what Multus refuses: two slashes or ats, parts that are not DNS labels", () => {
    expect(refused("a/b/c")).toMatch(/more than one "\/"/);
    expect(refused("a@b@c")).toMatch(/more than one "@"/);
    expect(refused("Net1")).toMatch(/"Net1" is not a DNS label/);
    expect(refused("ns/net_1")).toMatch(/not a DNS label/);
    expect(refused("net1@eth0.5")).toMatch(/"eth0.5" is not a DNS label/);
  });

  it("refuses an empty entry: no network to attach", () => {
    expect(refused("a,,b")).toMatch(/entry 2 names no network/);
    expect(refused("")).toMatch(/entry 1 names no network/);
  });
});

describe("the networks annotation, JSON form", () => {
  it("takes name, namespace, interface, ips and mac, and lists fields it does not carry out", () => {
    const text = JSON.stringify([
      {
        name: "sriov-net",
        namespace: "other",
        interface: "eth5",
        ips: ["10.56.217.10/24", "fd00::10/64"],
        mac: "02:00:00:aa:bb:01",
        "default-route": ["10.56.217.1"],
        "cni-args": { foo: "bar" },
      },
      { name: "plain" },
    ]);
    expect(parse(text)).toEqual([
      {
        namespace: "other",
        name: "sriov-net",
        interface: "eth5",
        ips: ["10.56.217.10/24", "fd00::10/64"],
        mac: "02:00:00:aa:bb:01",
        notCarried: ["default-route", "cni-args"],
      },
      { namespace: "team-a", name: "plain", notCarried: [] },
    ]);
  });

  it("treats empty strings and nulls as absent, as Go's omitempty fields are", () => {
    expect(parse('[{"name":"n","namespace":"","interface":"","mac":null,"ips":[]}]')).toEqual([
      { namespace: "team-a", name: "n", notCarried: [] },
    ]);
  });

  it("checks every value as a VfConfig does, naming the annotation's field", () => {
    expect(refused('[{"name":"n","ips":["10.0.0.1"]}]')).toMatch(/entry 1 \(n\): ips\[0\]/);
    expect(refused('[{"name":"n","mac":"01:00:5e:00:00:01"}]')).toMatch(/mac/); // multicast
    expect(refused('[{"name":"n","interface":"a/b"}]')).toMatch(/interface/);
    expect(refused('[{"name":"n","interface":"sixteen-bytes-xx"}]')).toMatch(/interface/);
    expect(refused('[{"name":"Bad_Name"}]')).toMatch(/name/);
    expect(refused('[{"name":"n","namespace":"a.b"}]')).toMatch(/namespace/);
  });

  it("refuses what is not a list of network objects", () => {
    expect(refused('{"name":"n"}')).toMatch(/not a list/);
    expect(refused('["n"]')).toMatch(/entry 1 is not an object/);
    expect(refused('[{"name":1}]')).toMatch(/name is not a string/);
    expect(refused('[{"name":"n","ips":"10.0.0.1/24"}]')).toMatch(/ips is not a list/);
    expect(refused('[{"name":"n"}')).toMatch(/not valid JSON/);
    expect(refused('[{"namespace":"x"}]')).toMatch(/names no network/);
  });

  it("is bounded: size and number of networks", () => {
    expect(refused(`[${'{"name":"n"},'.repeat(MAX_NETWORKS)}{"name":"n"}]`)).toMatch(
      new RegExp(`more than ${MAX_NETWORKS}`),
    );
    expect(
      refused(
        Array(MAX_NETWORKS + 1)
          .fill("n")
          .join(","),
      ),
    ).toMatch(/more than/);
    expect(refused(`[{"name":"${"a".repeat(MAX_ANNOTATION_BYTES)}"}]`)).toMatch(/longer than/);
    expect(refused("[".repeat(MAX_ANNOTATION_BYTES / 2))).toMatch(/not valid JSON/);
  });
});
