import { parse as parseYaml } from "yaml";
import { isJsonObject, nestsDeeperThan, type JsonObject } from "../../lib/util/json.js";

/*
 * The sriov-network-device-plugin's configuration (`config.json` in its ConfigMap), as its
 * README documents it: `resourceList[]` of resource pools, each with `selectors` (one
 * object or a list of objects) whose fields are ANDed and whose values are ORed.
 */

/** The largest config.json or ConfigMap read; real ones are a few kilobytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_RESOURCES = 256;
const MAX_SELECTORS = 64;
const MAX_VALUES = 256;
const MAX_STRING = 256;
const MAX_DEPTH = 16;

/** The key of the device plugin's ConfigMap that holds its configuration. */
export const CONFIG_KEY = "config.json";

export const DEVICE_TYPES = ["netDevice", "accelerator", "auxNetDevice"] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** Selector fields that hold a list of strings. */
export const LIST_SELECTOR_FIELDS = [
  "vendors",
  "devices",
  "drivers",
  "pciAddresses",
  "acpiIndexes",
  "pfNames",
  "rootDevices",
  "linkTypes",
  "ddpProfiles",
  "pKeys",
  "auxTypes",
] as const;
export type ListSelectorField = (typeof LIST_SELECTOR_FIELDS)[number];

/** One selector object: its fields ANDed, each field's values ORed; absent or empty = any. */
export type DpSelector = Partial<Record<ListSelectorField, string[]>> & {
  isRdma?: boolean;
  needVhostNet?: boolean;
  vdpaType?: string;
  /** Fields the device plugin does not know (it ignores them too). */
  unknownFields: string[];
};

export interface DpResource {
  resourceName: string;
  /** Absent: the device plugin's `-resource-prefix` (intel.com unless changed). */
  resourcePrefix?: string;
  deviceType: DeviceType;
  excludeTopology: boolean;
  /** In order: a device goes to the first selector (and the first resource) that matches it. */
  selectors: DpSelector[];
  hasAdditionalInfo: boolean;
}

export interface DevicePluginConfig {
  resourceList: DpResource[];
}

/** A config the device plugin would refuse too, or one too large to be real. */
export class DevicePluginConfigError extends Error {}

/**
 * Reads a device plugin configuration from a file's text: a ConfigMap (YAML or JSON) whose
 * `data` holds `config.json`, or the `config.json` itself. The JSON is read as YAML 1.2,
 * which is a superset of JSON: the trailing commas some documented examples carry pass.
 */
export function parseDevicePluginConfig(
  text: string,
  source: string,
  key: string = CONFIG_KEY,
): DevicePluginConfig {
  const document = parseDocument(text, source);
  if (isJsonObject(document) && document.kind === "ConfigMap") {
    const data = isJsonObject(document.data) ? document.data : {};
    const config = Object.hasOwn(data, key) ? data[key] : undefined;
    if (typeof config !== "string") {
      const keys = Object.keys(data).slice(0, 16).map(boundedText).join(", ") || "none";
      throw new DevicePluginConfigError(
        `${source}: the ConfigMap has no data["${boundedText(key)}"] (its keys: ${keys}): point at the device plugin's ConfigMap (usually kube-system/sriovdp-config), and name a per-node key with --config-key`,
      );
    }
    return decodeDevicePluginConfig(parseDocument(config, `${source} ${key}`), source);
  }
  return decodeDevicePluginConfig(document, source);
}

function parseDocument(text: string, source: string): unknown {
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) {
    throw new DevicePluginConfigError(`${source}: larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = parseYaml(text, { maxAliasCount: 0, uniqueKeys: false });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new DevicePluginConfigError(`${source}: not JSON or YAML: ${message}`);
  }
  if (nestsDeeperThan(value, MAX_DEPTH)) {
    throw new DevicePluginConfigError(`${source}: nests deeper than ${MAX_DEPTH} levels`);
  }
  return value;
}

/** Decodes a parsed config.json; every problem names its path. */
export function decodeDevicePluginConfig(value: unknown, source: string): DevicePluginConfig {
  const fail = (path: string, what: string): never => {
    throw new DevicePluginConfigError(`${source}: ${path}: ${what}`);
  };
  if (!isJsonObject(value)) fail("(top)", 'must be an object with "resourceList"');
  const list = (value as JsonObject).resourceList;
  if (!Array.isArray(list)) fail("resourceList", "must be a list of resource configs");
  const resources = list as unknown[];
  if (resources.length > MAX_RESOURCES) fail("resourceList", `more than ${MAX_RESOURCES} entries`);
  return {
    resourceList: resources.map((entry, index) =>
      decodeResource(entry, `resourceList[${index}]`, fail),
    ),
  };
}

type Fail = (path: string, what: string) => never;

const RESOURCE_FIELDS = [
  "resourceName",
  "resourcePrefix",
  "deviceType",
  "excludeTopology",
  "selectors",
  "additionalInfo",
];
const SCALAR_SELECTOR_FIELDS = ["isRdma", "needVhostNet", "vdpaType"];

/**
 * Go's encoding/json, which the device plugin reads its config with, matches keys to
 * fields ignoring case (`IsRdma` sets isRdma): the same here. Unknown keys stay as they are.
 */
function withFieldNames(object: JsonObject, fields: readonly string[]): JsonObject {
  const byLower = new Map(fields.map((field) => [field.toLowerCase(), field]));
  const named: JsonObject = {};
  for (const [key, value] of Object.entries(object)) {
    const field = byLower.get(key.toLowerCase()) ?? key;
    if (!Object.hasOwn(named, field)) named[field] = value;
  }
  return named;
}

function decodeResource(raw: unknown, path: string, fail: Fail): DpResource {
  if (!isJsonObject(raw)) return fail(path, "must be an object");
  const entry = withFieldNames(raw, RESOURCE_FIELDS);
  const resourceName = entry.resourceName;
  if (typeof resourceName !== "string" || resourceName === "") {
    return fail(`${path}.resourceName`, "must be a non-empty string");
  }
  const where = `${path} (${boundedText(resourceName)})`;
  const prefix = entry.resourcePrefix;
  if (prefix !== undefined && prefix !== null && typeof prefix !== "string") {
    fail(`${where}.resourcePrefix`, "must be a string");
  }
  const deviceType = entry.deviceType ?? "netDevice";
  if (!(DEVICE_TYPES as readonly unknown[]).includes(deviceType)) {
    fail(`${where}.deviceType`, `must be one of ${DEVICE_TYPES.join(", ")}`);
  }
  const excludeTopology = entry.excludeTopology ?? false;
  if (typeof excludeTopology !== "boolean") fail(`${where}.excludeTopology`, "must be a boolean");
  const given = entry.selectors ?? [];
  const objects = Array.isArray(given) ? given : [given];
  if (objects.length > MAX_SELECTORS) fail(`${where}.selectors`, `more than ${MAX_SELECTORS}`);
  const resource: DpResource = {
    resourceName: bounded(resourceName, `${where}.resourceName`, fail),
    deviceType: deviceType as DeviceType,
    excludeTopology: excludeTopology as boolean,
    selectors: objects.map((object, index) =>
      decodeSelector(
        object,
        Array.isArray(given) ? `${where}.selectors[${index}]` : `${where}.selectors`,
        fail,
      ),
    ),
    hasAdditionalInfo: entry.additionalInfo !== undefined && entry.additionalInfo !== null,
  };
  if (typeof prefix === "string" && prefix !== "") {
    resource.resourcePrefix = bounded(prefix, `${where}.resourcePrefix`, fail);
  }
  return resource;
}

function decodeSelector(raw: unknown, path: string, fail: Fail): DpSelector {
  if (!isJsonObject(raw)) return fail(path, "must be an object of selector fields");
  const object = withFieldNames(raw, [...LIST_SELECTOR_FIELDS, ...SCALAR_SELECTOR_FIELDS]);
  const selector: DpSelector = { unknownFields: [] };
  for (const [key, value] of Object.entries(object)) {
    if ((LIST_SELECTOR_FIELDS as readonly string[]).includes(key)) {
      if (value === null) continue;
      if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
        fail(`${path}.${key}`, "must be a list of strings");
      }
      const values = value as string[];
      if (values.length > MAX_VALUES) fail(`${path}.${key}`, `more than ${MAX_VALUES} values`);
      selector[key as ListSelectorField] = values.map((item, i) =>
        bounded(item, `${path}.${key}[${i}]`, fail),
      );
    } else if (key === "isRdma" || key === "needVhostNet") {
      if (typeof value !== "boolean") fail(`${path}.${key}`, "must be true or false");
      selector[key] = value as boolean;
    } else if (key === "vdpaType") {
      if (typeof value !== "string") fail(`${path}.${key}`, 'must be "vhost" or "virtio"');
      if (value !== "") selector.vdpaType = bounded(value as string, `${path}.${key}`, fail);
    } else {
      selector.unknownFields.push(boundedText(key));
    }
  }
  return selector;
}

function bounded(text: string, path: string, fail: Fail): string {
  if (text.length > MAX_STRING) fail(path, `longer than ${MAX_STRING} characters`);
  return text;
}

/** A string from the input as it may appear in a message: short, one line. */
export function boundedText(text: string): string {
  const oneLine = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  return oneLine.slice(1, -1);
}
