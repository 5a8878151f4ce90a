import type { AnySchema, ArrayNode, ObjectNode, SchemaNode, StringNode } from "./schema.js";

/**
 * A Kubernetes structural schema node (`JSONSchemaProps`), as much of it as the builder
 * produces. Structural means: `type` on every node, no `$ref`, and never `properties`
 * together with `additionalProperties`.
 */
export interface OpenApiSchema {
  description?: string;
  type: "string" | "integer" | "boolean" | "array" | "object";
  format?: string;
  enum?: string[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  items?: OpenApiSchema;
  minItems?: number;
  maxItems?: number;
  "x-kubernetes-list-type"?: "atomic" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: OpenApiSchema;
  maxProperties?: number;
  "x-kubernetes-validations"?: { rule: string; message: string }[];
}

/**
 * The OpenAPI v3 structural schema of a CRD subtree. Throws on a decoder-only refinement,
 * which the API server could not enforce: express such checks as CEL rules instead.
 */
export function toOpenApi(schema: AnySchema, path = ""): OpenApiSchema {
  return nodeToOpenApi(schema.node, path);
}

function nodeToOpenApi(node: SchemaNode, path: string): OpenApiSchema {
  const refinement = node.refinements[0];
  if (refinement !== undefined) {
    throw new Error(
      `${path || "<root>"}: the check "${refinement.description}" runs only in the decoder; ` +
        "a CRD schema needs it as a pattern or CEL rule so the API server enforces it",
    );
  }
  const described = node.description === undefined ? {} : { description: node.description };
  switch (node.kind) {
    case "string":
      return { ...described, ...stringKeywords(node) };
    case "integer":
      return {
        ...described,
        type: "integer",
        format: node.format,
        ...defined("minimum", node.minimum),
      };
    case "boolean":
      return { ...described, type: "boolean" };
    case "array":
      return { ...described, ...arrayKeywords(node, path) };
    case "object":
      return { ...described, ...objectKeywords(node, path) };
    case "map":
      return {
        ...described,
        type: "object",
        additionalProperties: nodeToOpenApi(node.values, `${path}[*]`),
        ...defined("maxProperties", node.maxProperties),
      };
  }
}

function stringKeywords(node: StringNode): OpenApiSchema {
  return {
    type: "string",
    ...defined("format", node.format),
    ...defined("enum", node.enum && [...node.enum]),
    ...defined("pattern", node.pattern?.regex.source),
    ...defined("minLength", node.minLength),
    ...defined("maxLength", node.maxLength),
  };
}

function arrayKeywords(node: ArrayNode, path: string): OpenApiSchema {
  return {
    type: "array",
    items: nodeToOpenApi(node.items, `${path}[*]`),
    ...defined("minItems", node.minItems),
    ...defined("maxItems", node.maxItems),
    ...(node.listType.type === "map"
      ? {
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": [...node.listType.keys],
        }
      : {}),
    ...validations(node.rules),
  };
}

function objectKeywords(node: ObjectNode, path: string): OpenApiSchema {
  const entries = Object.entries(node.properties);
  const required = entries.filter(([, child]) => !child.optional).map(([key]) => key);
  return {
    type: "object",
    properties: Object.fromEntries(
      entries.map(([key, child]) => [key, nodeToOpenApi(child, path ? `${path}.${key}` : key)]),
    ),
    ...(required.length > 0 ? { required } : {}),
    ...validations(node.rules),
  };
}

function validations(rules: ArrayNode["rules"]): Pick<OpenApiSchema, "x-kubernetes-validations"> {
  if (rules.length === 0) return {};
  return { "x-kubernetes-validations": rules.map(({ rule, message }) => ({ rule, message })) };
}

/** `{ [key]: value }` when the value is set, `{}` otherwise: keeps absent keywords out. */
function defined<K extends keyof OpenApiSchema>(
  key: K,
  value: OpenApiSchema[K] | undefined,
): Partial<OpenApiSchema> {
  return value === undefined ? {} : { [key]: value };
}

/**
 * What keeps a schema from being structural, as the API server would refuse it: a node
 * without `type`, `$ref`, `properties` together with `additionalProperties`, or a
 * `required` field that is not a property. Empty when the schema is fine.
 */
export function structuralViolations(schema: OpenApiSchema, path = "<root>"): string[] {
  const own: string[] = [];
  if (typeof schema.type !== "string") own.push(`${path}: no type`);
  if ("$ref" in schema) own.push(`${path}: $ref is not allowed`);
  if (schema.properties !== undefined && schema.additionalProperties !== undefined) {
    own.push(`${path}: properties and additionalProperties together`);
  }
  for (const key of schema.required ?? []) {
    if (schema.properties?.[key] === undefined)
      own.push(`${path}: required ${key} is not a property`);
  }
  const children: [string, OpenApiSchema][] = Object.entries(schema.properties ?? {}).map(
    ([key, child]) => [`${path}.${key}`, child],
  );
  if (schema.items !== undefined) children.push([`${path}[*]`, schema.items]);
  if (schema.additionalProperties !== undefined) {
    children.push([`${path}{*}`, schema.additionalProperties]);
  }
  return [
    ...own,
    ...children.flatMap(([childPath, child]) => structuralViolations(child, childPath)),
  ];
}
