import { Environment, serialize, type ASTNode } from "@marcbachmann/cel-js";
import { Quantity, Semver, registerKubernetesLibrary } from "./cel-library.js";

/**
 * A device as a DRA selector sees it (k8s.io/dynamic-resource-allocation/cel, DeviceMatches):
 * attribute and capacity names split into domain and id, a name without a domain put under
 * the driver's; values as CEL values (int as bigint, version as Semver, capacity as Quantity).
 */
export interface CelDevice {
  driver: string;
  allowMultipleAllocations: boolean;
  attributes: Map<string, Map<string, CelAttribute>>;
  capacity: Map<string, Map<string, Quantity>>;
}

export type CelAttribute = string | bigint | boolean | Semver;

/** Why a device does not pass a selector, in the operator's terms. */
export type FailureKind =
  /** The expression ran and gave false. */
  | "false"
  /** A runtime error: an attribute (or domain) the expression reads is not published. */
  | "missing-attribute"
  /** A runtime error: an operator or function applied to a value of the wrong type. */
  | "type-mismatch"
  /** Any other runtime error (overflow, bad argument, a result that is not a bool). */
  | "runtime-error";

export type SelectorOutcome =
  | { result: "pass" }
  | { result: "fail"; kind: FailureKind; message: string; key?: string }
  /** The expression uses a Kubernetes CEL function this evaluator does not have. */
  | { result: "unknown"; message: string };

/** `device.attributes[DOMAIN].NAME` (or the capacity map) read somewhere in an expression. */
export interface AttributeReference {
  map: "attributes" | "capacity";
  domain: string;
  name: string;
}

/** `ATTRIBUTE op LITERAL` (either side) in an expression. */
export interface Comparison extends AttributeReference {
  op: string;
  literal: string | bigint | number | boolean | null;
}

export interface CompiledSelector {
  expression: string;
  /** Set when the expression does not compile (the API server refuses it too). */
  compileError?: string;
  /** Set when it uses a function this evaluator lacks: results are unknown. */
  unsupported?: string;
  references: AttributeReference[];
  comparisons: Comparison[];
  evaluate(device: CelDevice): SelectorOutcome;
}

/** Longest expression compiled; the API's limit is 10 Ki. */
const MAX_EXPRESSION = 10 * 1024;

/**
 * Functions of the Kubernetes CEL base environment (k8s.io/apiserver/pkg/cel/environment)
 * that this evaluator does not implement: an expression using one is reported as "cannot
 * tell here" rather than guessed.
 */
const NOT_IMPLEMENTED = [
  "ip",
  "cidr",
  "isIP",
  "isCIDR",
  "url",
  "isURL",
  "format",
  "quote",
  "slice",
  "flatten",
  "distinct",
  "range",
  "sort",
  "sortBy",
  "first",
  "last",
  "transformList",
  "transformMap",
  "transformMapEntry",
  "sets",
  "strings",
  "lists",
  "includes",
];

/** `m.all(k, v, ...)` and kin (cel-go's ext.TwoVarComprehensions), which the evaluator lacks. */
const TWO_VARIABLE_COMPREHENSION =
  /\.(all|exists|existsOne|exists_one|transformList|transformMap|transformMapEntry)\(\s*[A-Za-z_]\w*\s*,\s*[A-Za-z_]\w*\s*,/;

let environment: Environment | undefined;

/** One environment for every selector: `device` typed as the scheduler declares it. */
function celEnvironment(): Environment {
  environment ??= registerKubernetesLibrary(
    new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false }),
  ).registerVariable("device", {
    schema: {
      driver: "string",
      allowMultipleAllocations: "bool",
      attributes: "map<string, map<string, dyn>>",
      capacity: "map<string, map<string, dyn>>",
    },
  });
  return environment;
}

/**
 * Compiles one selector expression. Two differences of the evaluator from the scheduler's
 * CEL are bridged here: `has()` on a map reached by an index (`has(m["d"].x)`) is rewritten
 * to the equivalent `"x" in m["d"]`, and a domain the expression names but the device does
 * not publish reads as an empty map, as the scheduler's attribute map returns for any
 * missing domain (unless the expression asks `"domain" in device.attributes`, which must
 * stay false).
 */
export function compileSelector(expression: string): CompiledSelector {
  const base = { expression, references: [], comparisons: [] };
  if (expression.length > MAX_EXPRESSION) {
    return { ...base, compileError: "longer than 10 KiB", evaluate: () => unknown("too long") };
  }
  const env = celEnvironment();
  let program: ReturnType<Environment["parse"]>;
  let ast: ASTNode;
  try {
    ast = rewriteHas(env.parse(expression).ast);
    program = env.parse(serialize(ast));
  } catch (error) {
    return { ...base, compileError: firstLine(error), evaluate: () => unknown(firstLine(error)) };
  }
  const checked = env.check(serialize(ast));
  if (!checked.valid) {
    const message = firstLine(checked.error);
    const missing = TWO_VARIABLE_COMPREHENSION.test(expression)
      ? "a two-variable comprehension (all/exists with key and value)"
      : notImplemented(message);
    if (missing !== undefined) {
      const unsupported = `uses ${missing.includes(" ") ? missing : `${missing}()`}, which kubectl sriov explain cannot evaluate`;
      return { ...base, unsupported, evaluate: () => unknown(unsupported) };
    }
    return { ...base, compileError: message, evaluate: () => unknown(message) };
  }
  const references = attributeReferences(ast);
  const named = {
    attributes: domainsNamed(ast, "attributes"),
    capacity: domainsNamed(ast, "capacity"),
  };
  return {
    expression,
    references,
    comparisons: comparisons(ast),
    evaluate(device) {
      let result: unknown;
      try {
        result = program({ device: withNamedDomains(device, named) });
      } catch (error) {
        return classify(error);
      }
      if (result === true) return { result: "pass" };
      if (result === false) return { result: "fail", kind: "false", message: "false" };
      return {
        result: "fail",
        kind: "runtime-error",
        message: `the result is not a bool: ${describe(result)}`,
      };
    },
  };
}

function unknown(message: string): SelectorOutcome {
  return { result: "unknown", message };
}

function classify(error: unknown): SelectorOutcome {
  const message = firstLine(error);
  const code = (error as { code?: unknown }).code;
  const key = /^No such key: (.*)$/.exec(message)?.[1];
  if (code === "no_such_key" && key !== undefined && !key.startsWith("index out of bounds")) {
    return { result: "fail", kind: "missing-attribute", message: `no such key: ${key}`, key };
  }
  if (code === "no_such_overload" || code === "no_matching_overload") {
    const missing = notImplemented(message);
    if (missing !== undefined) {
      return unknown(`uses ${missing}(), which kubectl sriov explain cannot evaluate`);
    }
    return { result: "fail", kind: "type-mismatch", message };
  }
  return { result: "fail", kind: "runtime-error", message };
}

function notImplemented(message: string): string | undefined {
  return NOT_IMPLEMENTED.find((name) =>
    new RegExp(`(^|[^A-Za-z0-9_])${name}\\(|'${name}'|: ${name}$|\\b${name}\\.`).test(message),
  );
}

function describe(value: unknown): string {
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "bigint") return `the int ${value}`;
  return typeof value;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}

const EMPTY = new Map<string, never>();

/** The device with an empty map under every domain the expression names but it lacks. */
function withNamedDomains(
  device: CelDevice,
  named: Record<"attributes" | "capacity", Set<string>>,
): CelDevice {
  const fill = <T>(maps: Map<string, Map<string, T>>, domains: Set<string>) => {
    const missing = [...domains].filter((domain) => !maps.has(domain));
    if (missing.length === 0) return maps;
    const filled = new Map(maps);
    for (const domain of missing) filled.set(domain, EMPTY);
    return filled;
  };
  return {
    ...device,
    attributes: fill(device.attributes, named.attributes),
    capacity: fill(device.capacity, named.capacity),
  };
}

type Node = { op: string; args: unknown };

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && "op" in value && "args" in value;
}

/** Every node of the tree, depth first. */
function* nodes(node: unknown): Generator<Node> {
  if (Array.isArray(node)) {
    for (const child of node) yield* nodes(child);
    return;
  }
  if (!isNode(node)) return;
  yield node;
  if (node.op !== "value" && node.op !== "id") yield* nodes(node.args);
}

/** `device.attributes` (or `device.capacity`). */
function isDeviceMap(node: unknown, map: "attributes" | "capacity"): boolean {
  if (!isNode(node) || node.op !== ".") return false;
  const [target, field] = node.args as [unknown, string];
  return field === map && isNode(target) && target.op === "id" && target.args === "device";
}

/** The domain of `device.attributes["d"]` / `device.attributes.d`, if `node` is one. */
function domainOf(node: unknown, map: "attributes" | "capacity"): string | undefined {
  if (!isNode(node)) return undefined;
  if (node.op === "[]") {
    const [target, index] = node.args as [unknown, unknown];
    if (isDeviceMap(target, map) && isNode(index) && index.op === "value") {
      return typeof index.args === "string" ? index.args : undefined;
    }
  }
  if (node.op === ".") {
    const [target, field] = node.args as [unknown, string];
    if (isDeviceMap(target, map)) return field;
  }
  return undefined;
}

/** Domains read by index or field, less those tested with `"d" in device.attributes`. */
function domainsNamed(ast: ASTNode, map: "attributes" | "capacity"): Set<string> {
  const named = new Set<string>();
  const tested = new Set<string>();
  for (const node of nodes(ast)) {
    const domain = domainOf(node, map);
    if (domain !== undefined) named.add(domain);
    if (node.op === "in") {
      const [item, collection] = node.args as [unknown, unknown];
      if (isDeviceMap(collection, map) && isNode(item) && typeof item.args === "string") {
        tested.add(item.args);
      }
    }
  }
  for (const domain of tested) named.delete(domain);
  return named;
}

/** The attribute a node reads: `device.attributes["d"].name` or `...["d"]["name"]`. */
function referenceOf(node: unknown): AttributeReference | undefined {
  if (!isNode(node) || (node.op !== "." && node.op !== "[]" && node.op !== ".?")) return undefined;
  const [target, key] = node.args as [unknown, unknown];
  const name = node.op === "[]" ? (isNode(key) && key.op === "value" ? key.args : undefined) : key;
  if (typeof name !== "string") return undefined;
  for (const map of ["attributes", "capacity"] as const) {
    const domain = domainOf(target, map);
    if (domain !== undefined) return { map, domain, name };
  }
  return undefined;
}

function attributeReferences(ast: ASTNode): AttributeReference[] {
  const found = new Map<string, AttributeReference>();
  for (const node of nodes(ast)) {
    const reference = referenceOf(node);
    if (reference !== undefined) {
      found.set(`${reference.map}/${reference.domain}/${reference.name}`, reference);
    }
    // `"name" in device.attributes["d"]` and has() (rewritten to it) read `name` too.
    if (node.op === "in") {
      const [item, collection] = node.args as [unknown, unknown];
      for (const map of ["attributes", "capacity"] as const) {
        const domain = domainOf(collection, map);
        if (domain !== undefined && isNode(item) && typeof item.args === "string") {
          found.set(`${map}/${domain}/${item.args}`, { map, domain, name: item.args });
        }
      }
    }
  }
  return [...found.values()];
}

const COMPARISONS = new Set(["==", "!=", "<", "<=", ">", ">="]);

function comparisons(ast: ASTNode): Comparison[] {
  const found: Comparison[] = [];
  for (const node of nodes(ast)) {
    if (!COMPARISONS.has(node.op)) continue;
    const [left, right] = node.args as [unknown, unknown];
    for (const [side, other] of [
      [left, right],
      [right, left],
    ] as const) {
      const reference = referenceOf(side);
      if (reference === undefined || !isNode(other) || other.op !== "value") continue;
      const literal = other.args;
      if (
        typeof literal === "string" ||
        typeof literal === "bigint" ||
        typeof literal === "number" ||
        typeof literal === "boolean" ||
        literal === null
      ) {
        found.push({ ...reference, op: node.op, literal });
      }
    }
  }
  return found;
}

/** `has(x.f)` where `x` is not a plain field chain from a variable, as `"f" in x`. */
function rewriteHas(ast: ASTNode): ASTNode {
  let changed = false;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (!isNode(node) || node.op === "value" || node.op === "id") return node;
    if (node.op === "call") {
      const [name, callArgs] = node.args as [string, unknown[]];
      const [argument] = callArgs;
      if (name === "has" && callArgs.length === 1 && isNode(argument) && argument.op === ".") {
        const [target, field] = argument.args as [unknown, string];
        if (!isFieldChain(target)) {
          changed = true;
          return { op: "in", args: [{ op: "value", args: field }, rewrite(target)] };
        }
      }
    }
    return { op: node.op, args: rewrite(node.args) };
  };
  const rewritten = rewrite(ast) as ASTNode;
  return changed ? rewritten : ast;
}

function isFieldChain(node: unknown): boolean {
  if (!isNode(node)) return false;
  if (node.op === "id") return true;
  return node.op === "." && isFieldChain((node.args as [unknown, string])[0]);
}
