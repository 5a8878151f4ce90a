import type {
  NodeSelector,
  NodeSelectorRequirement,
} from "../../api/v1alpha1/sriov-resource-policy.js";

/** What a node selector reads of a Node. */
export interface NodeIdentity {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * Whether a core NodeSelector (a SriovResourcePolicy's) selects the node, as the upstream
 * driver reads it: absent or without terms, every node; otherwise any term (OR), a term
 * when every requirement holds (AND). A term without requirements selects every node
 * (upstream's reading; the scheduler's would select none). Requirements follow Kubernetes:
 * `NotIn` and `DoesNotExist` hold when the label is absent, `Gt`/`Lt` compare integers,
 * `matchFields` tests `metadata.name`.
 */
export function nodeSelectorSelects(
  selector: NodeSelector | undefined,
  node: NodeIdentity,
): boolean {
  const terms = selector?.nodeSelectorTerms ?? [];
  if (terms.length === 0) return true;
  return terms.some(
    (term) =>
      (term.matchExpressions ?? []).every((r) => requirementHolds(r, node.labels[r.key])) &&
      (term.matchFields ?? []).every((r) =>
        requirementHolds(r, r.key === "metadata.name" ? node.name : undefined),
      ),
  );
}

/** One requirement on a value (a label's, or a field's); undefined: the node has none. */
function requirementHolds(
  requirement: NodeSelectorRequirement,
  value: string | undefined,
): boolean {
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const actual = integerOf(value);
      const bound = integerOf(values[0]);
      if (actual === undefined || bound === undefined) return false;
      return requirement.operator === "Gt" ? actual > bound : actual < bound;
    }
  }
}

function integerOf(text: string | undefined): bigint | undefined {
  return text !== undefined && /^-?[0-9]{1,18}$/.test(text) ? BigInt(text) : undefined;
}
