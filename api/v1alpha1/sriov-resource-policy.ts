import {
  array,
  boolean,
  decode,
  integer,
  map,
  object,
  string,
  type Infer,
  type Schema,
} from "../schema/index.js";
import {
  dnsSubdomain,
  hexId,
  kernelDriver,
  labelValue,
  pciAddress,
  pfSelector,
} from "./formats.js";
import { UPSTREAM_API_VERSION } from "./group.js";

/*
 * The upstream Go driver's kinds (group sriovnetwork.k8snetworkplumbingwg.io), accepted
 * beside ours so its manifests keep working. Field names and meaning follow upstream's
 * API (k8snetworkplumbingwg/dra-driver-sriov, pkg/api/sriovdra/v1alpha1, read at commit
 * cd9404f0301e088653abb562df6ed8b106b097d6); the bounds are ours: every list and map is
 * capped, and values have the formats our own SriovResourceFilter uses.
 */

export const SRIOV_RESOURCE_POLICY_KIND = "SriovResourcePolicy";
export const DEVICE_ATTRIBUTES_KIND = "DeviceAttributes";

const MAX_VALUES_PER_FIELD = 256;
const values = <T>(item: Schema<T>) => array(item, { maxItems: MAX_VALUES_PER_FIELD }).optional();

const labelKey = string({
  pattern: {
    regex:
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/,
    hint: 'a label key, e.g. "kubernetes.io/hostname"',
  },
  maxLength: 317,
});

/** What `kubectl label` accepts, and what selectors compare against: values of labels. */
const labelValues = array(labelValue, { maxItems: MAX_VALUES_PER_FIELD }).optional();

const OPERATOR_RULES = [
  {
    rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : true",
    message: "In and NotIn need at least one value",
  },
  {
    rule: "self.operator in ['Exists', 'DoesNotExist'] ? !has(self.values) || size(self.values) == 0 : true",
    message: "Exists and DoesNotExist take no values",
  },
];

export const nodeSelectorRequirementSchema = object(
  {
    key: labelKey,
    operator: string({ enum: ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] }),
    values: labelValues,
  },
  {
    title: "NodeSelectorRequirement",
    rules: [
      ...OPERATOR_RULES,
      {
        rule: "self.operator in ['Gt', 'Lt'] ? has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]{1,18}$') : true",
        message: "Gt and Lt need exactly one value, an integer",
      },
    ],
  },
).describe("A node label (matchExpressions) or field (matchFields: `metadata.name`) test.");

export const nodeSelectorSchema = object(
  {
    nodeSelectorTerms: array(
      object(
        {
          matchExpressions: array(nodeSelectorRequirementSchema, { maxItems: 32 }).optional(),
          matchFields: array(nodeSelectorRequirementSchema, {
            maxItems: 32,
            rules: [
              {
                rule: "self.all(r, r.key == 'metadata.name' && r.operator in ['In', 'NotIn'])",
                message: "matchFields supports only metadata.name with In or NotIn",
              },
            ],
          }).optional(),
        },
        { title: "NodeSelectorTerm" },
      ).describe("Every requirement must hold (AND); a term with none selects every node."),
      { maxItems: 32 },
    ).describe("Terms are ORed: a node is selected when any term selects it."),
  },
  {
    title: "NodeSelector",
    documentedAt:
      "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/node-selector-requirement/",
  },
);

export const labelSelectorSchema = object(
  {
    matchLabels: map(labelValue, { maxProperties: 64 }).optional(),
    matchExpressions: array(
      object(
        {
          key: labelKey,
          operator: string({ enum: ["In", "NotIn", "Exists", "DoesNotExist"] }),
          values: labelValues,
        },
        { title: "LabelSelectorRequirement", rules: OPERATOR_RULES },
      ),
      { maxItems: 32 },
    ).optional(),
  },
  {
    title: "LabelSelector",
    documentedAt:
      "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/",
  },
).describe("Every label and expression must match (AND); `{}` selects every object.");

export const LINK_TYPES = ["eth", "ethernet", "ib", "infiniband"] as const;

export const policyResourceFilterSchema = object(
  {
    vendors: values(hexId).describe("VF vendor ids, e.g. `8086`."),
    devices: values(hexId).describe("VF device ids, e.g. `154c`."),
    pciAddresses: values(pciAddress).describe("VF PCI addresses."),
    pfNames: values(pfSelector).describe(
      "PF interface names (`eth0`; `eth0#0-3` for VFs 0 to 3 of it, an extension of ours).",
    ),
    pfPciAddresses: values(pciAddress).describe("PCI addresses of the VFs' PFs."),
    drivers: values(kernelDriver).describe(
      "Kernel drivers the VF is bound to when the node publishes it. The upstream driver ignores this field; this driver applies it.",
    ),
    linkType: string({ enum: LINK_TYPES })
      .optional()
      .describe("The PF's link type: `eth` or `ethernet`, `ib` or `infiniband`."),
  },
  { title: "PolicyResourceFilter" },
).describe(
  "Selects VFs: a VF matches when it matches every field that is set (AND), a field when any of its values does (OR).",
);

export const policyConfigSchema = object(
  {
    deviceAttributesSelector: labelSelectorSchema
      .optional()
      .describe(
        "DeviceAttributes of the policy's namespace whose labels match; their attributes are published on this config's VFs. Absent: no extra attributes.",
      ),
    resourceFilters: array(policyResourceFilterSchema, { maxItems: 32 })
      .optional()
      .describe(
        "A VF belongs to this config when any filter matches it; absent or empty: every VF.",
      ),
  },
  { title: "PolicyConfig" },
);

export const sriovResourcePolicySpecSchema = object(
  {
    nodeSelector: nodeSelectorSchema
      .optional()
      .describe("Nodes the policy applies to; absent or without terms: every node."),
    configs: array(policyConfigSchema, { maxItems: 64 })
      .optional()
      .describe(
        "Configs in order: a VF goes to the first config (of the first policy) that matches it.",
      ),
  },
  { title: "SriovResourcePolicySpec" },
);

/** The metadata the driver reads; the API server owns the rest, which decoding drops. */
const upstreamMetaSchema = object(
  {
    name: dnsSubdomain,
    namespace: string({ maxLength: 63 }).optional(),
    generation: integer({ minimum: 0 }).optional(),
    labels: map(string({ maxLength: 63 }), { maxProperties: 64 }).optional(),
  },
  {
    title: "UpstreamObjectMeta",
    unknownFields: "strip",
    documentedAt:
      "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/",
  },
);

export const sriovResourcePolicySchema = object(
  {
    apiVersion: string({ enum: [UPSTREAM_API_VERSION] }),
    kind: string({ enum: [SRIOV_RESOURCE_POLICY_KIND] }),
    metadata: upstreamMetaSchema,
    spec: sriovResourcePolicySpecSchema,
  },
  { title: SRIOV_RESOURCE_POLICY_KIND },
).describe(
  "The upstream driver's opt-in publishing, namespaced (the driver's namespace). Once any " +
    "SriovResourcePolicy exists there, a node publishes only the VFs that some policy selecting " +
    "it matches (and those a SriovResourceFilter takes, which go first). Policies take VFs in " +
    "order of name; within a policy, configs in order.",
);

/** Qualified attribute names as ResourceSlices take them: `domain/name`, or a bare name (the driver's domain). */
export const ATTRIBUTE_NAME_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z_][A-Za-z0-9_]*$";
export const MAX_ATTRIBUTES = 32;

export const deviceAttributeSchema = object(
  {
    bool: boolean().optional(),
    int: integer().optional(),
    string: string({ maxLength: 64 }).optional(),
    version: string({
      pattern: {
        regex:
          /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/,
        hint: 'a semantic version, e.g. "1.2.3"',
      },
      maxLength: 64,
    }).optional(),
  },
  {
    title: "DeviceAttribute",
    rules: [
      {
        rule: "(has(self.bool) ? 1 : 0) + (has(self.int) ? 1 : 0) + (has(self.string) ? 1 : 0) + (has(self.version) ? 1 : 0) == 1",
        message: "set exactly one of bool, int, string and version",
      },
    ],
  },
).describe("One value, as in a ResourceSlice (list values are not supported).");

export const deviceAttributesSpecSchema = object(
  {
    attributes: map(deviceAttributeSchema, { maxProperties: MAX_ATTRIBUTES })
      .optional()
      .describe(
        "Attribute name → value, e.g. `k8s.cni.cncf.io/resourceName: {string: sriov_nic_1}`. " +
          "Names the driver publishes itself (vendor, pciAddress, ...) are never overridden.",
      ),
  },
  {
    title: "DeviceAttributesSpec",
    rules: [
      {
        rule: `!has(self.attributes) || self.attributes.all(k, size(k) <= 96 && k.matches('${ATTRIBUTE_NAME_PATTERN}'))`,
        message:
          "attribute names are a DNS subdomain, '/', and a C identifier (e.g. k8s.cni.cncf.io/resourceName), at most 96 characters",
      },
    ],
  },
);

export const deviceAttributesSchema = object(
  {
    apiVersion: string({ enum: [UPSTREAM_API_VERSION] }),
    kind: string({ enum: [DEVICE_ATTRIBUTES_KIND] }),
    metadata: upstreamMetaSchema,
    spec: deviceAttributesSpecSchema,
  },
  { title: DEVICE_ATTRIBUTES_KIND },
).describe(
  "Attributes a SriovResourcePolicy config publishes on the VFs it selects, through its " +
    "deviceAttributesSelector. When several match and set one name, the object last by name wins.",
);

export type NodeSelector = Infer<typeof nodeSelectorSchema>;
export type NodeSelectorRequirement = Infer<typeof nodeSelectorRequirementSchema>;
export type LabelSelector = Infer<typeof labelSelectorSchema>;
export type PolicyResourceFilter = Infer<typeof policyResourceFilterSchema>;
export type PolicyConfig = Infer<typeof policyConfigSchema>;
export type SriovResourcePolicy = Infer<typeof sriovResourcePolicySchema>;
export type DeviceAttribute = Infer<typeof deviceAttributeSchema>;
export type DeviceAttributes = Infer<typeof deviceAttributesSchema>;

/** Decodes a SriovResourcePolicy as the API server returns it; throws a SchemaError naming each bad field. */
export function decodeSriovResourcePolicy(json: unknown, path = ""): SriovResourcePolicy {
  return decode(sriovResourcePolicySchema, json, path);
}

/** Decodes a DeviceAttributes object as the API server returns it; throws a SchemaError naming each bad field. */
export function decodeDeviceAttributes(json: unknown, path = ""): DeviceAttributes {
  return decode(deviceAttributesSchema, json, path);
}
