import { resourceName as resourceNameFormat } from "../../api/v1alpha1/formats.js";
import {
  decodeDeviceAttributes,
  decodeSriovResourcePolicy,
  type DeviceAttribute,
  type DeviceAttributes,
  type LabelSelector,
  type PolicyResourceFilter,
  type SriovResourcePolicy,
} from "../../api/v1alpha1/sriov-resource-policy.js";
import { decode } from "../../api/schema/index.js";
import type { AttributeValue } from "../devices/attributes.js";
import type { PolicyConfigRule, PolicyObject } from "../filters/apply.js";
import { isRecord, problemsOf } from "../filters/decode.js";
import type { MatchFilter } from "../filters/match.js";
import type { FilterProblem } from "../filters/validate.js";
import type { LinkType } from "../host/discovery.js";

/** A DeviceAttributes object that could not be read, and so lends no attributes. */
export interface SkippedObject {
  namespace: string;
  name: string;
  problems: FilterProblem[];
}

export interface TranslatedPolicies {
  policies: PolicyObject[];
  /** Unreadable DeviceAttributes, left out. */
  skippedAttributes: SkippedObject[];
}

/** Where Multus looks for the resourceName of a device (as the device plugin published it). */
const MULTUS_RESOURCE_NAME = "k8s.cni.cncf.io/resourceName";

/**
 * The upstream driver's SriovResourcePolicies and DeviceAttributes (objects as the API server
 * returns them, untrusted) as the filters apply them (see applyResourceFilters):
 *
 * - a config's `deviceAttributesSelector` picks DeviceAttributes by label (`{}`: all of
 *   them; absent: none); their attributes merge in order of name, a later object winning a
 *   name they share, as upstream merges them. A bare attribute name is the driver's
 *   (`fast` → `<driverName>/fast`), as in a ResourceSlice.
 * - the config's VFs get a `resourceName` when its attributes name one
 *   (`<driverName>/resourceName`, else `k8s.cni.cncf.io/resourceName`), so pools,
 *   DeviceClasses and NetworkAttachmentDefinitions see it as they see a SriovResourceFilter's.
 * - resource filters: `pfPciAddresses` are `rootDevices`, `linkType` (`eth`/`ib` or the long
 *   names) the PF's link type; absent or empty `resourceFilters` match every VF.
 * - an unreadable policy fails closed (it takes no VFs); an unreadable DeviceAttributes is
 *   left out and reported.
 */
export function translatePolicies(
  policyObjects: readonly unknown[],
  attributeObjects: readonly unknown[],
  options: { namespace: string; driverName: string },
): TranslatedPolicies {
  const skippedAttributes: SkippedObject[] = [];
  const attributes: DeviceAttributes[] = [];
  for (const object of attributeObjects) {
    try {
      attributes.push(decodeDeviceAttributes(object));
    } catch (error) {
      skippedAttributes.push({
        ...identity(object, options.namespace),
        problems: problemsOf(error),
      });
    }
  }
  attributes.sort((a, b) => compare(a.metadata.name, b.metadata.name));
  const policies = policyObjects.map((object): PolicyObject => {
    let policy: SriovResourcePolicy;
    try {
      policy = decodeSriovResourcePolicy(object);
    } catch (error) {
      const { namespace, name } = identity(object, options.namespace);
      return { metadata: { namespace, name }, configs: [], undecodable: problemsOf(error) };
    }
    const { name, namespace, generation } = policy.metadata;
    return {
      metadata: {
        namespace: namespace ?? options.namespace,
        name,
        ...(generation === undefined ? {} : { generation }),
      },
      ...(policy.spec.nodeSelector === undefined ? {} : { nodeSelector: policy.spec.nodeSelector }),
      configs: (policy.spec.configs ?? []).map((config) =>
        configRule(
          config.resourceFilters ?? [],
          mergedAttributes(config.deviceAttributesSelector, attributes, options.driverName),
          options.driverName,
        ),
      ),
    };
  });
  return { policies, skippedAttributes };
}

function configRule(
  filters: readonly PolicyResourceFilter[],
  attributes: Record<string, AttributeValue>,
  driverName: string,
): PolicyConfigRule {
  const resourceName = resourceNameOf(attributes, driverName);
  return {
    resourceFilters: filters.length === 0 ? [{}] : filters.map(matchFilterOf),
    attributes,
    ...(resourceName === undefined ? {} : { resourceName }),
  };
}

function matchFilterOf(filter: PolicyResourceFilter): MatchFilter {
  const { pfPciAddresses, linkType, ...same } = filter;
  return {
    ...same,
    ...(pfPciAddresses === undefined ? {} : { rootDevices: pfPciAddresses }),
    ...(linkType === undefined ? {} : { linkTypes: [LINK_TYPE[linkType]] }),
  };
}

/** Upstream's link type spellings → the `linkType` the driver publishes. */
const LINK_TYPE: Record<NonNullable<PolicyResourceFilter["linkType"]>, LinkType> = {
  eth: "ethernet",
  ethernet: "ethernet",
  ib: "infiniband",
  infiniband: "infiniband",
};

function mergedAttributes(
  selector: LabelSelector | undefined,
  objects: readonly DeviceAttributes[],
  driverName: string,
): Record<string, AttributeValue> {
  if (selector === undefined) return {};
  const merged: Record<string, AttributeValue> = {};
  for (const object of objects) {
    if (!labelSelectorSelects(selector, object.metadata.labels ?? {})) continue;
    for (const [name, value] of Object.entries(object.spec.attributes ?? {})) {
      merged[name.includes("/") ? name : `${driverName}/${name}`] = attributeValueOf(value);
    }
  }
  return merged;
}

/** The one value a decoded DeviceAttribute holds (the schema enforces exactly one). */
function attributeValueOf(value: DeviceAttribute): AttributeValue {
  if (value.bool !== undefined) return { bool: value.bool };
  if (value.int !== undefined) return { int: value.int };
  if (value.version !== undefined) return { version: value.version };
  return { string: value.string ?? "" };
}

function resourceNameOf(
  attributes: Readonly<Record<string, AttributeValue>>,
  driverName: string,
): string | undefined {
  for (const name of [`${driverName}/resourceName`, MULTUS_RESOURCE_NAME]) {
    const value = attributes[name];
    if (value === undefined || !("string" in value)) continue;
    try {
      return decode(resourceNameFormat, value.string);
    } catch {
      // Not a resourceName this driver can pool by: published only as the attribute.
    }
  }
  return undefined;
}

/** A metav1.LabelSelector: every label and every expression must match; `{}` selects all. */
export function labelSelectorSelects(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  return (
    Object.entries(selector.matchLabels ?? {}).every(
      ([key, value]) => has(key) && labels[key] === value,
    ) &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      switch (operator) {
        case "In":
          return has(key) && values.includes(labels[key] ?? "");
        case "NotIn":
          return !has(key) || !values.includes(labels[key] ?? "");
        case "Exists":
          return has(key);
        case "DoesNotExist":
          return !has(key);
      }
    })
  );
}

function identity(object: unknown, defaultNamespace: string): { namespace: string; name: string } {
  const metadata = isRecord(object) && isRecord(object["metadata"]) ? object["metadata"] : {};
  const name = metadata["name"];
  const namespace = metadata["namespace"];
  return {
    namespace: typeof namespace === "string" ? namespace.slice(0, 63) : defaultNamespace,
    name: typeof name === "string" ? name.slice(0, 253) : "",
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
