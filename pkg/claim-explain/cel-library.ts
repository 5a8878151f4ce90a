import type { Environment } from "@marcbachmann/cel-js";

/**
 * The parts of the Kubernetes CEL library a DRA selector uses that the evaluator lacks:
 * `semver` (k8s.io/apiserver/pkg/cel/library/semverlib.go, strict SemVer 2.0.0 parsing, an
 * optional normalising form), `quantity` (resource.Quantity values, exact arithmetic), and
 * the string and list extensions of the base environment that are missing from it.
 */

/** A semantic version, `semver("1.2.3")` or a published `{version: ...}` attribute. */
export class Semver {
  constructor(
    readonly major: bigint,
    readonly minor: bigint,
    readonly patch: bigint,
    readonly pre: readonly string[],
    readonly text: string,
  ) {}
}

const NUMERIC = /^(0|[1-9][0-9]*)$/;
const IDENTIFIER = /^[0-9A-Za-z-]+$/;

/** Strict SemVer 2.0.0, as the scheduler's parser: no `v`, no leading zeros, three parts. */
export function parseSemver(text: string): Semver | undefined {
  if (text.length > 256) return undefined;
  const plus = text.indexOf("+");
  const core = plus === -1 ? text : text.slice(0, plus);
  const build = plus === -1 ? undefined : text.slice(plus + 1);
  if (build !== undefined && !build.split(".").every((part) => IDENTIFIER.test(part))) {
    return undefined;
  }
  const dash = core.indexOf("-");
  const version = dash === -1 ? core : core.slice(0, dash);
  const pre = dash === -1 ? [] : core.slice(dash + 1).split(".");
  const parts = version.split(".");
  if (parts.length !== 3 || !parts.every((part) => NUMERIC.test(part))) return undefined;
  if (
    !pre.every((part) => IDENTIFIER.test(part) && (!/^[0-9]+$/.test(part) || NUMERIC.test(part)))
  ) {
    return undefined;
  }
  return new Semver(BigInt(parts[0]!), BigInt(parts[1]!), BigInt(parts[2]!), pre, text);
}

/** `semver(s, true)`: a leading `v` dropped, missing minor/patch added, leading zeros cut. */
function normalizeSemver(text: string): Semver | undefined {
  let rest = text.startsWith("v") ? text.slice(1) : text;
  const cut = rest.search(/[-+]/);
  const tail = cut === -1 ? "" : rest.slice(cut);
  rest = cut === -1 ? rest : rest.slice(0, cut);
  const parts = rest.split(".");
  if (parts.length > 3 || !parts.every((part) => /^[0-9]+$/.test(part))) return undefined;
  while (parts.length < 3) parts.push("0");
  return parseSemver(parts.map((part) => String(BigInt(part))).join(".") + tail);
}

export function compareSemver(a: Semver, b: Semver): number {
  for (const [x, y] of [
    [a.major, b.major],
    [a.minor, b.minor],
    [a.patch, b.patch],
  ] as const) {
    if (x !== y) return x < y ? -1 : 1;
  }
  if (a.pre.length === 0 || b.pre.length === 0) {
    return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  }
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const [x, y] = [a.pre[i]!, b.pre[i]!];
    if (x === y) continue;
    const [xn, yn] = [/^[0-9]+$/.test(x), /^[0-9]+$/.test(y)];
    if (xn && yn) return BigInt(x) < BigInt(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return Math.sign(a.pre.length - b.pre.length);
}

/** A resource.Quantity as an exact fraction `numerator / denominator`. */
export class Quantity {
  constructor(
    readonly numerator: bigint,
    readonly denominator: bigint,
  ) {}
}

const QUANTITY =
  /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE])([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;
const BINARY: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };
const DECIMAL: Record<string, bigint> = {
  n: -9n,
  u: -6n,
  m: -3n,
  k: 3n,
  M: 6n,
  G: 9n,
  T: 12n,
  P: 15n,
  E: 18n,
};

/** resource.ParseQuantity's grammar: a signed decimal, then a binary/decimal suffix or exponent. */
export function parseQuantity(text: string): Quantity | undefined {
  if (text.length > 64) return undefined;
  const match = QUANTITY.exec(text);
  if (match === null) return undefined;
  const [, sign, number, exponentMark, exponent, suffix] = match;
  const [whole, fraction = ""] = number!.split(".");
  let numerator = BigInt((whole || "0") + fraction) * (sign === "-" ? -1n : 1n);
  let denominator = 10n ** BigInt(fraction.length);
  let power10 = exponentMark === undefined ? 0n : BigInt(exponent!);
  if (suffix !== undefined && suffix in BINARY) numerator *= 2n ** BINARY[suffix]!;
  if (suffix !== undefined && suffix in DECIMAL) power10 += DECIMAL[suffix]!;
  if (power10 > 1000n || power10 < -1000n) return undefined;
  if (power10 >= 0n) numerator *= 10n ** power10;
  else denominator *= 10n ** -power10;
  return reduce(numerator, denominator);
}

function reduce(numerator: bigint, denominator: bigint): Quantity {
  const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
  const divisor = gcd(numerator < 0n ? -numerator : numerator, denominator) || 1n;
  return new Quantity(numerator / divisor, denominator / divisor);
}

export function compareQuantity(a: Quantity, b: Quantity): number {
  const left = a.numerator * b.denominator;
  const right = b.numerator * a.denominator;
  return left === right ? 0 : left < right ? -1 : 1;
}

function addQuantity(a: Quantity, b: Quantity, sign: bigint): Quantity {
  return reduce(
    a.numerator * b.denominator + sign * b.numerator * a.denominator,
    a.denominator * b.denominator,
  );
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** Registers semver, quantity and the missing string/list extensions on `env`. */
export function registerKubernetesLibrary(env: Environment): Environment {
  const fail = (message: string): never => {
    throw new Error(message);
  };
  const semver = (text: string) =>
    parseSemver(text) ?? fail(`could not parse ${JSON.stringify(text)} as semver`);
  const quantity = (text: string) =>
    parseQuantity(text) ?? fail(`could not parse ${JSON.stringify(text)} as a quantity`);
  const int = (value: bigint) =>
    value > INT64_MAX || value < INT64_MIN ? fail("integer overflow") : value;
  const numbers = (list: readonly unknown[]) =>
    list.every((item) => typeof item === "bigint" || typeof item === "number")
      ? (list as (bigint | number)[])
      : fail("list elements are not comparable numbers");
  const extreme = (
    list: readonly unknown[],
    pick: (a: bigint | number, b: bigint | number) => boolean,
  ) => {
    const items = numbers(list);
    if (items.length === 0) fail("min/max of an empty list");
    return items.reduce((kept, item) => (pick(item, kept) ? item : kept));
  };
  return (
    env
      .registerType("Semver", Semver)
      .registerType("Quantity", Quantity)
      .registerFunction("semver(string): Semver", semver)
      .registerFunction("semver(string, bool): Semver", (text: string, normalize: boolean) =>
        normalize ? (normalizeSemver(text) ?? semver(text)) : semver(text),
      )
      .registerFunction("isSemver(string): bool", (text: string) => parseSemver(text) !== undefined)
      .registerFunction(
        "isSemver(string, bool): bool",
        (text: string, normalize: boolean) =>
          (normalize ? normalizeSemver(text) : parseSemver(text)) !== undefined,
      )
      .registerFunction("Semver.major(): int", (v: Semver) => v.major)
      .registerFunction("Semver.minor(): int", (v: Semver) => v.minor)
      .registerFunction("Semver.patch(): int", (v: Semver) => v.patch)
      .registerFunction(
        "Semver.isGreaterThan(Semver): bool",
        (a: Semver, b: Semver) => compareSemver(a, b) > 0,
      )
      .registerFunction(
        "Semver.isLessThan(Semver): bool",
        (a: Semver, b: Semver) => compareSemver(a, b) < 0,
      )
      .registerFunction("Semver.compareTo(Semver): int", (a: Semver, b: Semver) =>
        BigInt(compareSemver(a, b)),
      )
      .registerOperator("Semver == Semver", (a: Semver, b: Semver) => compareSemver(a, b) === 0)
      .registerFunction("quantity(string): Quantity", quantity)
      .registerFunction(
        "isQuantity(string): bool",
        (text: string) => parseQuantity(text) !== undefined,
      )
      .registerFunction("Quantity.sign(): int", (q: Quantity) =>
        BigInt(q.numerator === 0n ? 0 : q.numerator < 0n ? -1 : 1),
      )
      .registerFunction(
        "Quantity.isGreaterThan(Quantity): bool",
        (a: Quantity, b: Quantity) => compareQuantity(a, b) > 0,
      )
      .registerFunction(
        "Quantity.isLessThan(Quantity): bool",
        (a: Quantity, b: Quantity) => compareQuantity(a, b) < 0,
      )
      .registerFunction("Quantity.compareTo(Quantity): int", (a: Quantity, b: Quantity) =>
        BigInt(compareQuantity(a, b)),
      )
      .registerFunction(
        "Quantity.isInteger(): bool",
        (q: Quantity) =>
          q.denominator === 1n && q.numerator <= INT64_MAX && q.numerator >= INT64_MIN,
      )
      .registerFunction("Quantity.asInteger(): int", (q: Quantity) =>
        q.denominator === 1n ? int(q.numerator) : fail("quantity is not an integer"),
      )
      .registerFunction(
        "Quantity.asApproximateFloat(): double",
        (q: Quantity) => Number(q.numerator) / Number(q.denominator),
      )
      .registerFunction("Quantity.add(Quantity): Quantity", (a: Quantity, b: Quantity) =>
        addQuantity(a, b, 1n),
      )
      .registerFunction("Quantity.add(int): Quantity", (a: Quantity, b: bigint) =>
        addQuantity(a, new Quantity(b, 1n), 1n),
      )
      .registerFunction("Quantity.sub(Quantity): Quantity", (a: Quantity, b: Quantity) =>
        addQuantity(a, b, -1n),
      )
      .registerFunction("Quantity.sub(int): Quantity", (a: Quantity, b: bigint) =>
        addQuantity(a, new Quantity(b, 1n), -1n),
      )
      .registerOperator(
        "Quantity == Quantity",
        (a: Quantity, b: Quantity) => compareQuantity(a, b) === 0,
      )
      // ext.Strings (version 2) beyond what the evaluator has.
      .registerFunction("string.charAt(int): string", (s: string, i: bigint) =>
        i < 0n || i > BigInt(s.length) ? fail("index out of range") : (s[Number(i)] ?? ""),
      )
      .registerFunction(
        "string.replace(string, string): string",
        (s: string, a: string, b: string) => s.replaceAll(a, b),
      )
      .registerFunction(
        "string.replace(string, string, int): string",
        (s: string, a: string, b: string, n: bigint) => {
          let out = s;
          let index = 0;
          for (let done = 0n; n < 0n || done < n; done++) {
            const at = out.indexOf(a, index);
            if (at === -1) break;
            out = out.slice(0, at) + b + out.slice(at + a.length);
            index = at + b.length + (a === "" ? 1 : 0);
            if (index > out.length) break;
          }
          return out;
        },
      )
      .registerFunction("string.reverse(): string", (s: string) => [...s].reverse().join(""))
      // k8s.io/apiserver/pkg/cel/library regex (RE2 there; the common subset agrees).
      .registerFunction(
        "string.find(string): string",
        (s: string, pattern: string) => new RegExp(pattern).exec(s)?.[0] ?? "",
      )
      .registerFunction("string.findAll(string): list<string>", (s: string, pattern: string) =>
        [...s.matchAll(new RegExp(pattern, "g"))].map((match) => match[0]),
      )
      .registerFunction(
        "string.findAll(string, int): list<string>",
        (s: string, pattern: string, limit: bigint) => {
          const all = [...s.matchAll(new RegExp(pattern, "g"))].map((match) => match[0]);
          return limit < 0n ? all : all.slice(0, Number(limit));
        },
      )
      // k8s.io/apiserver/pkg/cel/library lists.
      .registerFunction("list.sum(): dyn", (list: readonly unknown[]) =>
        numbers(list).reduce<bigint | number>(
          (sum, item) =>
            typeof sum === "bigint" && typeof item === "bigint"
              ? int(sum + item)
              : Number(sum) + Number(item),
          0n,
        ),
      )
      .registerFunction("list.min(): dyn", (list: readonly unknown[]) =>
        extreme(list, (item, kept) => item < kept),
      )
      .registerFunction("list.max(): dyn", (list: readonly unknown[]) =>
        extreme(list, (item, kept) => item > kept),
      )
      .registerFunction("list.isSorted(): bool", (list: readonly unknown[]) => {
        const items = list as readonly (bigint | number | string)[];
        return items.every((item, i) => i === 0 || items[i - 1]! <= item);
      })
      .registerFunction("list.indexOf(dyn): int", (list: readonly unknown[], value: unknown) =>
        BigInt(list.indexOf(value)),
      )
      .registerFunction("list.lastIndexOf(dyn): int", (list: readonly unknown[], value: unknown) =>
        BigInt(list.lastIndexOf(value)),
      )
  );
}
