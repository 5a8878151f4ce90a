import { isJsonObject, type JsonObject } from "../util/json.js";
import type { CniConfigList } from "./config.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

/** The per-attachment parameters of one CNI operation (spec "Attachment Parameters"). */
export interface CniRuntime {
  /** CNI_CONTAINERID: starts with a letter or digit, then letters, digits, `_`, `.`, `-`. */
  containerId: string;
  /** CNI_NETNS: path of the pod's network namespace, e.g. `/var/run/netns/<name>`. */
  netns: string;
  /** CNI_IFNAME: the interface name inside the pod. */
  ifName: string;
  /** CNI_ARGS pairs, e.g. K8S_POD_NAMESPACE; `IgnoreUnknown=true` is added unless set. */
  args: Record<string, string>;
  /**
   * Capability args: runtimeConfig values for plugins that declare them in `capabilities`,
   * e.g. { mac: "..", ips: ["10.0.0.5/24"] }.
   */
  capabilityArgs?: JsonObject;
}

// Spec: container IDs and network names; plugin types are file names of the same shape.
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Why the configuration list and runtime parameters cannot be run, or null. Checked before
 * any plugin runs, so a bad request never half-configures a pod.
 */
export function requestProblem(list: CniConfigList, runtime: CniRuntime): string | null {
  if (!IDENTIFIER.test(list.name)) {
    return `the network name "${list.name}" is not valid (a letter or digit, then letters, digits, "_", "." or "-"): rename the network in its CNI configuration`;
  }
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) {
    return "the configuration list has no plugins";
  }
  for (const [index, plugin] of list.plugins.entries()) {
    const type = plugin["type"];
    if (typeof type !== "string" || !IDENTIFIER.test(type)) {
      return `plugins[${index}].type ${JSON.stringify(type ?? null)} is not a plugin file name`;
    }
    const capabilities = plugin["capabilities"];
    if (capabilities !== undefined && !isJsonObject(capabilities)) {
      return `plugins[${index}].capabilities is not an object`;
    }
  }
  if (!IDENTIFIER.test(runtime.containerId)) {
    return `the container ID "${runtime.containerId}" is not valid (a letter or digit, then letters, digits, "_", "." or "-")`;
  }
  const ifNameProblem = interfaceNameProblem(runtime.ifName);
  if (ifNameProblem !== null) return ifNameProblem;
  for (const [key, value] of Object.entries(runtime.args)) {
    if (!/^[^=;\s]+$/.test(key) || /[;\s]/.test(value)) {
      return `CNI_ARGS pair ${JSON.stringify(`${key}=${value}`)} has "=", ";" or whitespace where it cannot`;
    }
  }
  return null;
}

/** Spec: not empty, not `.`/`..`, under 16 bytes, no `/`, `:` or whitespace. */
export function interfaceNameProblem(ifName: string): string | null {
  if (
    ifName === "" ||
    ifName === "." ||
    ifName === ".." ||
    Buffer.byteLength(ifName) > 15 ||
    /[/:\s]/.test(ifName)
  ) {
    return `the interface name "${ifName}" is not valid (1 to 15 bytes, not "." or "..", no "/", ":" or whitespace)`;
  }
  return null;
}

/**
 * CNI_ARGS: `IgnoreUnknown=true` first (plugins built on the reference library refuse keys
 * they do not know without it), then the pairs in order.
 */
export function cniArgsOf(args: Record<string, string>): string {
  const pairs = Object.entries(args);
  if (!pairs.some(([key]) => key === "IgnoreUnknown")) pairs.unshift(["IgnoreUnknown", "true"]);
  return pairs.map(([key, value]) => `${key}=${value}`).join(";");
}

export interface EnvOptions {
  command: CniCommand;
  /** Absent for VERSION. */
  runtime?: CniRuntime;
  /** False leaves CNI_NETNS out (DEL of a namespace that is gone, as the spec allows). */
  withNetns?: boolean;
  pluginDirs: readonly string[];
}

/**
 * The plugin's environment: the daemon's own (plugins run `ip`, `iptables` … from PATH)
 * without any inherited CNI_* variable, plus the protocol parameters.
 */
export function pluginEnv(base: NodeJS.ProcessEnv, options: EnvOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined && !key.startsWith("CNI_")) env[key] = value;
  }
  env["CNI_COMMAND"] = options.command;
  env["CNI_PATH"] = options.pluginDirs.join(":");
  const { runtime } = options;
  if (runtime === undefined) return env;
  env["CNI_CONTAINERID"] = runtime.containerId;
  if ((options.withNetns ?? true) && runtime.netns !== "") env["CNI_NETNS"] = runtime.netns;
  env["CNI_IFNAME"] = runtime.ifName;
  env["CNI_ARGS"] = cniArgsOf(runtime.args);
  return env;
}

/**
 * The configuration one plugin of a list gets on stdin (spec "Deriving execution
 * configuration"): its own object with the list's `cniVersion` and `name`, `runtimeConfig`
 * from the capability args it declares, `prevResult` when there is one, and no
 * `capabilities`. Everything else passes through unchanged.
 */
export function pluginRequest(
  list: CniConfigList,
  index: number,
  prevResult: JsonObject | undefined,
  capabilityArgs: JsonObject | undefined,
): JsonObject {
  const { capabilities, ...rest } = list.plugins[index]!;
  // The list's version and name win; a stale prevResult never reaches the plugin.
  delete rest["cniVersion"];
  delete rest["name"];
  delete rest["prevResult"];
  const request: JsonObject = { cniVersion: list.cniVersion, name: list.name, ...rest };
  const runtimeConfig = runtimeConfigOf(capabilities, capabilityArgs);
  // An empty union leaves a configured runtimeConfig alone, as libcni does.
  if (Object.keys(runtimeConfig).length > 0) request["runtimeConfig"] = runtimeConfig;
  if (prevResult !== undefined) request["prevResult"] = prevResult;
  return request;
}

/** The capability args the plugin declares with `true` in `capabilities`. */
export function runtimeConfigOf(
  capabilities: JsonObject[string] | undefined,
  capabilityArgs: JsonObject | undefined,
): JsonObject {
  const runtimeConfig: JsonObject = {};
  if (!isJsonObject(capabilities) || capabilityArgs === undefined) return runtimeConfig;
  for (const [capability, declared] of Object.entries(capabilities)) {
    const value = capabilityArgs[capability];
    if (declared === true && value !== undefined) runtimeConfig[capability] = value;
  }
  return runtimeConfig;
}

/** Cache file name of an attachment, libcni's key: `<network>-<containerId>-<ifName>`. */
export function cacheKeyOf(
  networkName: string,
  runtime: Pick<CniRuntime, "containerId" | "ifName">,
): string {
  return `${networkName}-${runtime.containerId}-${runtime.ifName}`;
}
