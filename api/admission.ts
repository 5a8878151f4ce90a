import { stringify } from "yaml";
import type { ObjectNode, SchemaNode } from "./schema/index.js";
import { vfConfigSchema, VF_CONFIG_KIND } from "./v1alpha1/vf-config.js";

/** The chart template this file generates. */
export const VF_CONFIG_POLICY_PATH =
  "deployments/helm/dra-driver-sriov/templates/vfconfig-admission-policy.yaml";

/** Where the driver name goes in the template: the chart's own helper. */
const DRIVER_NAME = '{{ include "dra-driver-sriov.driverName" . }}';

/** A CEL string literal (single quotes). */
function celString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * The conditions a value (the CEL expression `value`) must meet to pass the schema node,
 * in the order the decoder checks them. Refinements bring their own CEL over `self`.
 */
export function celConditions(node: SchemaNode, value: string): string[] {
  const refinements = node.refinements.map((refinement) => {
    if (refinement.cel === undefined) {
      throw new Error(
        `refinement "${refinement.description}" has no CEL: admission cannot check it`,
      );
    }
    return `(${refinement.cel.replace(/\bself\b/g, value)})`;
  });
  switch (node.kind) {
    case "string":
      return [
        `type(${value}) == string`,
        ...(node.enum ? [`${value} in [${node.enum.map(celString).join(", ")}]`] : []),
        ...(node.minLength !== undefined ? [`size(${value}) >= ${node.minLength}`] : []),
        ...(node.maxLength !== undefined ? [`size(${value}) <= ${node.maxLength}`] : []),
        ...(node.pattern ? [`${value}.matches(${celString(node.pattern.regex.source)})`] : []),
        ...refinements,
      ];
    case "boolean":
      return [`type(${value}) == bool`, ...refinements];
    case "integer":
      return [
        `type(${value}) == int`,
        ...(node.minimum !== undefined ? [`${value} >= ${node.minimum}`] : []),
        ...refinements,
      ];
    case "array": {
      const item = `${value}_item`.replace(/[^A-Za-z0-9_]/g, "_");
      return [
        `type(${value}) == list`,
        ...(node.minItems !== undefined ? [`size(${value}) >= ${node.minItems}`] : []),
        ...(node.maxItems !== undefined ? [`size(${value}) <= ${node.maxItems}`] : []),
        `${value}.all(${item}, ${celConditions(node.items, item).join(" && ")})`,
        ...refinements,
      ];
    }
    default:
      throw new Error(`no admission rule for a ${node.kind} field`);
  }
}

/** What a value of the node must look like, in the words of the docs. */
function hintOf(node: SchemaNode): string {
  const parts: string[] = [];
  if (node.kind === "string") {
    if (node.enum)
      parts.push(`one of ${node.enum.map((value) => JSON.stringify(value)).join(", ")}`);
    else parts.push("a string");
    if (node.pattern) parts.push(node.pattern.hint);
    if (node.maxLength !== undefined) parts.push(`at most ${node.maxLength} characters`);
  } else if (node.kind === "array") {
    parts.push(
      `a list${node.maxItems !== undefined ? ` of at most ${node.maxItems}` : ""} of ${hintOf(node.items)}`,
    );
  } else {
    parts.push(`a ${node.kind}`);
  }
  for (const refinement of node.refinements) parts.push(refinement.description);
  return parts.join(", ");
}

interface Validation {
  expression: string;
  message: string;
  reason: "Invalid";
}

/** One validation per rule of the VfConfig schema, over every VfConfig of the object. */
export function vfConfigValidations(schema: ObjectNode): Validation[] {
  const known = Object.keys(schema.properties);
  const all = (condition: string) => `variables.vfConfigs.all(p, ${condition})`;
  const validations: Validation[] = [
    {
      expression: all(`p.all(k, k in [${known.map(celString).join(", ")}])`),
      message: `${VF_CONFIG_KIND}: unknown field; known fields are ${known.join(", ")}`,
      reason: "Invalid",
    },
  ];
  for (const [field, node] of Object.entries(schema.properties)) {
    const conditions = celConditions(node, `p.${field}`).join(" && ");
    validations.push({
      expression: all(
        node.optional ? `!has(p.${field}) || (${conditions})` : `has(p.${field}) && ${conditions}`,
      ),
      message: `${VF_CONFIG_KIND} ${field}: ${node.optional ? "" : "required, "}must be ${hintOf(node)}`,
      reason: "Invalid",
    });
  }
  return validations;
}

/**
 * A ValidatingAdmissionPolicy (CEL in the API server, no webhook) that refuses a
 * ResourceClaim, ResourceClaimTemplate or DeviceClass whose opaque config for this driver is
 * not a valid VfConfig, with the rules of the same schema the node's decoder uses. What only
 * the node can know (the NetworkAttachmentDefinition, cross-namespace permission) is left
 * to prepare.
 */
export function renderVfConfigAdmissionPolicy(): string {
  const configsOf = [
    "request.kind.kind == 'ResourceClaim' ? (has(object.spec.devices) && has(object.spec.devices.config) ? object.spec.devices.config : [])",
    ": request.kind.kind == 'ResourceClaimTemplate' ? (has(object.spec.spec.devices) && has(object.spec.spec.devices.config) ? object.spec.spec.devices.config : [])",
    ": (has(object.spec.config) ? object.spec.config : [])",
  ].join(" ");
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: `${DRIVER_NAME}-vfconfig` },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: ["resource.k8s.io"],
            apiVersions: ["*"],
            operations: ["CREATE", "UPDATE"],
            resources: ["resourceclaims", "resourceclaimtemplates", "deviceclasses"],
          },
        ],
      },
      variables: [
        { name: "configs", expression: configsOf },
        {
          name: "vfConfigs",
          expression: `variables.configs.filter(c, has(c.opaque) && c.opaque.driver == '${DRIVER_NAME}' && has(c.opaque.parameters)).map(c, c.opaque.parameters)`,
        },
      ],
      validations: vfConfigValidations(vfConfigSchema.node as ObjectNode),
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: `${DRIVER_NAME}-vfconfig` },
    spec: { policyName: `${DRIVER_NAME}-vfconfig`, validationActions: ["Deny"] },
  };
  return [
    "# Generated from api/v1alpha1/vf-config.ts by api/admission.ts (make generate): do not edit.",
    "{{- if .Values.admission.vfConfigPolicy }}",
    stringify(policy, { lineWidth: 0 }).trimEnd(),
    "---",
    stringify(binding, { lineWidth: 0 }).trimEnd(),
    "{{- end }}",
    "",
  ].join("\n");
}
