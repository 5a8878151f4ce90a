import { format } from "prettier";
import { describe, expect, it } from "vitest";
import { array, integer, map, object, string } from "./index.js";
import { renderTable, renderTypeSections } from "./markdown.js";

const digits = string({ pattern: { regex: /^[0-9]+$/, hint: "digits" }, maxLength: 4 });
const leaf = object({ id: digits }, { title: "Leaf" }).describe("A leaf.");

const root = object(
  {
    kind: string({ enum: ["Root"] }),
    mode: string({ enum: ["a", "b"] }).optional(),
    leaves: array(leaf, { maxItems: 2 }).describe("Leaves | pipes are escaped."),
    inline: object({ count: integer({ minimum: 0 }) }).optional(),
    tags: map(string({ maxLength: 5 })).optional(),
    codes: array(digits).optional(),
    meta: object({}, { title: "Meta", documentedAt: "https://example.com/meta" }),
  },
  { title: "Root" },
).describe("The root.");

describe("renderTypeSections", () => {
  const markdown = renderTypeSections([root]);

  it("writes one section per titled object, linked from the fields that use it", () => {
    expect(markdown.match(/^## .*/gm)).toEqual(["## Root", "## Leaf"]);
    expect(markdown).toContain("| `leaves`       | [][Leaf](#leaf) ");
    expect(markdown).toContain("[Meta](https://example.com/meta)");
    expect(markdown).not.toContain("## Meta");
  });

  it("lists untitled objects inline and states every constraint", () => {
    expect(markdown).toContain("`inline.count`");
    expect(markdown).toContain('exactly `"Root"`');
    expect(markdown).toContain('one of `"a"`, `"b"`');
    expect(markdown).toContain("at most 2 items");
    expect(markdown).toContain("values: at most 5 characters");
    expect(markdown).toContain("each: digits, at most 4 characters");
    expect(markdown).toContain("at least 0");
    expect(markdown).toContain("Leaves \\| pipes are escaped.");
  });

  it("is formatted as Prettier formats it", async () => {
    expect(await format(markdown, { parser: "markdown", printWidth: 100 })).toBe(markdown);
  });
});

describe("renderTable", () => {
  it("pads columns to the widest cell, at least three wide", () => {
    expect(renderTable(["A", "Long header"], [["x", "y"]])).toEqual([
      "| A   | Long header |",
      "| --- | ----------- |",
      "| x   | y           |",
    ]);
  });
});
