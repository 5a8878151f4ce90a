import { describe, expect, it } from "vitest";
import type { JsonObject } from "../util/json.js";
import { parseResult, podInterfaceOf, resultAsVersion, type CniResult } from "./result.js";

// host-device with static IPAM, as Debian's plugins 1.1.1 print it.
const hostDeviceResult: JsonObject = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "net1", mac: "02:d6:47:db:00:41", sandbox: "/var/run/netns/pod" }],
  ips: [{ interface: 0, address: "10.9.0.5/24" }],
  dns: {},
};

describe("parseResult", () => {
  it("keeps the fields the spec defines", () => {
    expect(parseResult(hostDeviceResult, "1.0.0")).toEqual(hostDeviceResult);
    const full: JsonObject = {
      cniVersion: "1.0.0",
      interfaces: [
        { name: "cni0", mac: "00:11:22:33:44:55" },
        { name: "eth0", sandbox: "/ns" },
      ],
      ips: [{ address: "2001:db8::5/64", gateway: "2001:db8::1", interface: 1 }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }, { dst: "10.2.0.0/16" }],
      dns: {
        nameservers: ["10.1.0.1"],
        domain: "example.org",
        search: ["a"],
        options: ["ndots:2"],
      },
      someExtension: { kept: "in the raw result only" },
    };
    const known = { ...full };
    delete known["someExtension"];
    expect(parseResult(full, "1.0.0")).toEqual(known);
  });

  it("drops 0.4.0's ips[].version and takes a missing cniVersion from the configuration", () => {
    expect(
      parseResult(
        { ips: [{ version: "4", address: "10.0.0.2/24", gateway: "10.0.0.1" }] },
        "0.4.0",
      ),
    ).toEqual({ cniVersion: "0.4.0", ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }] });
  });

  it("names the field that is wrong", () => {
    const reason = (value: JsonObject | string) => {
      try {
        parseResult(value, "1.0.0");
      } catch (error) {
        return (error as Error).message;
      }
      return "valid";
    };
    expect(reason("text")).toBe("the result is not a JSON object");
    expect(reason({ cniVersion: 1 })).toBe("cniVersion 1 is not a spec version");
    expect(reason({ interfaces: {} })).toBe("interfaces is not a list");
    expect(reason({ interfaces: [{ mac: "x" }] })).toBe(
      "interfaces[0].name is missing or not a string",
    );
    expect(reason({ ips: [{ address: "10.0.0.2" }] })).toBe(
      'ips[0].address "10.0.0.2" is not an IP address in CIDR',
    );
    expect(reason({ ips: [{ address: "10.0.0.2/33" }] })).toMatch(/not an IP address in CIDR/);
    expect(reason({ ips: [{ address: "10.0.0.2/24", gateway: "gw" }] })).toBe(
      'ips[0].gateway "gw" is not an IP address',
    );
    expect(reason({ ips: [{ address: "10.0.0.2/24", interface: 0 }] })).toBe(
      "ips[0].interface 0 points past interfaces (0 listed)",
    );
    expect(reason({ ips: [{ address: "10.0.0.2/24", interface: -1 }] })).toBe(
      "ips[0].interface is not an index: -1",
    );
    expect(reason({ routes: [{ gw: "10.0.0.1" }] })).toBe(
      "routes[0].dst is missing or not a string",
    );
    expect(reason({ dns: { nameservers: [1] } })).toBe("dns.nameservers is not a list of strings");
  });
});

describe("resultAsVersion", () => {
  const v1: JsonObject = {
    cniVersion: "1.0.0",
    interfaces: [{ name: "net1" }],
    ips: [
      { address: "10.0.0.2/24", interface: 0 },
      { address: "fd00::2/64", interface: 0 },
    ],
    custom: true,
  };

  it("adds ips[].version for 0.3.x/0.4.0 and removes it for 1.x", () => {
    const v04 = resultAsVersion(v1, "0.4.0");
    expect(v04).toEqual({
      ...v1,
      cniVersion: "0.4.0",
      ips: [
        { version: "4", address: "10.0.0.2/24", interface: 0 },
        { version: "6", address: "fd00::2/64", interface: 0 },
      ],
    });
    expect(resultAsVersion(v04, "1.0.0")).toEqual(v1);
    expect(resultAsVersion(v1, "1.0.0")).toEqual(v1);
  });

  it("leaves its input alone", () => {
    const copy = structuredClone(v1);
    resultAsVersion(v1, "0.3.1");
    expect(v1).toEqual(copy);
  });
});

describe("podInterfaceOf", () => {
  it("takes the sandbox interface of that name and the IPs that point at it", () => {
    const result: CniResult = {
      cniVersion: "1.0.0",
      interfaces: [
        { name: "net1", mac: "aa:aa:aa:aa:aa:aa" },
        { name: "net1", mac: "02:00:00:00:00:01", sandbox: "/var/run/netns/pod" },
        { name: "net2", sandbox: "/var/run/netns/pod" },
      ],
      ips: [
        { address: "10.0.0.1/24", interface: 0 },
        { address: "10.0.0.5/24", interface: 1 },
        { address: "fd00::5/64", interface: 1 },
        { address: "10.1.0.5/24", interface: 2 },
        { address: "10.2.0.5/24" },
      ],
    };
    expect(podInterfaceOf(result, "net1")).toEqual({
      interfaceName: "net1",
      ips: ["10.0.0.5/24", "fd00::5/64"],
      hardwareAddress: "02:00:00:00:00:01",
    });
    expect(podInterfaceOf(result, "net2")).toEqual({ interfaceName: "net2", ips: ["10.1.0.5/24"] });
  });

  it("falls back to an interface without sandbox, and to every IP when none is listed", () => {
    expect(
      podInterfaceOf(
        {
          cniVersion: "1.0.0",
          interfaces: [{ name: "net1", mac: "02:00:00:00:00:01" }],
          ips: [{ address: "10.0.0.5/24", interface: 0 }],
        },
        "net1",
      ),
    ).toEqual({
      interfaceName: "net1",
      ips: ["10.0.0.5/24"],
      hardwareAddress: "02:00:00:00:00:01",
    });
    expect(
      podInterfaceOf({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.5/24" }] }, "net1"),
    ).toEqual({ interfaceName: "net1", ips: ["10.0.0.5/24"] });
  });

  it("knows no address of an interface the result does not name", () => {
    expect(
      podInterfaceOf(
        {
          cniVersion: "1.0.0",
          interfaces: [{ name: "eth0", sandbox: "/ns" }],
          ips: [{ address: "10.0.0.5/24", interface: 0 }],
        },
        "net1",
      ),
    ).toEqual({ interfaceName: "net1", ips: [] });
  });
});
