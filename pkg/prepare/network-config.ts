import type { VfConfig } from "../../api/v1alpha1/vf-config.js";
import { ClaimError } from "./claim-error.js";
import type { CniConfigList } from "../../lib/cni/index.js";
import { isJsonObject, nestsDeeperThan, type JsonObject } from "../../lib/util/json.js";
import type { NetAttachDefRef } from "./prepared-claim.js";
import { networkAttachmentDefinitionsPath } from "../../lib/kube/api-paths.js";

/** The parts of a `k8s.cni.cncf.io/v1` NetworkAttachmentDefinition this driver reads. */
export interface NetworkAttachmentDefinition {
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec?: { config?: string };
}

export function netAttachDefPath(ref: NetAttachDefRef): string {
  return networkAttachmentDefinitionsPath(ref.namespace, ref.name);
}

export function formatRef(ref: NetAttachDefRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/**
 * The NetworkAttachmentDefinition a VfConfig names, defaulting to the claim's namespace.
 * Another namespace's network is refused unless the driver allows it: a claim would
 * otherwise attach pods to networks its namespace was never given.
 */
export function netAttachDefRefOf(
  config: VfConfig,
  claimNamespace: string,
  allowCrossNamespace: boolean,
): NetAttachDefRef | null {
  if (config.netAttachDefName === undefined) {
    if (config.netAttachDefNamespace !== undefined) {
      throw new ClaimError(
        `VfConfig sets netAttachDefNamespace "${config.netAttachDefNamespace}" without netAttachDefName: name the NetworkAttachmentDefinition too, or drop the namespace`,
      );
    }
    return null;
  }
  const ref = {
    namespace: config.netAttachDefNamespace ?? claimNamespace,
    name: config.netAttachDefName,
  };
  if (ref.namespace !== claimNamespace && !allowCrossNamespace) {
    throw new ClaimError(
      `VfConfig names NetworkAttachmentDefinition ${formatRef(ref)}, outside the claim's namespace ${claimNamespace}: create it in ${claimNamespace}, or run the driver with cross-namespace networks allowed`,
    );
  }
  return ref;
}

/** Far beyond any real CNI configuration (a few KiB, nested a few levels). */
const MAX_CONFIG_BYTES = 256 * 1024;
const MAX_CONFIG_DEPTH = 64;

/**
 * The CNI configuration of a NetworkAttachmentDefinition as a configuration list: a single
 * plugin configuration becomes a list of that one plugin, as libcni treats it. A missing
 * `name` is the object's name, as Multus does.
 */
export function cniConfigListOf(nad: NetworkAttachmentDefinition): CniConfigList {
  const ref = formatRef(nad.metadata);
  const invalid = (reason: string) =>
    new ClaimError(
      `NetworkAttachmentDefinition ${ref} has an invalid CNI configuration in spec.config: ${reason}; fix the NetworkAttachmentDefinition`,
    );
  const text = nad.spec?.config;
  if (text === undefined || text.trim() === "") {
    throw invalid("it is empty (this driver needs the configuration in the object, not on disk)");
  }
  // One tenant's network must not cost other claims: the configuration is copied into the
  // checkpoint and the claim status, and recursive code there would overflow on it.
  if (text.length > MAX_CONFIG_BYTES) {
    throw invalid(`larger than ${MAX_CONFIG_BYTES / 1024} KiB (${text.length} characters)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(`not JSON (${(error as Error).message})`);
  }
  if (nestsDeeperThan(parsed, MAX_CONFIG_DEPTH)) {
    throw invalid(`nested deeper than ${MAX_CONFIG_DEPTH} levels`);
  }
  if (!isJsonObject(parsed)) throw invalid("not a JSON object");
  const { cniVersion, name } = parsed;
  if (typeof cniVersion !== "string" || cniVersion === "") throw invalid("cniVersion is missing");
  if (name !== undefined && typeof name !== "string") throw invalid("name is not a string");
  const listName = name === undefined || name === "" ? nad.metadata.name : name;
  if (parsed["plugins"] === undefined) {
    checkPlugin(parsed, "the configuration", invalid);
    return { cniVersion, name: listName, plugins: [{ ...parsed, name: listName }] };
  }
  const plugins = parsed["plugins"];
  if (!Array.isArray(plugins) || plugins.length === 0) {
    throw invalid("plugins is not a non-empty list");
  }
  const checked = plugins.map((plugin, index) => {
    if (!isJsonObject(plugin)) throw invalid(`plugins[${index}] is not an object`);
    checkPlugin(plugin, `plugins[${index}]`, invalid);
    return plugin;
  });
  return { ...parsed, cniVersion, name: listName, plugins: checked };
}

function checkPlugin(plugin: JsonObject, where: string, invalid: (reason: string) => Error): void {
  const { type } = plugin;
  if (typeof type !== "string" || type === "") throw invalid(`${where} has no plugin type`);
}

/**
 * Which plugin of the list gets the VF's `deviceID`: the one of type `sriov` (the SR-IOV
 * CNI), else the first, which is the list's main plugin (the rest are chained after it).
 */
export function deviceIdPluginIndex(list: CniConfigList): number {
  const sriov = list.plugins.findIndex((plugin) => plugin["type"] === "sriov");
  return sriov === -1 ? 0 : sriov;
}

/**
 * The list with the VF's PCI address as `deviceID` and `pciBusID`; the input is not changed.
 * Both keys, as Multus injects them: the SR-IOV CNI reads `deviceID`, the reference
 * host-device plugin ignores it and finds the device by `pciBusID`.
 */
export function withDeviceId(list: CniConfigList, pciAddress: string): CniConfigList {
  const target = deviceIdPluginIndex(list);
  return {
    ...list,
    plugins: list.plugins.map((plugin, index) =>
      index === target ? { ...plugin, deviceID: pciAddress, pciBusID: pciAddress } : plugin,
    ),
  };
}
