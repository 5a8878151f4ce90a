import type { AnySchema, ObjectNode, SchemaNode } from "./schema.js";

/**
 * Reference docs: one `##` section with a field table per titled object, in the order the
 * roots reach them. Untitled nested objects are listed inline (`parent.child`); objects
 * documented elsewhere (`documentedAt`) are linked, not expanded.
 */
export function renderTypeSections(roots: readonly AnySchema[]): string {
  return titledObjects(roots.map((root) => root.node))
    .map(renderSection)
    .join("\n");
}

function titledObjects(roots: readonly SchemaNode[]): ObjectNode[] {
  const found: ObjectNode[] = [];
  const visit = (node: SchemaNode) => {
    if (node.kind === "array") visit(node.items);
    if (node.kind === "map") visit(node.values);
    if (node.kind !== "object" || node.documentedAt !== undefined || found.includes(node)) return;
    if (node.title !== undefined) found.push(node);
    Object.values(node.properties).forEach(visit);
  };
  roots.forEach(visit);
  return found;
}

function renderSection(node: ObjectNode): string {
  const lines = [`## ${node.title}`, ""];
  if (node.description !== undefined) lines.push(node.description, "");
  const header = ["Field", "Type", "Required", "Description", "Constraints"];
  lines.push(...renderTable(header, fieldRows(node, "")), "");
  return lines.join("\n");
}

type Row = [field: string, type: string, required: string, description: string, limits: string];

function fieldRows(node: ObjectNode, prefix: string): Row[] {
  return Object.entries(node.properties).flatMap(([key, child]) => {
    const name = prefix + key;
    const row: Row = [
      `\`${name}\``,
      typeName(child),
      child.optional ? "no" : "yes",
      child.description ?? "",
      constraints(child).join("; "),
    ];
    const inline = inlineObject(child);
    if (inline === undefined) return [row];
    return [row, ...fieldRows(inline, child.kind === "array" ? `${name}[].` : `${name}.`)];
  });
}

/** The untitled object a field holds (directly or as list items), documented in place. */
function inlineObject(node: SchemaNode): ObjectNode | undefined {
  const inner = node.kind === "array" ? node.items : node;
  return inner.kind === "object" && inner.title === undefined && inner.documentedAt === undefined
    ? inner
    : undefined;
}

function typeName(node: SchemaNode): string {
  switch (node.kind) {
    case "array":
      return `[]${typeName(node.items)}`;
    case "map":
      return `map[string]${typeName(node.values)}`;
    case "object":
      if (node.title === undefined) return "object";
      return `[${node.title}](${node.documentedAt ?? `#${node.title.toLowerCase()}`})`;
    default:
      return node.kind;
  }
}

function constraints(node: SchemaNode): string[] {
  const own = [...node.refinements.map((r) => r.description)];
  switch (node.kind) {
    case "string":
      if (node.enum !== undefined) own.push(enumPhrase(node.enum));
      if (node.pattern !== undefined) own.push(node.pattern.hint);
      own.push(...limit(node.minLength, node.maxLength, "characters"));
      if (node.format === "date-time") own.push("RFC 3339 time");
      break;
    case "integer":
      if (node.minimum !== undefined) own.push(`at least ${node.minimum}`);
      break;
    case "array":
      own.push(...nested("each", constraints(node.items)));
      own.push(...limit(node.minItems, node.maxItems, "items"));
      if (node.listType.type === "map") {
        own.push(`one item per ${node.listType.keys.map((k) => `\`${k}\``).join(", ")}`);
      }
      own.push(...node.rules.map((rule) => rule.message));
      break;
    case "map":
      own.push(...limit(undefined, node.maxProperties, "keys"));
      own.push(...nested("values", constraints(node.values)));
      break;
    case "object":
      own.push(...node.rules.map((rule) => rule.message));
  }
  return own;
}

function limit(min: number | undefined, max: number | undefined, unit: string): string[] {
  if (min !== undefined && max !== undefined) return [`${min}-${max} ${unit}`];
  if (max !== undefined) return [`at most ${max} ${unit}`];
  return min === undefined ? [] : [`at least ${min} ${unit}`];
}

/** One phrase for what every item (or value) must be, kept apart from the list's own limits. */
function nested(label: string, phrases: readonly string[]): string[] {
  return phrases.length === 0 ? [] : [`${label}: ${phrases.join(", ")}`];
}

function enumPhrase(values: readonly string[]): string {
  const quoted = values.map((value) => `\`"${value}"\``);
  return quoted.length === 1 ? `exactly ${quoted[0]}` : `one of ${quoted.join(", ")}`;
}

/** A Markdown table padded the way Prettier prints it, so the file passes `prettier --check`. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]) {
  const cells = [header, ...rows].map((row) => row.map(escapeCell));
  const widths = header.map((_, column) =>
    Math.max(3, ...cells.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: readonly string[]) =>
    `| ${widths.map((width, column) => (row[column] ?? "").padEnd(width)).join(" | ")} |`;
  const [head, ...body] = cells;
  return [line(head!), line(widths.map((width) => "-".repeat(width))), ...body.map(line)];
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}
