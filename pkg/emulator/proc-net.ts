import type { HostUsedNetdev } from "./layout.js";

/*
 * Pure: `/proc/net/route`, `/proc/net/if_inet6` and `/proc/net/ipv6_route` in the kernel's
 * text formats (net/ipv4/fib_trie.c, net/ipv6/addrconf.c, net/ipv6/route.c) for a host whose
 * only addresses are loopback and those of its host-used VF netdevs.
 */

/** fib_route_seq_show pads every line, the header included, to 127 characters. */
const ROUTE_LINE_WIDTH = 127;
const ROUTE_HEADER =
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
const RTF_UP = 0x0001;
/** RTF_UP | RTF_NONEXTHOP | RTF_LOCAL as shown for an address's own /128 local route. */
const RTF_LOCAL_ROUTE = 0x80200001;
/** RTF_REJECT | RTF_NONEXTHOP: the default "unreachable" route on lo. */
const RTF_UNREACHABLE = 0x00200200;
const IFA_F_PERMANENT = 0x80;
const SCOPE_GLOBAL = 0x00;
const SCOPE_HOST = 0x10;
const SCOPE_LINK = 0x20;
const IPV6_ZERO = "0".repeat(32);
const IPV6_LOOPBACK = `${"0".repeat(31)}1`;

/** One connected /24 route per host-used netdev. */
export function procNetRoute(netdevs: readonly HostUsedNetdev[]): string {
  const rows = netdevs.map((netdev) => {
    const network = netdev.ipv4.replace(/\.\d+$/, ".0");
    return [
      netdev.netdev,
      ipv4Hex(network),
      ipv4Hex("0.0.0.0"),
      hex(RTF_UP, 4).toUpperCase(),
      "0",
      "0",
      "0",
      ipv4Hex("255.255.255.0"),
      "0",
      "0",
      "0",
    ].join("\t");
  });
  return [ROUTE_HEADER, ...rows].map((line) => line.padEnd(ROUTE_LINE_WIDTH) + "\n").join("");
}

/** Loopback, then a global and a link-local address per host-used netdev. */
export function procNetIfInet6(netdevs: readonly HostUsedNetdev[]): string {
  const line = (address: string, ifindex: number, prefix: number, scope: number, name: string) =>
    `${address} ${hex(ifindex, 2)} ${hex(prefix, 2)} ${hex(scope, 2)} ${hex(IFA_F_PERMANENT, 2)} ${name.padStart(8)}\n`;
  return [
    line(IPV6_LOOPBACK, 1, 128, SCOPE_HOST, "lo"),
    ...netdevs.flatMap((netdev) => [
      line(expandIpv6(netdev.ipv6), netdev.ifindex, 64, SCOPE_GLOBAL, netdev.netdev),
      line(linkLocal(netdev.mac), netdev.ifindex, 64, SCOPE_LINK, netdev.netdev),
    ]),
  ].join("");
}

/**
 * Per host-used netdev: its /64 prefix route, fe80::/64, the local /128 routes of both
 * addresses and the multicast ff00::/8 route; plus loopback's own entries.
 */
export function procNetIpv6Route(netdevs: readonly HostUsedNetdev[]): string {
  const line = (
    destination: string,
    prefix: number,
    metric: number,
    refcnt: number,
    flags: number,
    device: string,
  ) =>
    `${destination} ${hex(prefix, 2)} ${IPV6_ZERO} 00 ${IPV6_ZERO} ${hex(metric, 8)} ${hex(refcnt, 8)} 00000000 ${hex(flags, 8)} ${device.padStart(8)}\n`;
  const connected = (destination: string, prefix: number, device: string) =>
    line(destination, prefix, 256, 1, RTF_UP, device);
  const local = (address: string, device: string) =>
    line(address, 128, 0, 2, RTF_LOCAL_ROUTE, device);
  return [
    ...netdevs.flatMap((netdev) => {
      const global = expandIpv6(netdev.ipv6);
      return [
        connected(`${global.slice(0, 16)}${"0".repeat(16)}`, 64, netdev.netdev),
        connected(`fe80${"0".repeat(28)}`, 64, netdev.netdev),
      ];
    }),
    local(IPV6_LOOPBACK, "lo"),
    ...netdevs.flatMap((netdev) => [
      local(expandIpv6(netdev.ipv6), netdev.netdev),
      local(linkLocal(netdev.mac), netdev.netdev),
    ]),
    ...netdevs.map((netdev) => connected(`ff${"0".repeat(30)}`, 8, netdev.netdev)),
    line(IPV6_ZERO, 0, 0xffffffff, 1, RTF_UNREACHABLE, "lo"),
  ].join("");
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, "0");
}

/** The kernel prints a __be32 with %08X on a little-endian host: bytes in reverse order. */
export function ipv4Hex(address: string): string {
  return address
    .split(".")
    .reverse()
    .map((octet) => hex(Number(octet), 2))
    .join("")
    .toUpperCase();
}

/** 32 hex digits without colons, as `%pi6` prints; accepts one `::`. */
export function expandIpv6(address: string): string {
  const [head = "", tail] = address.split("::");
  const groups = (text: string) => (text === "" ? [] : text.split(":"));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((group) => group.padStart(4, "0")).join("");
}

/** fe80::/64 with the EUI-64 interface id of a MAC (universal/local bit flipped, ff:fe inserted). */
export function linkLocal(mac: string): string {
  const bytes = mac.split(":").map((byte) => parseInt(byte, 16));
  bytes[0] = bytes[0]! ^ 0x02;
  const eui64 = [...bytes.slice(0, 3), 0xff, 0xfe, ...bytes.slice(3)];
  return `fe80${"0".repeat(12)}${eui64.map((byte) => hex(byte, 2)).join("")}`;
}
