import { closest } from "../../api/schema/decode.js";
import type { HoldersByDevice } from "../cluster-inventory/claims.js";
import { formatTaint } from "../cluster-inventory/nodes.js";
import {
  blockingTaint,
  constraintValue,
  evaluateOn,
  searchAllocation,
  type SearchDevice,
  type SearchRequest,
  type SearchResult,
  type SelectorRef,
} from "./allocate.js";
import { compileSelector, type CompiledSelector, type FailureKind } from "./cel.js";
import { counterBlocks, countersLeft, counterUse, type CounterBlock } from "./counters.js";
import type { ClaimSpec, NodeDevice, RequestSpec } from "./input.js";
import type { CelAttribute } from "./cel.js";

export const EXPLANATION_API_VERSION = "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1";

/**
 * `kubectl sriov explain -o json`: the documented structure (docs/troubleshooting.md).
 * Fields are only added, never renamed; absent values are `null`, lists empty.
 */
export interface ClaimExplanation {
  apiVersion: typeof EXPLANATION_API_VERSION;
  kind: "ClaimExplanation";
  driver: string;
  claim: { kind: string; namespace: string | null; name: string };
  /** Problems that hold on every node (a missing DeviceClass, a selector that does not compile). */
  problems: string[];
  nodes: NodeExplanation[];
  /** The nodes where the claim can be allocated now. */
  fits: string[];
}

export interface NodeExplanation {
  name: string;
  devices: number;
  verdict: "fits" | "does-not-fit" | "unknown";
  /** One line: why not, or what it would get. */
  reason: string;
  requests: RequestOnNode[];
  constraints: ConstraintOnNode[];
  /** Likely fixes, most likely first. */
  hints: string[];
}

export interface RequestOnNode {
  name: string;
  deviceClass: string;
  needed: number | "All";
  selectors: SelectorOnNode[];
  /** Devices passing every selector. */
  matching: number;
  /** Of those, allocated to other claims (with the holders). */
  allocatedToOthers: { device: string; holders: string[] }[];
  /**
   * Of those free, the ones whose shared counters devices allocated to other claims use up:
   * a VF while its whole PF is allocated, a whole PF while any of its VFs is (with those
   * devices and their holders).
   */
  blockedByCounters: {
    device: string;
    counterSet: string;
    heldDevices: string[];
    holders: string[];
  }[];
  /** Of those free, tainted with a taint the request does not tolerate. */
  tainted: { device: string; taints: string[] }[];
  /** Matching, free, untainted. */
  usable: number;
}

export interface SelectorOnNode {
  /** `class NAME` or `request`. */
  source: string;
  index: number;
  expression: string;
  passed: number;
  /** Why the others fail, grouped; the first devices of each group. */
  failures: { kind: FailureKind | "unknown"; message: string; count: number; devices: string[] }[];
}

export interface ConstraintOnNode {
  kind: "matchAttribute" | "distinctAttribute";
  attribute: string;
  requests: string[];
  /** The usable devices of the requests it covers, per value of the attribute. */
  groups: { value: string; devices: number }[];
  /** Usable devices that do not publish the attribute. */
  withoutAttribute: number;
  needed: number;
}

/** Devices named per failure group. */
const EXAMPLES = 3;

export interface ExplainInput {
  driver: string;
  claim: { kind: string; namespace: string | null; name: string };
  spec: ClaimSpec;
  /** DeviceClass name → its selector expressions; a class not in the map does not exist. */
  classes: ReadonlyMap<string, readonly string[]>;
  devices: ReadonlyMap<string, readonly NodeDevice[]>;
  holders: HoldersByDevice;
  /** The claim's own holds are not "in use" (it is explained as if allocated afresh). */
  self?: { namespace: string; name: string };
}

export function explainClaim(input: ExplainInput): ClaimExplanation {
  const compiled = new Map<string, CompiledSelector>();
  const compile = (expression: string) => {
    let selector = compiled.get(expression);
    if (selector === undefined) {
      selector = compileSelector(expression);
      compiled.set(expression, selector);
    }
    return selector;
  };
  const problems: string[] = [];
  const selectorsOf = (request: RequestSpec): SelectorRef[] => {
    const classSelectors = input.classes.get(request.deviceClassName);
    if (classSelectors === undefined) {
      problems.push(
        `request ${request.name}: DeviceClass ${request.deviceClassName} does not exist; the scheduler cannot allocate the claim on any node`,
      );
    }
    return [
      ...(classSelectors ?? []).map((expression, index) => ({
        source: `class ${request.deviceClassName}`,
        index,
        selector: compile(expression),
      })),
      ...request.selectors.map((expression, index) => ({
        source: "request",
        index,
        selector: compile(expression),
      })),
    ];
  };
  const alternatives = input.spec.requests.map((choice) =>
    choice.alternatives.map((spec) => ({ spec, selectors: selectorsOf(spec) })),
  );
  for (const selector of compiled.values()) {
    if (selector.compileError !== undefined) {
      problems.push(
        `selector ${JSON.stringify(selector.expression)} does not compile: ${selector.compileError}`,
      );
    }
  }
  const missingClass = input.spec.requests.some((choice) =>
    choice.alternatives.every((spec) => !input.classes.has(spec.deviceClassName)),
  );
  const everyDevice = [...input.devices.values()].flat();
  const nodes = [...input.devices.keys()]
    .sort()
    .map((node) => explainNode(node, input, alternatives, everyDevice, missingClass));
  return {
    apiVersion: EXPLANATION_API_VERSION,
    kind: "ClaimExplanation",
    driver: input.driver,
    claim: input.claim,
    problems: [...new Set(problems)],
    nodes,
    fits: nodes.filter((node) => node.verdict === "fits").map((node) => node.name),
  };
}

type Alternatives = { spec: RequestSpec; selectors: SelectorRef[] }[][];

function explainNode(
  node: string,
  input: ExplainInput,
  alternatives: Alternatives,
  everyDevice: readonly NodeDevice[],
  missingClass: boolean,
): NodeExplanation {
  const nodeDevices = input.devices.get(node) ?? [];
  const holdersOf = (device: NodeDevice) =>
    (input.holders.get(device.pool)?.get(device.name) ?? []).filter(
      (holder) =>
        input.self === undefined ||
        holder.namespace !== input.self.namespace ||
        holder.claim !== input.self.name,
    );
  const held = (device: NodeDevice) => holdersOf(device).length > 0;
  const blocks = counterBlocks(nodeDevices, held);
  const { used } = counterUse(nodeDevices, held);
  const byName = new Map(nodeDevices.map((device) => [device.name, device]));
  const holdersOfNames = (names: readonly string[]) => [
    ...new Set(
      names.flatMap((name) => {
        const device = byName.get(name);
        return device === undefined
          ? []
          : holdersOf(device).map((holder) => `${holder.namespace}/${holder.claim}`);
      }),
    ),
  ];
  const devices: ExplainDevice[] = nodeDevices.map((device) => ({
    name: device.name,
    // The scheduler picks neither an allocated device nor one whose counters are used up.
    inUse: held(device) || blocks.has(device.name),
    held: held(device),
    counters: countersLeft(device, used),
    ...(blocks.has(device.name)
      ? {
          block: {
            ...blocks.get(device.name)!,
            holders: holdersOfNames(blocks.get(device.name)!.heldDevices),
          },
        }
      : {}),
    taints: device.taints,
    cel: device.cel,
    ...(device.problem === undefined ? {} : { problem: device.problem }),
    source: device,
  }));

  // The first alternative of each request is what is shown; the search tries them all.
  const shown = alternatives.map((choice) => choice[0]!);
  const requests = shown.map(({ spec, selectors }) =>
    requestOnNode(spec, selectors, devices, holdersOf),
  );
  const constraints = input.spec.constraints.map((constraint): ConstraintOnNode => {
    const covered = shown.filter(
      ({ spec }) =>
        constraint.requests.length === 0 ||
        constraint.requests.includes(spec.name) ||
        constraint.requests.includes(spec.name.split("/")[0]!),
    );
    const usable = new Map<string, SearchDevice>();
    for (const { spec, selectors } of covered) {
      for (const device of usableDevices(spec, selectors, devices)) usable.set(device.name, device);
    }
    const groups = new Map<string, number>();
    let withoutAttribute = 0;
    for (const device of usable.values()) {
      const value = constraintValue(device, constraint.attribute);
      if (value === undefined) withoutAttribute++;
      else groups.set(show(value), (groups.get(show(value)) ?? 0) + 1);
    }
    return {
      kind: constraint.kind,
      attribute: constraint.attribute,
      requests: constraint.requests,
      groups: [...groups]
        .map(([value, count]) => ({ value, devices: count }))
        .sort((a, b) => b.devices - a.devices || compare(a.value, b.value)),
      withoutAttribute,
      needed: covered.reduce((sum, { spec }) => sum + (spec.mode === "All" ? 0 : spec.count), 0),
    };
  });

  const result = missingClass
    ? ({ outcome: "no-fit" } as const)
    : search(alternatives, input.spec.constraints, devices);
  const hints = nodeHints(node, result, requests, constraints, shown, devices, everyDevice, input);
  return {
    name: node,
    devices: nodeDevices.length,
    verdict:
      result.outcome === "fits"
        ? "fits"
        : result.outcome === "unknown"
          ? "unknown"
          : "does-not-fit",
    reason: reasonOf(result, requests, constraints, missingClass),
    requests,
    constraints,
    hints,
  };
}

/** Tries each combination of subrequests in order, as the scheduler does; the first that fits. */
function search(
  alternatives: Alternatives,
  constraints: ExplainInput["spec"]["constraints"],
  devices: readonly SearchDevice[],
): SearchResult {
  const MAX_COMBINATIONS = 64;
  let tried = 0;
  let last: SearchResult = { outcome: "no-fit" };
  const walk = (index: number, chosen: SearchRequest[]): SearchResult | undefined => {
    if (index === alternatives.length) {
      if (++tried > MAX_COMBINATIONS)
        return { outcome: "unknown", message: "too many subrequests" };
      last = searchAllocation(chosen, constraints, devices);
      return last.outcome === "no-fit" ? undefined : last;
    }
    for (const { spec, selectors } of alternatives[index]!) {
      const request: SearchRequest = {
        name: spec.name,
        constraintNames: spec.name.includes("/")
          ? [spec.name, spec.name.split("/")[0]!]
          : [spec.name],
        mode: spec.mode,
        count: spec.count,
        tolerations: spec.tolerations,
        selectors,
      };
      const found = walk(index + 1, [...chosen, request]);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return walk(0, []) ?? last;
}

function usableDevices(
  spec: RequestSpec,
  selectors: readonly SelectorRef[],
  devices: readonly SearchDevice[],
): SearchDevice[] {
  return devices.filter(
    (device) =>
      !device.inUse &&
      blockingTaint(device, spec.tolerations) === undefined &&
      selectors.every((selector) => evaluateOn(selector.selector, device).result === "pass"),
  );
}

/** A device as the search sees it, with why it is not free. */
type ExplainDevice = SearchDevice & {
  source: NodeDevice;
  /** Allocated to another claim. */
  held: boolean;
  /** Free, but its shared counters are used up (see counterBlocks). */
  block?: CounterBlock & { holders: string[] };
};

function requestOnNode(
  spec: RequestSpec,
  selectors: readonly SelectorRef[],
  devices: readonly ExplainDevice[],
  holdersOf: (device: NodeDevice) => { namespace: string; claim: string }[],
): RequestOnNode {
  const passing = new Set(devices.map((device) => device.name));
  const perSelector = selectors.map((ref): SelectorOnNode => {
    const failures = new Map<string, SelectorOnNode["failures"][number]>();
    let passed = 0;
    for (const device of devices) {
      const outcome = evaluateOn(ref.selector, device);
      if (outcome.result === "pass") {
        passed++;
        continue;
      }
      passing.delete(device.name);
      const kind = outcome.result === "unknown" ? "unknown" : outcome.kind;
      const key = `${kind}\u0000${outcome.message}`;
      const group = failures.get(key) ?? { kind, message: outcome.message, count: 0, devices: [] };
      group.count++;
      if (group.devices.length < EXAMPLES) group.devices.push(device.name);
      failures.set(key, group);
    }
    return {
      source: ref.source,
      index: ref.index,
      expression: ref.selector.expression,
      passed,
      failures: [...failures.values()],
    };
  });
  const matching = devices.filter((device) => passing.has(device.name));
  const allocatedToOthers = matching
    .filter((device) => device.held)
    .map((device) => ({
      device: device.name,
      holders: holdersOf(device.source).map((holder) => `${holder.namespace}/${holder.claim}`),
    }));
  const blockedByCounters = matching.flatMap((device) =>
    device.block === undefined ? [] : [{ device: device.name, ...device.block }],
  );
  const tainted = matching
    .filter((device) => !device.inUse && blockingTaint(device, spec.tolerations) !== undefined)
    .map((device) => ({ device: device.name, taints: device.taints.map(formatTaint) }));
  return {
    name: spec.name,
    deviceClass: spec.deviceClassName,
    needed: spec.mode === "All" ? "All" : spec.count,
    selectors: perSelector,
    matching: matching.length,
    allocatedToOthers,
    blockedByCounters,
    tainted,
    usable: matching.length - allocatedToOthers.length - blockedByCounters.length - tainted.length,
  };
}

function reasonOf(
  result: SearchResult,
  requests: readonly RequestOnNode[],
  constraints: readonly ConstraintOnNode[],
  missingClass: boolean,
): string {
  switch (result.outcome) {
    case "fits":
      return `fits: ${result.picks.map((pick) => `${pick.request} → ${pick.device}`).join(", ")}`;
    case "unknown":
      return `cannot tell: ${result.message}`;
    case "error":
      return (
        `CEL runtime error on device ${result.device} (${result.selector.source} selector #${result.selector.index}: ${result.message}); ` +
        "the scheduler fails the node at the first such error"
      );
    case "no-fit":
      break;
  }
  if (missingClass) return "a DeviceClass the claim names does not exist";
  const short = requests.find(
    (request) => request.needed !== "All" && request.usable < request.needed,
  );
  if (short !== undefined) {
    const needed = short.needed as number;
    if (short.matching === 0) return `request ${short.name}: no device passes its selectors`;
    const blocked = short.blockedByCounters;
    return (
      `request ${short.name}: needs ${needed}, ${short.usable} usable ` +
      `(${short.matching} match, ${short.allocatedToOthers.length} allocated to other claims, ` +
      (blocked.length > 0
        ? `${blocked.length} held back by shared counters (${describeBlock(blocked[0]!)}), `
        : "") +
      `${short.tainted.length} tainted)`
    );
  }
  const all = requests.find((request) => request.needed === "All");
  if (all !== undefined && (all.matching === 0 || all.usable < all.matching)) {
    return `request ${all.name} wants all ${all.matching} matching devices, ${all.usable} usable`;
  }
  const constraint = constraints.find((c) => !constraintSatisfiable(c));
  if (constraint !== undefined) return constraintReason(constraint);
  return "no combination of usable devices satisfies every request and constraint together";
}

/** `pf-0000-3b-00-0 is allocated to team/whole`, or `0000-3b-02-1 and 1 more are allocated to ...`. */
function describeBlock(block: RequestOnNode["blockedByCounters"][number]): string {
  const [first, ...rest] = block.heldDevices;
  const devices = rest.length === 0 ? (first ?? "") : `${first} and ${rest.length} more`;
  const verb = rest.length === 0 ? "is" : "are";
  return `${devices} of counter set ${block.counterSet} ${verb} allocated to ${block.holders.slice(0, 3).join(", ") || "other claims"}`;
}

function constraintSatisfiable(constraint: ConstraintOnNode): boolean {
  if (constraint.kind === "matchAttribute") {
    return (constraint.groups[0]?.devices ?? 0) >= constraint.needed;
  }
  return constraint.groups.length >= constraint.needed;
}

function constraintReason(constraint: ConstraintOnNode): string {
  if (constraint.kind === "matchAttribute") {
    const largest = constraint.groups[0];
    return (
      `matchAttribute ${constraint.attribute}: needs ${constraint.needed} usable devices with one value; ` +
      (largest === undefined
        ? "no usable device publishes it"
        : `the most on this node is ${largest.devices} (${largest.value})`)
    );
  }
  return `distinctAttribute ${constraint.attribute}: needs ${constraint.needed} different values; ${constraint.groups.length} here`;
}

function nodeHints(
  node: string,
  result: SearchResult,
  requests: readonly RequestOnNode[],
  constraints: readonly ConstraintOnNode[],
  shown: readonly { spec: RequestSpec; selectors: SelectorRef[] }[],
  devices: readonly SearchDevice[],
  everyDevice: readonly NodeDevice[],
  input: ExplainInput,
): string[] {
  if (result.outcome === "fits") return [];
  const hints: string[] = [];
  if (result.outcome === "error") {
    hints.push(...errorHints(result, everyDevice, input.driver));
  }
  for (const [index, request] of requests.entries()) {
    const selectors = shown[index]!.selectors;
    if (request.matching === 0) {
      for (const selector of request.selectors) {
        if (selector.passed > 0 || selector.failures.every((f) => f.kind !== "false")) continue;
        const compiled = selectors.find(
          (ref) => ref.source === selector.source && ref.index === selector.index,
        )!.selector;
        hints.push(...falseHints(node, compiled, devices, everyDevice, input));
      }
    }
    if (
      request.allocatedToOthers.length > 0 &&
      request.usable < (request.needed === "All" ? request.matching : request.needed)
    ) {
      const holders = [...new Set(request.allocatedToOthers.flatMap((entry) => entry.holders))];
      hints.push(
        `${request.allocatedToOthers.length} of the ${request.matching} matching devices are allocated to other claims (${holders.slice(0, 5).join(", ")}${holders.length > 5 ? ", …" : ""}): free them, or use another node`,
      );
    }
    if (
      request.blockedByCounters.length > 0 &&
      request.usable < (request.needed === "All" ? request.matching : request.needed)
    ) {
      const first = request.blockedByCounters[0]!;
      hints.push(
        `${request.blockedByCounters.length} of the ${request.matching} matching devices cannot be allocated while ${describeBlock(first)}${request.blockedByCounters.length > 1 ? " (and the like)" : ""}: a whole PF and its VFs are never allocated together; wait for those claims to go, or use devices of another PF or node`,
      );
    }
    if (
      request.tainted.length > 0 &&
      request.usable < (request.needed === "All" ? request.matching : request.needed)
    ) {
      const taints = [...new Set(request.tainted.flatMap((entry) => entry.taints))];
      hints.push(
        `${request.tainted.length} matching devices carry taints the request does not tolerate (${taints.join(", ")}): repair the device, or add a toleration to the request`,
      );
    }
  }
  // A constraint is the cause only when each request alone has the devices it needs.
  const short = requests.some(
    (request) =>
      request.usable === 0 || (request.needed !== "All" && request.usable < request.needed),
  );
  for (const constraint of short ? [] : constraints) {
    if (!constraintSatisfiable(constraint)) {
      hints.push(
        `${constraintReason(constraint)}: ask for fewer devices, or drop the constraint` +
          (constraint.attribute.endsWith("/pfPciAddress")
            ? " (matchAttribute on pfPciAddress needs that many free VFs on one PF)"
            : ""),
      );
    }
  }
  return [...new Set(hints)];
}

function errorHints(
  result: Extract<SearchResult, { outcome: "error" }>,
  everyDevice: readonly NodeDevice[],
  driver: string,
): string[] {
  const compiled = result.selector.selector;
  const key = /^no such key: (.*)$/.exec(result.message)?.[1];
  if (key === undefined) {
    return [
      `fix ${result.selector.source} selector #${result.selector.index}: ${result.message}` +
        typeHint(compiled, everyDevice),
    ];
  }
  const domains = [
    ...new Set(compiled.references.filter((r) => r.name === key).map((r) => r.domain)),
  ];
  const publishedNames = new Set(everyDevice.flatMap((device) => [...device.types.keys()]));
  const publishedDomains = new Set([...publishedNames].map((name) => name.split("/")[0]!));
  // The key may be a domain (`device.attributes["typo.io"]` read with a field), or a name.
  const referencedDomains = new Set(compiled.references.map((r) => r.domain));
  if (referencedDomains.has(key) && !publishedDomains.has(key)) {
    const suggestion = closest(key, [...publishedDomains]);
    return [
      `no device publishes attributes under ${key}` +
        (suggestion === undefined ? "" : `; did you mean "${suggestion}"?`),
    ];
  }
  const hints: string[] = [];
  for (const domain of domains.length > 0 ? domains : [driver]) {
    const qualified = `${domain}/${key}`;
    if (publishedNames.has(qualified)) {
      const lacking = everyDevice.filter((device) => !device.types.has(qualified)).length;
      hints.push(
        `${qualified} is published by some devices only (${lacking} of ${everyDevice.length} lack it): guard the read, e.g. ` +
          `"${key}" in device.attributes["${domain}"] && ${compiled.expression}` +
          (key === "resourceName"
            ? ` (a VF gets a resourceName only from a SriovResourceFilter selecting its node: kubectl sriov filters)`
            : ""),
      );
      continue;
    }
    const otherDomain = [...publishedNames].find((name) => name.endsWith(`/${key}`));
    if (otherDomain !== undefined) {
      hints.push(`${key} is published under ${otherDomain.split("/")[0]}, not ${domain}`);
      continue;
    }
    const inDomain = [...publishedNames]
      .filter((name) => name.startsWith(`${domain}/`))
      .map((name) => name.slice(domain.length + 1))
      .sort();
    const suggestion = closest(key, inDomain);
    hints.push(
      suggestion === undefined
        ? `no device publishes ${qualified}; ${domain} has: ${inDomain.join(", ") || "nothing"}`
        : `no device publishes ${qualified}; did you mean "${suggestion}"?`,
    );
  }
  return hints;
}

/** A comparison whose literal has another type than the attribute is published with. */
function typeHint(compiled: CompiledSelector, everyDevice: readonly NodeDevice[]): string {
  for (const comparison of compiled.comparisons) {
    const published = publishedType(everyDevice, `${comparison.domain}/${comparison.name}`);
    const literal = literalType(comparison.literal);
    if (
      published !== undefined &&
      literal !== published &&
      !(literal === "double" && published === "int")
    ) {
      return ` (${comparison.domain}/${comparison.name} is published as ${published}, compared with a ${literal})`;
    }
  }
  return "";
}

function falseHints(
  node: string,
  compiled: CompiledSelector,
  devices: readonly SearchDevice[],
  everyDevice: readonly NodeDevice[],
  input: ExplainInput,
): string[] {
  const typeMismatch = typeHint(compiled, everyDevice);
  if (typeMismatch !== "") {
    return [`the selector \`${compiled.expression}\` is never true${typeMismatch}`];
  }
  const hints: string[] = [];
  for (const comparison of compiled.comparisons) {
    if (comparison.op !== "==" || comparison.map !== "attributes") continue;
    const holds = (device: { cel: SearchDevice["cel"] }) => {
      const value = device.cel?.attributes.get(comparison.domain)?.get(comparison.name);
      return value !== undefined && show(value) === show(comparison.literal as CelAttribute);
    };
    if (devices.some(holds)) continue;
    const elsewhere = [...input.devices]
      .filter(([other, list]) => other !== node && list.some(holds))
      .map(([other]) => other)
      .sort();
    const qualified = `${comparison.domain}/${comparison.name}`;
    const value = JSON.stringify(show(comparison.literal as CelAttribute));
    if (elsewhere.length > 0) {
      hints.push(
        `no device on ${node} has ${qualified} == ${value}; published on: ${elsewhere.slice(0, 5).join(", ")}` +
          (comparison.name === "resourceName"
            ? ` (no SriovResourceFilter giving ${value} selects ${node}: kubectl sriov filters)`
            : ""),
      );
    } else {
      const values = [
        ...new Set(
          everyDevice.flatMap((device) => {
            const published = device.cel?.attributes.get(comparison.domain)?.get(comparison.name);
            return published === undefined ? [] : [show(published)];
          }),
        ),
      ].sort();
      hints.push(
        `no device publishes ${qualified} == ${value}; published values: ${values.slice(0, 8).join(", ") || "none"}` +
          (comparison.name === "resourceName"
            ? " (resourceName comes from a SriovResourceFilter: kubectl sriov filters)"
            : ""),
      );
    }
  }
  return hints;
}

function publishedType(devices: readonly NodeDevice[], qualified: string): string | undefined {
  for (const device of devices) {
    const type = device.types.get(qualified);
    if (type !== undefined) return type;
  }
  return undefined;
}

function literalType(literal: unknown): string {
  if (typeof literal === "bigint") return "int";
  if (typeof literal === "number") return "double";
  if (literal === null) return "null";
  return typeof literal;
}

function show(value: CelAttribute | number | null): string {
  if (typeof value === "object" && value !== null) return value.text;
  return String(value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
