import type { CompiledCelRule } from "./cel.js";
import type {
  ArrayNode,
  IntegerNode,
  MapNode,
  ObjectNode,
  Schema,
  SchemaNode,
  StringNode,
} from "./schema.js";

/** One thing wrong with a value, at a path like `spec.configs[0].resourceName`. */
export interface Issue {
  path: string;
  message: string;
}

/** Thrown by `decode` with every issue found, not only the first. */
export class SchemaError extends Error {
  constructor(readonly issues: readonly Issue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "SchemaError";
  }
}

export function formatIssue(issue: Issue): string {
  return issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`;
}

/**
 * Checks `value` against the schema and returns it typed: unknown fields are rejected
 * (or dropped where the schema says `strip`), absent and `null` optional fields are left
 * out, and CEL rules run as the API server would run them. `path` prefixes every issue.
 */
export function decode<T>(schema: Schema<T>, value: unknown, path = ""): T {
  const issues: Issue[] = [];
  const decoded = decodeNode(schema.node, value, path, issues);
  if (issues.length > 0) throw new SchemaError(issues);
  // The builders tie each node to its type parameter; this is the one place that trusts them.
  return decoded as T;
}

function decodeNode(node: SchemaNode, value: unknown, path: string, issues: Issue[]): unknown {
  const before = issues.length;
  const decoded = decodeByKind(node, value, path, issues);
  // Refinements and rules assume a well-formed value; skip them when it is not.
  if (issues.length === before) {
    for (const refinement of node.refinements) {
      // Refinements are typed by their schema's value, which `decoded` is once it has no issues.
      const problem = refinement.check(decoded as never);
      if (problem !== undefined) issues.push({ path, message: problem });
    }
  }
  return decoded;
}

function decodeByKind(node: SchemaNode, value: unknown, path: string, issues: Issue[]): unknown {
  switch (node.kind) {
    case "string":
      return decodeString(node, value, path, issues);
    case "integer":
      return decodeInteger(node, value, path, issues);
    case "boolean":
      if (typeof value !== "boolean") issues.push(wrongType(path, "a boolean", value));
      return value;
    case "array":
      return decodeArray(node, value, path, issues);
    case "object":
      return decodeObject(node, value, path, issues);
    case "map":
      return decodeMap(node, value, path, issues);
  }
}

function decodeString(node: StringNode, value: unknown, path: string, issues: Issue[]): unknown {
  if (typeof value !== "string") {
    issues.push(wrongType(path, "a string", value));
    return value;
  }
  const problem = stringProblem(node, value);
  if (problem !== undefined) issues.push({ path, message: problem });
  return value;
}

function stringProblem(node: StringNode, value: string): string | undefined {
  const quoted = JSON.stringify(value);
  if (node.enum !== undefined && !node.enum.includes(value)) {
    const allowed = node.enum.map((v) => JSON.stringify(v));
    return `must be ${allowed.length === 1 ? "" : "one of "}${allowed.join(", ")}; got ${quoted}`;
  }
  // The API server counts characters (code points), not UTF-16 units.
  const length = [...value].length;
  if (node.minLength !== undefined && length < node.minLength) {
    return `must be at least ${node.minLength} characters long; got ${quoted}`;
  }
  if (node.maxLength !== undefined && length > node.maxLength) {
    return `must be at most ${node.maxLength} characters long; got ${length}`;
  }
  if (node.pattern !== undefined && !node.pattern.regex.test(value)) {
    return `must be ${node.pattern.hint}; got ${quoted}`;
  }
  if (node.format === "date-time" && !isRfc3339(value)) {
    return `must be an RFC 3339 time such as "2026-01-02T15:04:05Z"; got ${quoted}`;
  }
  return undefined;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function isRfc3339(value: string): boolean {
  return RFC3339.test(value) && !Number.isNaN(Date.parse(value));
}

const INT32_MAX = 2 ** 31 - 1;

function decodeInteger(node: IntegerNode, value: unknown, path: string, issues: Issue[]): unknown {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    issues.push(wrongType(path, "an integer", value));
  } else if (node.format === "int32" && Math.abs(value) > INT32_MAX) {
    issues.push({ path, message: `must fit in 32 bits; got ${value}` });
  } else if (node.minimum !== undefined && value < node.minimum) {
    issues.push({ path, message: `must be at least ${node.minimum}; got ${value}` });
  }
  return value;
}

function decodeArray(node: ArrayNode, value: unknown, path: string, issues: Issue[]): unknown {
  if (!Array.isArray(value)) {
    issues.push(wrongType(path, "a list", value));
    return value;
  }
  const before = issues.length;
  const items = value.map((item: unknown, index) =>
    decodeNode(node.items, item, `${path}[${index}]`, issues),
  );
  if (node.minItems !== undefined && items.length < node.minItems) {
    issues.push({ path, message: `must have at least ${node.minItems} item(s)` });
  }
  if (node.maxItems !== undefined && items.length > node.maxItems) {
    issues.push({ path, message: `must have at most ${node.maxItems} items; got ${items.length}` });
  }
  if (node.listType.type === "map") checkMapKeys(node.listType.keys, items, path, issues);
  if (issues.length === before) runRules(node.rules, items, path, issues);
  return items;
}

/** A `map` list holds at most one item per key, as the API server enforces. */
function checkMapKeys(keys: readonly string[], items: unknown[], path: string, issues: Issue[]) {
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const record = item as Record<string, unknown>;
    const key = JSON.stringify(keys.map((k) => record[k]));
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else {
      const named = keys.map((k) => `${k}=${JSON.stringify(record[k])}`).join(", ");
      issues.push({
        path: `${path}[${index}]`,
        message: `duplicate of ${path}[${first}] (${named})`,
      });
    }
  });
}

function decodeObject(node: ObjectNode, value: unknown, path: string, issues: Issue[]): unknown {
  if (!isPlainObject(value)) {
    issues.push(wrongType(path, "an object", value));
    return value;
  }
  const before = issues.length;
  if (node.unknownFields === "reject") {
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(node.properties, key)) {
        issues.push({
          path: field(path, key),
          message: unknownFieldMessage(key, Object.keys(node.properties)),
        });
      }
    }
  }
  const decoded: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(node.properties)) {
    const childValue = Object.hasOwn(value, key) ? value[key] : undefined;
    // Go's JSON decoding treats null as absent; so do we.
    if (childValue === undefined || childValue === null) {
      if (!child.optional)
        issues.push({ path: field(path, key), message: "required field is missing" });
      continue;
    }
    decoded[key] = decodeNode(child, childValue, field(path, key), issues);
  }
  if (issues.length === before) runRules(node.rules, decoded, path, issues);
  return decoded;
}

function decodeMap(node: MapNode, value: unknown, path: string, issues: Issue[]): unknown {
  if (!isPlainObject(value)) {
    issues.push(wrongType(path, "an object", value));
    return value;
  }
  const entries = Object.entries(value);
  if (node.maxProperties !== undefined && entries.length > node.maxProperties) {
    issues.push({
      path,
      message: `must have at most ${node.maxProperties} keys; got ${entries.length}`,
    });
    return value;
  }
  return Object.fromEntries(
    entries.map(([key, v]) => [
      key,
      decodeNode(node.values, v, `${path}[${JSON.stringify(key)}]`, issues),
    ]),
  );
}

function runRules(rules: readonly CompiledCelRule[], self: unknown, path: string, issues: Issue[]) {
  for (const rule of rules) {
    const problem = rule.violation(self);
    if (problem !== undefined) issues.push({ path, message: problem });
  }
}

/** Longest key shown in a path: longer (unknown, maybe hostile) keys are cut. */
const MAX_SHOWN_KEY = 64;

function field(path: string, key: string): string {
  const shown = key.length > MAX_SHOWN_KEY ? `${key.slice(0, MAX_SHOWN_KEY)}…` : key;
  return path === "" ? shown : `${path}.${shown}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function wrongType(path: string, expected: string, value: unknown): Issue {
  return { path, message: `must be ${expected}; got ${jsonType(value)}` };
}

function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "number") return `the number ${value}`;
  return `${typeof value} ${String(value)}`;
}

export function unknownFieldMessage(key: string, known: readonly string[]): string {
  const suggestion = closest(key, known);
  return suggestion === undefined
    ? `unknown field (known fields: ${known.join(", ")})`
    : `unknown field (did you mean "${suggestion}"?)`;
}

/** The known name nearest to a misspelt one, if any is near enough to be a likely typo. */
export function closest(key: string, known: readonly string[]): string | undefined {
  // No field name is that long: no typo to guess, and no quadratic work on hostile input.
  if (key.length > MAX_SHOWN_KEY) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const threshold = Math.max(1, Math.floor(key.length / 3));
  return bestDistance <= threshold ? best : undefined;
}

/** Levenshtein distance with a single rolling row. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      const substitution = diagonal + (a[i - 1] === b[j - 1] ? 0 : 1);
      row[j] = Math.min(above + 1, row[j - 1]! + 1, substitution);
      diagonal = above;
    }
  }
  return row[b.length]!;
}
