import { compileCelRule, type CompiledCelRule } from "./cel.js";

/**
 * A small schema builder: each API type is written once as a schema, and its TypeScript
 * type (`Infer`), its strict decoder (`decode.ts`), its Kubernetes structural OpenAPI
 * schema (`openapi.ts`) and its reference docs (`markdown.ts`) all come from that schema.
 *
 * Schemas are immutable: `describe`, `optional` and friends return new schemas.
 */

/** A pattern with the words the decoder and the docs use to explain it. */
export interface Pattern {
  /** Must be valid in both JavaScript and RE2: the API server checks it with Go's regexp. */
  regex: RegExp;
  /** What a matching value looks like, e.g. `4 hex digits, e.g. "8086"`. */
  hint: string;
}

/** A check the decoder runs that OpenAPI cannot express; a CRD schema must not have any. */
export interface Refinement<T> {
  /** The rule in words, for the docs. */
  description: string;
  /** Returns what is wrong with the value, or undefined when it is fine. */
  check(value: T): string | undefined;
  /**
   * The same rule in Kubernetes CEL over `self`, for admission policies (api/admission.ts):
   * true when the value is fine. Tests hold the two to the same verdicts.
   */
  cel?: string;
}

/** A CEL rule, emitted as `x-kubernetes-validations` and also run by the decoder. */
export interface CelRule {
  /** CEL over `self`, the value the rule sits on. */
  rule: string;
  /** Shown when the rule is false; say what to change. */
  message: string;
}

interface NodeBase {
  description: string | undefined;
  optional: boolean;
  refinements: readonly Refinement<never>[];
}

export interface StringNode extends NodeBase {
  kind: "string";
  pattern: Pattern | undefined;
  minLength: number | undefined;
  maxLength: number | undefined;
  enum: readonly string[] | undefined;
  format: "date-time" | undefined;
}

export interface IntegerNode extends NodeBase {
  kind: "integer";
  format: "int32" | "int64";
  minimum: number | undefined;
}

export interface BooleanNode extends NodeBase {
  kind: "boolean";
}

/** `atomic` lists are replaced whole; `map` lists have items unique by the key fields. */
export type ListType = { type: "atomic" } | { type: "map"; keys: readonly string[] };

export interface ArrayNode extends NodeBase {
  kind: "array";
  items: SchemaNode;
  minItems: number | undefined;
  maxItems: number | undefined;
  listType: ListType;
  rules: readonly CompiledCelRule[];
}

export interface ObjectNode extends NodeBase {
  kind: "object";
  properties: Readonly<Record<string, SchemaNode>>;
  /** Section title in the reference docs; untitled objects are documented inline. */
  title: string | undefined;
  /** `reject` for our own types; `strip` for objects owned elsewhere (object metadata). */
  unknownFields: "reject" | "strip";
  /** Where an object owned elsewhere is documented; the docs link there instead of listing fields. */
  documentedAt: string | undefined;
  rules: readonly CompiledCelRule[];
}

/** A string-keyed map (`additionalProperties`), e.g. a node selector. */
export interface MapNode extends NodeBase {
  kind: "map";
  values: SchemaNode;
  maxProperties: number | undefined;
}

export type SchemaNode = StringNode | IntegerNode | BooleanNode | ArrayNode | ObjectNode | MapNode;

declare const output: unique symbol;

/**
 * A schema for values of type `T`; `Optional` says whether an object may omit the field.
 * The type parameters exist only for inference: `output` is never set at run time.
 */
export interface Schema<T, Optional extends boolean = false> {
  readonly node: SchemaNode;
  readonly [output]?: { type: T; optional: Optional };
  describe(description: string): Schema<T, Optional>;
  optional(): Schema<T, true>;
  refine(refinement: Refinement<T>): Schema<T, Optional>;
}

export type AnySchema = Schema<unknown, boolean>;

/** The decoded type of a schema. */
export type Infer<S extends AnySchema> = S extends Schema<infer T, boolean> ? T : never;

export type Shape = Record<string, AnySchema>;

type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends Schema<unknown, true> ? K : never;
}[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type Flatten<T> = { [K in keyof T]: T[K] } & {};

export type ObjectOutput<S extends Shape> = Flatten<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

export interface ObjectSchema<S extends Shape, Optional extends boolean = false> extends Schema<
  ObjectOutput<S>,
  Optional
> {
  readonly shape: S;
  describe(description: string): ObjectSchema<S, Optional>;
  optional(): ObjectSchema<S, true>;
}

function wrap<T, Optional extends boolean = false>(node: SchemaNode): Schema<T, Optional> {
  return {
    node,
    describe: (description) => wrap<T, Optional>({ ...node, description }),
    optional: () => wrap<T, true>({ ...node, optional: true }),
    refine: (refinement) =>
      wrap<T, Optional>({
        ...node,
        refinements: [...node.refinements, refinement],
      }),
  };
}

const base = { description: undefined, optional: false, refinements: [] } as const;

export interface StringOptions {
  pattern?: Pattern;
  minLength?: number;
  maxLength?: number;
  /** `date-time`: RFC 3339, as metav1.Time serialises. */
  format?: "date-time";
}

/** With `enum`, only the listed values are allowed and the inferred type narrows to them. */
export function string<const E extends readonly [string, ...string[]]>(
  options: StringOptions & { enum: E },
): Schema<E[number]>;
export function string(options?: StringOptions): Schema<string>;
export function string(options: StringOptions & { enum?: readonly string[] } = {}): Schema<string> {
  return wrap({
    ...base,
    kind: "string",
    pattern: options.pattern,
    minLength: options.minLength,
    maxLength: options.maxLength,
    enum: options.enum,
    format: options.format,
  });
}

export function integer(
  options: { minimum?: number; format?: "int32" | "int64" } = {},
): Schema<number> {
  return wrap({
    ...base,
    kind: "integer",
    format: options.format ?? "int64",
    minimum: options.minimum,
  });
}

export function boolean(): Schema<boolean> {
  return wrap({ ...base, kind: "boolean" });
}

export interface ArrayOptions {
  minItems?: number;
  maxItems?: number;
  listType?: ListType;
  rules?: readonly CelRule[];
}

export function array<T>(items: Schema<T, boolean>, options: ArrayOptions = {}): Schema<T[]> {
  return wrap({
    ...base,
    kind: "array",
    items: items.node,
    minItems: options.minItems,
    maxItems: options.maxItems,
    listType: options.listType ?? { type: "atomic" },
    rules: (options.rules ?? []).map(compileCelRule),
  });
}

export interface ObjectOptions {
  title?: string;
  unknownFields?: "reject" | "strip";
  documentedAt?: string;
  rules?: readonly CelRule[];
}

export function object<S extends Shape>(shape: S, options: ObjectOptions = {}): ObjectSchema<S> {
  const properties = Object.fromEntries(Object.entries(shape).map(([key, s]) => [key, s.node]));
  return objectSchema(shape, {
    ...base,
    kind: "object",
    properties,
    title: options.title,
    unknownFields: options.unknownFields ?? "reject",
    documentedAt: options.documentedAt,
    rules: (options.rules ?? []).map(compileCelRule),
  });
}

function objectSchema<S extends Shape, Optional extends boolean>(
  shape: S,
  node: ObjectNode,
): ObjectSchema<S, Optional> {
  return {
    node,
    shape,
    describe: (description) => objectSchema<S, Optional>(shape, { ...node, description }),
    optional: () => objectSchema<S, true>(shape, { ...node, optional: true }),
    refine: (refinement) =>
      objectSchema<S, Optional>(shape, {
        ...node,
        refinements: [...node.refinements, refinement],
      }),
  };
}

export function map<T>(
  values: Schema<T, boolean>,
  options: { maxProperties?: number } = {},
): Schema<Record<string, T>> {
  return wrap({ ...base, kind: "map", values: values.node, maxProperties: options.maxProperties });
}
