import { SchemaError, formatIssue } from "../../api/schema/index.js";
import { decodeVfConfig, VF_CONFIG_KIND } from "../../api/v1alpha1/vf-config.js";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { isJsonObject } from "../../lib/util/json.js";

/** The pod annotation that names a pod's secondary networks (Multus, the NPWG spec). */
export const NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks";
/** The NetworkAttachmentDefinition annotation that names the device pool it needs. */
export const RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName";

/** Far beyond any real annotation (a handful of networks, a few hundred bytes). */
export const MAX_ANNOTATION_BYTES = 16 * 1024;
/** A pod gets at most this many networks from the annotation. */
export const MAX_NETWORKS = 32;

/** Fields of the JSON form this driver reads but does not carry out (Multus does). */
const NOT_CARRIED = ["default-route", "cni-args", "infiniband-guid", "portMappings", "bandwidth"];

/** The annotation's name for each VfConfig field it sets. */
const ANNOTATION_KEY: Record<string, string> = {
  netAttachDefName: "name",
  netAttachDefNamespace: "namespace",
  ifName: "interface",
};

/** One network the annotation selects, checked with the rules of a VfConfig. */
export interface NetworkSelection {
  namespace: string;
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  /** Fields present in the entry that this driver does not carry out, for the log. */
  notCarried: string[];
}

/** The annotation is not one Multus would accept either (or is beyond our bounds). */
export class NetworksAnnotationError extends Error {
  override readonly name = "NetworksAnnotationError";
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Parses `k8s.v1.cni.cncf.io/networks` as Multus reads it: a JSON list when the text holds
 * `[`, `{` or `"`, else a comma-separated list of `[namespace/]name[@interface]`, each part a
 * DNS label. A network without a namespace is in `podNamespace`. Untrusted input: bounded
 * in size and count, every value checked as a VfConfig checks it; throws
 * NetworksAnnotationError saying what is wrong.
 */
export function parseNetworksAnnotation(text: string, podNamespace: string): NetworkSelection[] {
  if (Buffer.byteLength(text, "utf8") > MAX_ANNOTATION_BYTES) {
    throw new NetworksAnnotationError(
      `longer than ${MAX_ANNOTATION_BYTES / 1024} KiB (${text.length} characters)`,
    );
  }
  const entries = /[[{"]/.test(text) ? jsonEntries(text) : commaEntries(text);
  if (entries.length > MAX_NETWORKS) {
    throw new NetworksAnnotationError(
      `names ${entries.length} networks, more than ${MAX_NETWORKS}`,
    );
  }
  return entries.map((entry, index) => checked(entry, index, podNamespace));
}

interface RawEntry {
  name: string;
  namespace?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  notCarried: string[];
}

function commaEntries(text: string): RawEntry[] {
  return text.split(",").map((item, index) => {
    const where = `entry ${index + 1} ("${item.trim()}")`;
    const slash = item.split("/");
    if (slash.length > 2) throw new NetworksAnnotationError(`${where}: more than one "/"`);
    const [namespace, rest] =
      slash.length === 2 ? [slash[0]!.trim(), slash[1]!] : [undefined, item];
    const at = rest.split("@");
    if (at.length > 2) throw new NetworksAnnotationError(`${where}: more than one "@"`);
    const name = at[0]!.trim();
    const ifName = at[1]?.trim();
    for (const part of [namespace, name, ifName]) {
      if (part !== undefined && part !== "" && !DNS_LABEL.test(part)) {
        throw new NetworksAnnotationError(
          `${where}: "${part}" is not a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit)`,
        );
      }
    }
    return {
      name,
      ...(namespace ? { namespace } : {}),
      ...(ifName ? { interface: ifName } : {}),
      notCarried: [],
    };
  });
}

function jsonEntries(text: string): RawEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new NetworksAnnotationError(`not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new NetworksAnnotationError("JSON that is not a list");
  if (parsed.length > MAX_NETWORKS) {
    throw new NetworksAnnotationError(`names ${parsed.length} networks, more than ${MAX_NETWORKS}`);
  }
  return parsed.map((item: unknown, index): RawEntry => {
    const where = `entry ${index + 1}`;
    if (!isJsonObject(item)) throw new NetworksAnnotationError(`${where} is not an object`);
    const text = (key: string): string | undefined => {
      const value = item[key];
      if (value === undefined || value === null || value === "") return undefined;
      if (typeof value !== "string")
        throw new NetworksAnnotationError(`${where}: ${key} is not a string`);
      return value;
    };
    const name = text("name") ?? "";
    const namespace = text("namespace");
    const ifName = text("interface");
    const mac = text("mac");
    const ips = item["ips"];
    if (
      ips !== undefined &&
      ips !== null &&
      !(Array.isArray(ips) && ips.every((ip) => typeof ip === "string"))
    ) {
      throw new NetworksAnnotationError(`${where}: ips is not a list of strings`);
    }
    return {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(ifName !== undefined ? { interface: ifName } : {}),
      ...(Array.isArray(ips) && ips.length > 0 ? { ips: ips as string[] } : {}),
      ...(mac !== undefined ? { mac } : {}),
      notCarried: NOT_CARRIED.filter((key) => item[key] !== undefined && item[key] !== null),
    };
  });
}

/** The entry as a VfConfig would say it, checked by the VfConfig's own schema. */
function checked(entry: RawEntry, index: number, podNamespace: string): NetworkSelection {
  const where = `entry ${index + 1}`;
  if (entry.name === "") throw new NetworksAnnotationError(`${where} names no network`);
  const namespace = entry.namespace ?? podNamespace;
  try {
    decodeVfConfig(
      {
        apiVersion: API_VERSION,
        kind: VF_CONFIG_KIND,
        netAttachDefName: entry.name,
        netAttachDefNamespace: namespace,
        ...(entry.interface !== undefined ? { ifName: entry.interface } : {}),
        ...(entry.ips !== undefined ? { ips: entry.ips } : {}),
        ...(entry.mac !== undefined ? { mac: entry.mac } : {}),
      },
      "",
    );
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    const issues = error.issues.map((issue) =>
      formatIssue({
        ...issue,
        path: issue.path.replace(/^\w+/, (field) => ANNOTATION_KEY[field] ?? field),
      }),
    );
    throw new NetworksAnnotationError(`${where} (${entry.name}): ${issues.join("; ")}`);
  }
  return {
    namespace,
    name: entry.name,
    ...(entry.interface !== undefined ? { interface: entry.interface } : {}),
    ...(entry.ips !== undefined ? { ips: entry.ips } : {}),
    ...(entry.mac !== undefined ? { mac: entry.mac } : {}),
    notCarried: entry.notCarried,
  };
}
