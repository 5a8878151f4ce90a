import { isIP } from "node:net";
import { isJsonObject, type JsonObject, type JsonValue } from "../util/json.js";
import { NO_IP_VERSION_FIELD, atLeast, parseVersion } from "./version.js";

export interface CniInterface {
  name: string;
  mac?: string;
  /** Network namespace path for interfaces in the sandbox; absent or "" on the host. */
  sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR, e.g. `10.0.0.5/24`. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/**
 * A plugin's success result (spec "Success" type), as the executor hands it to callers: the
 * fields it knows, validated; 0.3.x/0.4.0 `ips[].version` is dropped (the address says it).
 */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** A result that fails validation; the reason names the field. */
export class InvalidResultError extends Error {
  override readonly name = "InvalidResultError";
}

/**
 * Validates a plugin's ADD output. A missing `cniVersion` is the configuration's (as
 * libcni reads it); anything the spec types differently is refused with the field's path.
 */
export function parseResult(value: JsonValue, configVersion: string): CniResult {
  if (!isJsonObject(value)) throw new InvalidResultError("the result is not a JSON object");
  const cniVersion = value["cniVersion"] ?? configVersion;
  if (typeof cniVersion !== "string" || parseVersion(cniVersion) === null) {
    throw new InvalidResultError(`cniVersion ${JSON.stringify(cniVersion)} is not a spec version`);
  }
  const result: CniResult = { cniVersion };
  const interfaces = optionalList(value, "interfaces", "interfaces", parseInterface);
  if (interfaces !== undefined) result.interfaces = interfaces;
  const ips = optionalList(value, "ips", "ips", (entry, where) =>
    parseIp(entry, where, interfaces?.length ?? 0),
  );
  if (ips !== undefined) result.ips = ips;
  const routes = optionalList(value, "routes", "routes", parseRoute);
  if (routes !== undefined) result.routes = routes;
  if (value["dns"] !== undefined) result.dns = parseDns(value["dns"]);
  return result;
}

function parseInterface(entry: JsonValue, where: string): CniInterface {
  const object = requireObject(entry, where);
  const parsed: CniInterface = { name: requireString(object, "name", where) };
  const mac = optionalString(object, "mac", where);
  if (mac !== undefined) parsed.mac = mac;
  const sandbox = optionalString(object, "sandbox", where);
  if (sandbox !== undefined) parsed.sandbox = sandbox;
  return parsed;
}

function parseIp(entry: JsonValue, where: string, interfaceCount: number): CniIpConfig {
  const object = requireObject(entry, where);
  const address = requireString(object, "address", where);
  if (!isCidr(address)) {
    throw new InvalidResultError(`${where}.address "${address}" is not an IP address in CIDR`);
  }
  const parsed: CniIpConfig = { address };
  const gateway = optionalString(object, "gateway", where);
  if (gateway !== undefined && gateway !== "") {
    if (isIP(gateway) === 0) {
      throw new InvalidResultError(`${where}.gateway "${gateway}" is not an IP address`);
    }
    parsed.gateway = gateway;
  }
  const index = object["interface"];
  if (index !== undefined && index !== null) {
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0) {
      throw new InvalidResultError(`${where}.interface is not an index: ${JSON.stringify(index)}`);
    }
    if (index >= interfaceCount) {
      throw new InvalidResultError(
        `${where}.interface ${index} points past interfaces (${interfaceCount} listed)`,
      );
    }
    parsed.interface = index;
  }
  return parsed;
}

function parseRoute(entry: JsonValue, where: string): CniRoute {
  const object = requireObject(entry, where);
  const dst = requireString(object, "dst", where);
  if (!isCidr(dst)) throw new InvalidResultError(`${where}.dst "${dst}" is not a CIDR`);
  const parsed: CniRoute = { dst };
  const gw = optionalString(object, "gw", where);
  if (gw !== undefined && gw !== "") parsed.gw = gw;
  return parsed;
}

function parseDns(value: JsonValue): CniDns {
  const object = requireObject(value, "dns");
  const dns: CniDns = {};
  for (const key of ["nameservers", "search", "options"] as const) {
    const list = object[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || !list.every((item) => typeof item === "string")) {
      throw new InvalidResultError(`dns.${key} is not a list of strings`);
    }
    dns[key] = list as string[];
  }
  const domain = optionalString(object, "domain", "dns");
  if (domain !== undefined) dns.domain = domain;
  return dns;
}

function optionalList<T>(
  object: JsonObject,
  key: string,
  where: string,
  parse: (entry: JsonValue, where: string) => T,
): T[] | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new InvalidResultError(`${where} is not a list`);
  return value.map((entry, index) => parse(entry, `${where}[${index}]`));
}

function requireObject(value: JsonValue, where: string): JsonObject {
  if (!isJsonObject(value)) throw new InvalidResultError(`${where} is not an object`);
  return value;
}

function requireString(object: JsonObject, key: string, where: string): string {
  const value = object[key];
  if (typeof value !== "string" || value === "") {
    throw new InvalidResultError(`${where}.${key} is missing or not a string`);
  }
  return value;
}

function optionalString(object: JsonObject, key: string, where: string): string | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new InvalidResultError(`${where}.${key} is not a string`);
  return value;
}

function isCidr(text: string): boolean {
  const slash = text.lastIndexOf("/");
  if (slash === -1) return false;
  const family = isIP(text.slice(0, slash));
  const prefix = text.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * A raw result in the shape of another spec version, to hand on as `prevResult` (plugins
 * read it in their configuration's version): from 1.0.0 on `ips[].version` is gone; before,
 * it is required ("4" or "6"). Other fields pass through; the input is not changed.
 */
export function resultAsVersion(raw: JsonObject, cniVersion: string): JsonObject {
  const target = parseVersion(cniVersion);
  const withIpVersion = target !== null && !atLeast(target, NO_IP_VERSION_FIELD);
  const ips = raw["ips"];
  const converted: JsonObject = { ...raw, cniVersion };
  if (Array.isArray(ips)) {
    converted["ips"] = ips.map((ip) => {
      if (!isJsonObject(ip)) return ip;
      const rest = { ...ip };
      delete rest["version"];
      if (!withIpVersion) return rest;
      const address = typeof ip["address"] === "string" ? ip["address"] : "";
      return { version: address.includes(":") ? "6" : "4", ...rest };
    });
  }
  return converted;
}

/** What a ResourceClaim's device status shows of the interface a VF became in the pod. */
export interface PodInterface {
  interfaceName: string;
  /** CIDRs, e.g. `10.0.0.5/24`. */
  ips: string[];
  hardwareAddress?: string;
}

/**
 * The pod-side interface named `ifName` in a result: the sandbox interface of that name and
 * the IPs whose `interface` index points at it. A result that lists no interfaces at all
 * (IPAM-style) has only the requested interface, so every IP is its. Without a match, the
 * interface has the requested name and no known address.
 */
export function podInterfaceOf(result: CniResult, ifName: string): PodInterface {
  const interfaces = result.interfaces ?? [];
  const ips = result.ips ?? [];
  if (interfaces.length === 0) {
    return { interfaceName: ifName, ips: ips.map((ip) => ip.address) };
  }
  const isNamed = (candidate: CniInterface) => candidate.name === ifName;
  let index = interfaces.findIndex(
    (candidate) => isNamed(candidate) && (candidate.sandbox ?? "") !== "",
  );
  // Some plugins leave `sandbox` out even for the pod's interface.
  if (index === -1) index = interfaces.findIndex(isNamed);
  if (index === -1) return { interfaceName: ifName, ips: [] };
  const found: PodInterface = {
    interfaceName: ifName,
    ips: ips.filter((ip) => ip.interface === index).map((ip) => ip.address),
  };
  const mac = interfaces[index]!.mac;
  if (mac !== undefined && mac !== "") found.hardwareAddress = mac;
  return found;
}
