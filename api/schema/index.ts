export {
  array,
  boolean,
  integer,
  map,
  object,
  string,
  type AnySchema,
  type CelRule,
  type ObjectNode,
  type SchemaNode,
  type Infer,
  type ObjectSchema,
  type Pattern,
  type Refinement,
  type Schema,
  type Shape,
} from "./schema.js";
export { decode, formatIssue, SchemaError, type Issue } from "./decode.js";
export { structuralViolations, toOpenApi, type OpenApiSchema } from "./openapi.js";
export { renderTypeSections } from "./markdown.js";
