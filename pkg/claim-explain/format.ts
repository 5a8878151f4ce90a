import { terminalSafe } from "../cluster-inventory/text.js";
import type { ClaimExplanation, NodeExplanation } from "./explain.js";

/**
 * The text form: the claim, claim-wide problems, then per node its verdict, each request's
 * selectors with how many devices pass and why the others fail, what is taken or tainted,
 * the constraints' groups, and the likely fixes. Every value from the cluster is made
 * terminal-safe.
 */
export function formatExplanation(explanation: ClaimExplanation): string {
  const { claim } = explanation;
  const lines = [
    `${claim.kind} ${claim.namespace === null ? "" : `${claim.namespace}/`}${claim.name}  (driver ${explanation.driver})`,
  ];
  for (const problem of explanation.problems) lines.push(`PROBLEM ${problem}`);
  for (const node of explanation.nodes) lines.push(...nodeLines(node));
  if (explanation.nodes.length === 0) {
    lines.push(`No node publishes devices of ${explanation.driver}.`);
  }
  lines.push(
    explanation.fits.length === 0
      ? `Fits on no node (${explanation.nodes.length} publish devices of ${explanation.driver}).`
      : `Fits on ${explanation.fits.length} of ${explanation.nodes.length} nodes: ${explanation.fits.join(", ")}`,
  );
  return lines.map(terminalSafe).join("\n");
}

function nodeLines(node: NodeExplanation): string[] {
  const verdict =
    node.verdict === "fits" ? "FITS" : node.verdict === "unknown" ? "UNKNOWN" : "DOES NOT FIT";
  const lines = [`NODE ${node.name}  ${node.devices} devices  ${verdict}: ${node.reason}`];
  if (node.verdict === "fits") return lines;
  for (const request of node.requests) {
    lines.push(
      `  request ${request.name}: ${request.needed === "All" ? "all" : request.needed} of class ${request.deviceClass}` +
        `  matching ${request.matching}, allocated to other claims ${request.allocatedToOthers.length}, ` +
        (request.blockedByCounters.length > 0
          ? `held back by shared counters ${request.blockedByCounters.length}, `
          : "") +
        `tainted ${request.tainted.length}, usable ${request.usable}`,
    );
    for (const selector of request.selectors) {
      lines.push(
        `    ${selector.source} #${selector.index}  ${selector.passed}/${node.devices} pass  ${selector.expression}`,
      );
      for (const failure of selector.failures) {
        lines.push(
          `      ${failure.count} ${label(failure.kind)}: ${failure.message}  (${failure.devices.join(", ")}${failure.count > failure.devices.length ? ", …" : ""})`,
        );
      }
    }
    for (const entry of request.allocatedToOthers.slice(0, 5)) {
      lines.push(`    ${entry.device} allocated to ${entry.holders.join(", ")}`);
    }
    for (const entry of request.blockedByCounters.slice(0, 5)) {
      lines.push(
        `    ${entry.device} held back: ${entry.heldDevices.slice(0, 3).join(", ")}${entry.heldDevices.length > 3 ? ", …" : ""} of counter set ${entry.counterSet} allocated to ${entry.holders.join(", ") || "other claims"}`,
      );
    }
    for (const entry of request.tainted.slice(0, 5)) {
      lines.push(`    ${entry.device} tainted ${entry.taints.join(", ")}`);
    }
  }
  for (const constraint of node.constraints) {
    const groups = constraint.groups
      .slice(0, 8)
      .map((group) => `${group.value} ×${group.devices}`)
      .join(", ");
    lines.push(
      `  constraint ${constraint.kind} ${constraint.attribute}  needs ${constraint.needed}  usable devices per value: ${groups || "none"}` +
        (constraint.withoutAttribute > 0 ? `, ${constraint.withoutAttribute} without it` : ""),
    );
  }
  for (const hint of node.hints) lines.push(`  likely fix: ${hint}`);
  return lines;
}

function label(kind: string): string {
  switch (kind) {
    case "false":
      return "false";
    case "missing-attribute":
      return "attribute missing (runtime error)";
    case "type-mismatch":
      return "type mismatch (runtime error)";
    case "runtime-error":
      return "runtime error";
    default:
      return "cannot evaluate";
  }
}
