import {
  array,
  decode,
  integer,
  map,
  object,
  string,
  type Infer,
  type Schema,
} from "../schema/index.js";
import {
  dnsLabel,
  dnsSubdomain,
  hexId,
  kernelDriver,
  labelValue,
  numaNode,
  pciAddress,
  pfSelector,
  resourceName,
  rootDeviceSelector,
} from "./formats.js";
import { API_VERSION } from "./group.js";

export const SRIOV_RESOURCE_FILTER_KIND = "SriovResourceFilter";

/** The filter is well formed and applied. */
export const CONDITION_ACCEPTED = "Accepted";
/** Some of the filter's VFs went to another filter (or an earlier config) on some node. */
export const CONDITION_CONFLICTING = "Conflicting";

const MAX_VALUES_PER_FIELD = 256;

const values = <T>(item: Schema<T>) => array(item, { maxItems: MAX_VALUES_PER_FIELD }).optional();

export const resourceFilterSchema = object(
  {
    vendors: values(hexId).describe("VF vendor ids, e.g. `8086` (Intel), `15b3` (NVIDIA)."),
    devices: values(hexId).describe("VF device ids, e.g. `154c` (Intel X710 VF)."),
    pfNames: values(pfSelector).describe(
      "PF interface names. `eth0#0-3,8` selects only VFs 0 to 3 and 8 of `eth0`.",
    ),
    pciAddresses: values(pciAddress).describe("VF PCI addresses."),
    rootDevices: values(rootDeviceSelector).describe(
      "PF PCI addresses: every VF of these PFs. `0000:86:00.0#0-3,8` selects only VFs 0 to 3 and 8 of that PF.",
    ),
    numaNodes: values(numaNode).describe('NUMA nodes of the PF, as strings, e.g. `"0"`.'),
    drivers: values(kernelDriver).describe(
      "Kernel drivers the VF is bound to when the node publishes it, e.g. `iavf`, `vfio-pci`.",
    ),
  },
  { title: "ResourceFilter" },
).describe(
  "Selects VFs. A VF matches when it matches every field that is set (AND); " +
    "a field matches when any of its values does (OR). A filter with no fields matches every VF. " +
    "Hex ids and PCI addresses match in any case.",
);

export const resourceConfigSchema = object(
  {
    resourceName: resourceName.describe(
      "Published as the `resourceName` attribute of the VFs this config selects; " +
        "DeviceClasses and claims select on it.",
    ),
    resourceFilters: array(resourceFilterSchema, { minItems: 1, maxItems: 32 }).describe(
      "A VF belongs to this config when any of these filters matches it (OR). " +
        "`[{}]` matches every VF.",
    ),
  },
  { title: "ResourceConfig" },
).describe("Names the VFs that some resource filter matches.");

export const sriovResourceFilterSpecSchema = object(
  {
    nodeSelector: map(labelValue)
      .optional()
      .describe(
        "Node labels the filter applies to; every label must match. Empty or absent: every node.",
      ),
    configs: array(resourceConfigSchema, {
      minItems: 1,
      maxItems: 64,
      rules: [
        {
          rule: "self.all(c, self.exists_one(d, d.resourceName == c.resourceName))",
          message: "resourceName must be unique within a filter",
        },
      ],
    }).describe(
      "Configs in order: on a node, a VF goes to the first config that matches it. " +
        "Only VFs some config matches are published on the nodes the filter selects.",
    ),
  },
  { title: "SriovResourceFilterSpec" },
).describe("Which VFs the selected nodes publish, and under which resourceName.");

/** metav1.Condition, as the API server validates it. */
export const conditionSchema = object(
  {
    type: string({
      pattern: {
        regex:
          /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
        hint: 'a condition type in CamelCase, e.g. "Accepted"',
      },
      maxLength: 316,
    }).describe(`\`${CONDITION_ACCEPTED}\` or \`${CONDITION_CONFLICTING}\`.`),
    status: string({ enum: ["True", "False", "Unknown"] }),
    observedGeneration: integer({ minimum: 0 })
      .optional()
      .describe("The `metadata.generation` the condition was computed for."),
    lastTransitionTime: string({ format: "date-time" }).describe("When the status last changed."),
    reason: string({
      pattern: {
        regex: /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/,
        hint: 'a CamelCase reason, e.g. "InvalidSpec"',
      },
      minLength: 1,
      maxLength: 1024,
    }).describe("Why, in one CamelCase word."),
    message: string({ maxLength: 32768 }).describe("Why, for humans."),
  },
  { title: "Condition" },
);

export const exposedDevicesSchema = object(
  {
    resourceName,
    count: integer({ minimum: 0, format: "int32" }).describe(
      "VFs published under the resourceName.",
    ),
    wholePfs: integer({ minimum: 0, format: "int32" })
      .optional()
      .describe(
        "Whole PFs (`--publish-pfs`) published under the resourceName; absent when none. Counted apart from the VFs: a whole PF holds its VFs, which are devices of their own.",
      ),
  },
  { title: "ExposedDevices" },
);

export const sriovResourceFilterStatusSchema = object(
  {
    conditions: array(conditionSchema, {
      maxItems: 8,
      listType: { type: "map", keys: ["type"] },
    })
      .optional()
      .describe(
        `\`${CONDITION_ACCEPTED}\`: the spec is valid and applied. ` +
          `\`${CONDITION_CONFLICTING}\`: on some node, VFs this filter matches went to another filter.`,
      ),
    matchedNodes: integer({ minimum: 0, format: "int32" })
      .optional()
      .describe("Nodes the nodeSelector selects."),
    devicesExposed: array(exposedDevicesSchema, {
      maxItems: 64,
      listType: { type: "map", keys: ["resourceName"] },
    })
      .optional()
      .describe("VFs published per resourceName, summed over the selected nodes."),
  },
  { title: "SriovResourceFilterStatus" },
).describe("Written by the controller.");

/** The metadata the driver reads; the API server owns the rest, which decoding drops. */
export const objectMetaSchema = object(
  {
    name: dnsSubdomain,
    namespace: dnsLabel,
    generation: integer({ minimum: 0 }).optional(),
  },
  {
    title: "ObjectMeta",
    unknownFields: "strip",
    documentedAt:
      "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/",
  },
);

export const sriovResourceFilterSchema = object(
  {
    apiVersion: string({ enum: [API_VERSION] }),
    kind: string({ enum: [SRIOV_RESOURCE_FILTER_KIND] }),
    metadata: objectMetaSchema,
    spec: sriovResourceFilterSpecSchema,
    status: sriovResourceFilterStatusSchema.optional(),
  },
  { title: SRIOV_RESOURCE_FILTER_KIND },
).describe(
  "Namespaced. Applies to the nodes its nodeSelector selects: there, only the VFs some config " +
    "matches are published, each with that config's `resourceName`, and the rest are hidden. " +
    "On a node no filter selects, every VF is published without `resourceName`. " +
    "When several filters select a node, they take VFs in order of namespace, then name, " +
    "and each VF goes to the first config that matches it; a filter that loses VFs to another " +
    "gets the `Conflicting` condition. A filter that fails validation (`Accepted` is `False`) " +
    "still selects its nodes but publishes no VFs on them.",
);

export type ResourceFilter = Infer<typeof resourceFilterSchema>;
export type ResourceConfig = Infer<typeof resourceConfigSchema>;
export type SriovResourceFilterSpec = Infer<typeof sriovResourceFilterSpecSchema>;
export type Condition = Infer<typeof conditionSchema>;
export type SriovResourceFilterStatus = Infer<typeof sriovResourceFilterStatusSchema>;
export type SriovResourceFilter = Infer<typeof sriovResourceFilterSchema>;

/** Decodes a SriovResourceFilter as the API server returns it; throws a SchemaError naming each bad field. */
export function decodeSriovResourceFilter(json: unknown, path = ""): SriovResourceFilter {
  return decode(sriovResourceFilterSchema, json, path);
}
