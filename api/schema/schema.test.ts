import { describe, expect, expectTypeOf, it } from "vitest";
import {
  array,
  boolean,
  decode,
  formatIssue,
  integer,
  map,
  object,
  SchemaError,
  string,
  structuralViolations,
  toOpenApi,
  type Infer,
  type OpenApiSchema,
} from "./index.js";

const port = object(
  {
    name: string({ pattern: { regex: /^[a-z]+$/, hint: "lower-case letters" }, maxLength: 8 }),
    number: integer({ minimum: 1, format: "int32" }),
    protocol: string({ enum: ["TCP", "UDP"] }).optional(),
  },
  { title: "Port" },
);

const service = object({
  labels: map(string()).optional(),
  ports: array(port, {
    minItems: 1,
    maxItems: 3,
    rules: [
      {
        rule: "self.all(p, self.exists_one(q, q.name == p.name))",
        message: "port names must be unique",
      },
    ],
  }),
  enabled: boolean().optional().describe("Whether it runs."),
  stamps: array(string({ format: "date-time" })).optional(),
});

function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof SchemaError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error("expected a SchemaError");
}

describe("type inference", () => {
  it("infers required, optional, enum, list and map types from one definition", () => {
    type Service = Infer<typeof service>;
    expectTypeOf<Service>().toEqualTypeOf<{
      ports: { name: string; number: number; protocol?: "TCP" | "UDP" }[];
      labels?: Record<string, string>;
      enabled?: boolean;
      stamps?: string[];
    }>();
    const decoded = decode(service, { ports: [{ name: "http", number: 80 }] });
    expectTypeOf(decoded.ports[0]!.protocol).toEqualTypeOf<"TCP" | "UDP" | undefined>();
  });
});

describe("decode", () => {
  it("returns the value with absent and null optional fields left out", () => {
    const decoded = decode(service, {
      ports: [{ name: "http", number: 80, protocol: null }],
      enabled: null,
    });
    expect(decoded).toEqual({ ports: [{ name: "http", number: 80 }] });
    expect("enabled" in decoded).toBe(false);
  });

  it("names the path of every problem, not only the first", () => {
    expect(
      issuesOf(() =>
        decode(
          service,
          {
            ports: [
              { name: "http", number: 0 },
              { name: "HTTP", number: 1.5, protocol: "SCTP" },
            ],
            labels: { "app.kubernetes.io/name": 7 },
            enabled: "yes",
          },
          "spec",
        ),
      ),
    ).toEqual([
      'spec.labels["app.kubernetes.io/name"]: must be a string; got the number 7',
      "spec.ports[0].number: must be at least 1; got 0",
      'spec.ports[1].name: must be lower-case letters; got "HTTP"',
      "spec.ports[1].number: must be an integer; got the number 1.5",
      'spec.ports[1].protocol: must be one of "TCP", "UDP"; got "SCTP"',
      'spec.enabled: must be a boolean; got the string "yes"',
    ]);
  });

  it("rejects unknown fields, suggesting the field meant", () => {
    expect(
      issuesOf(() => decode(service, { ports: [{ name: "a", number: 1, protocl: "TCP" }] })),
    ).toEqual(['ports[0].protocl: unknown field (did you mean "protocol"?)']);
    expect(issuesOf(() => decode(service, { ports: [], colour: "red" }))).toEqual([
      "colour: unknown field (known fields: labels, ports, enabled, stamps)",
      "ports: must have at least 1 item(s)",
    ]);
  });

  it("reports missing required fields and wrong JSON types", () => {
    expect(issuesOf(() => decode(service, {}))).toEqual(["ports: required field is missing"]);
    expect(issuesOf(() => decode(service, []))).toEqual(["must be an object; got a list"]);
    expect(issuesOf(() => decode(service, { ports: { name: "a" } }))).toEqual([
      "ports: must be a list; got an object",
    ]);
  });

  it("enforces lengths in characters, item counts, int32 and date-time", () => {
    const ports = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: "p".repeat(i + 1), number: 1 }));
    expect(issuesOf(() => decode(service, { ports: ports(4) }))).toEqual([
      "ports: must have at most 3 items; got 4",
    ]);
    // Five characters in ten UTF-16 units: the API server counts characters, so only the
    // pattern fails, not the length.
    expect(issuesOf(() => decode(port, { name: "𝔞".repeat(5), number: 1 }))).toEqual([
      `name: must be lower-case letters; got "${"𝔞".repeat(5)}"`,
    ]);
    expect(issuesOf(() => decode(port, { name: "abcdefghi", number: 2 ** 31 }))).toEqual([
      "name: must be at most 8 characters long; got 9",
      "number: must fit in 32 bits; got 2147483648",
    ]);
    expect(
      issuesOf(() =>
        decode(service, { ports: ports(1), stamps: ["2026-01-02T15:04:05Z", "yesterday"] }),
      ),
    ).toEqual([
      'stamps[1]: must be an RFC 3339 time such as "2026-01-02T15:04:05Z"; got "yesterday"',
    ]);
  });

  it("runs CEL rules as the API server would, after the structure is valid", () => {
    const twice = [
      { name: "a", number: 1 },
      { name: "a", number: 2 },
    ];
    expect(issuesOf(() => decode(service, { ports: twice }))).toEqual([
      "ports: port names must be unique",
    ]);
    const withRule = object(
      { n: integer() },
      { rules: [{ rule: "self.n == 1", message: "n must be 1" }] },
    );
    expect(decode(withRule, { n: 1 })).toEqual({ n: 1 }); // numbers reach CEL as ints
    expect(issuesOf(() => decode(withRule, { n: 2 }))).toEqual(["n must be 1"]);
  });

  it("reports a rule that errors as a failed rule", () => {
    const optionalRead = object(
      { n: integer().optional() },
      { rules: [{ rule: "self.n > 0", message: "n must be positive" }] },
    );
    expect(issuesOf(() => decode(optionalRead, {}))).toEqual([
      expect.stringMatching(/^n must be positive \(rule error: .*n/),
    ]);
  });

  it("fails at build time on a CEL rule that does not parse", () => {
    expect(() => object({}, { rules: [{ rule: "self.all(", message: "x" }] })).toThrow(
      /CEL rule "self.all\(" does not parse/,
    );
  });

  it("runs refinements on well-formed values only", () => {
    const even = integer().refine({
      description: "even",
      check: (n) => (n % 2 === 0 ? undefined : `must be even; got ${n}`),
    });
    expect(decode(even, 4)).toBe(4);
    expect(issuesOf(() => decode(even, 3))).toEqual(["must be even; got 3"]);
    expect(issuesOf(() => decode(even, "3"))).toEqual(['must be an integer; got the string "3"']);
  });

  it("drops unknown fields of objects owned elsewhere", () => {
    const meta = object({ name: string() }, { unknownFields: "strip" });
    expect(decode(meta, { name: "a", uid: "123", labels: {} })).toEqual({ name: "a" });
  });

  it("keeps one item per key in map lists", () => {
    const conditions = array(object({ type: string(), status: string() }), {
      listType: { type: "map", keys: ["type"] },
    });
    expect(
      issuesOf(() =>
        decode(conditions, [
          { type: "Ready", status: "True" },
          { type: "Ready", status: "False" },
        ]),
      ),
    ).toEqual(['[1]: duplicate of [0] (type="Ready")']);
  });
});

describe("toOpenApi", () => {
  it("emits a structural schema with descriptions, required fields and CEL rules", () => {
    const openApi = toOpenApi(service);
    expect(structuralViolations(openApi)).toEqual([]);
    expect(openApi).toEqual({
      type: "object",
      properties: {
        labels: { type: "object", additionalProperties: { type: "string" } },
        ports: {
          type: "array",
          items: {
            type: "object",
            properties: {
              name: { type: "string", pattern: "^[a-z]+$", maxLength: 8 },
              number: { type: "integer", format: "int32", minimum: 1 },
              protocol: { type: "string", enum: ["TCP", "UDP"] },
            },
            required: ["name", "number"],
          },
          minItems: 1,
          maxItems: 3,
          "x-kubernetes-validations": [
            {
              rule: "self.all(p, self.exists_one(q, q.name == p.name))",
              message: "port names must be unique",
            },
          ],
        },
        enabled: { description: "Whether it runs.", type: "boolean" },
        stamps: { type: "array", items: { type: "string", format: "date-time" } },
      },
      required: ["ports"],
    });
  });

  it("emits map lists with their keys", () => {
    const list = array(object({ type: string() }), { listType: { type: "map", keys: ["type"] } });
    expect(toOpenApi(list)).toMatchObject({
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    });
  });

  it("finds what makes a schema non-structural", () => {
    const bad = {
      type: "object",
      properties: {
        a: { type: "object", properties: {}, additionalProperties: { type: "string" } },
        b: { type: "array", items: { description: "no type" } },
        c: { type: "string", $ref: "#/definitions/c" },
      },
      required: ["a", "d"],
    } as unknown as OpenApiSchema;
    expect(structuralViolations(bad)).toEqual([
      "<root>: required d is not a property",
      "<root>.a: properties and additionalProperties together",
      "<root>.b[*]: no type",
      "<root>.c: $ref is not allowed",
    ]);
  });

  it("refuses decoder-only refinements, which the API server would not enforce", () => {
    const refined = object({
      inner: object({
        even: integer().refine({ description: "even", check: () => undefined }),
      }),
    });
    expect(() => toOpenApi(refined)).toThrow(
      /^inner.even: the check "even" runs only in the decoder/,
    );
  });
});
