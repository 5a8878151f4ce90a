import { describe, expect, it } from "vitest";
import type { HostUsedNetdev } from "./layout.js";
import {
  expandIpv6,
  ipv4Hex,
  linkLocal,
  procNetIfInet6,
  procNetIpv6Route,
  procNetRoute,
} from "./proc-net.js";

const vf: HostUsedNetdev = {
  pciAddress: "0000:3b:0a.7",
  netdev: "ens1f1v7",
  mac: "02:ed:00:00:3b:57",
  ifindex: 19,
  ipv4: "198.18.1.1",
  ipv6: "2001:2:0:1::1",
};

describe("/proc/net formats", () => {
  it("route: header and rows padded to 127 characters, addresses as little-endian hex", () => {
    const lines = procNetRoute([vf]).split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe("");
    expect(lines[0]).toBe(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT".padEnd(
        127,
      ),
    );
    expect(lines[1]).toBe(
      "ens1f1v7\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0".padEnd(127),
    );
  });

  it("route without host-used netdevs is the header alone", () => {
    expect(procNetRoute([]).split("\n")).toHaveLength(2);
  });

  it("if_inet6: loopback, then a global and a link-local address per netdev", () => {
    expect(procNetIfInet6([vf])).toBe(
      "00000000000000000000000000000001 01 80 10 80       lo\n" +
        "20010002000000010000000000000001 13 40 00 80 ens1f1v7\n" +
        "fe8000000000000000ed00fffe003b57 13 40 20 80 ens1f1v7\n",
    );
  });

  it("ipv6_route: ten fields per line, the prefix route first", () => {
    const lines = procNetIpv6Route([vf]).trimEnd().split("\n");
    expect(lines[0]).toBe(
      "20010002000000010000000000000000 40 00000000000000000000000000000000 00 " +
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001 ens1f1v7",
    );
    expect(lines.every((line) => line.trim().split(/\s+/).length === 10)).toBe(true);
    expect(lines.filter((line) => line.endsWith(" lo"))).toHaveLength(2);
  });

  it("helpers", () => {
    expect(ipv4Hex("192.0.2.0")).toBe("000200C0");
    expect(expandIpv6("::1")).toBe(`${"0".repeat(31)}1`);
    expect(expandIpv6("fd00::2")).toBe("fd000000000000000000000000000002");
    expect(linkLocal("02:fc:00:00:00:01")).toBe("fe8000000000000000fc00fffe000001");
  });
});
