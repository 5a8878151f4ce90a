import type { SriovResourceFilterSpec } from "../../api/v1alpha1/sriov-resource-filter.js";
import type { NodeSelector } from "../../api/v1alpha1/sriov-resource-policy.js";
import type { AttributeValue } from "../devices/attributes.js";
import { pciAddressOf, type Device } from "../devices/model.js";
import { compileConfig, type MatchFilter, type VfPredicate } from "./match.js";
import { nodeSelectorSelects } from "./node-selector.js";
import { validateFilterSpec, type FilterProblem } from "./validate.js";

/** What the filters need of a SriovResourceFilter; a decoded object fits as is. */
export interface FilterObject {
  metadata: { namespace: string; name: string; generation?: number };
  spec: SriovResourceFilterSpec;
  /** Why the object could not be read as a filter (see filterObjectOf): it fails closed. */
  undecodable?: FilterProblem[];
}

/**
 * An upstream SriovResourcePolicy as the node applies it, translated with the
 * DeviceAttributes its configs select (pkg/policies).
 */
export interface PolicyObject {
  metadata: { namespace: string; name: string; generation?: number };
  /** Absent or without terms: every node (see nodeSelectorSelects). */
  nodeSelector?: NodeSelector;
  configs: PolicyConfigRule[];
  /** Why the object could not be read as a policy: it takes no VFs. */
  undecodable?: FilterProblem[];
}

export interface PolicyConfigRule {
  /** A resource filter list that matches every VF when the policy's was empty. */
  resourceFilters: MatchFilter[];
  /** Published on the config's VFs (qualified names). */
  attributes: Readonly<Record<string, AttributeValue>>;
  /** From the attributes, when they name one (see pkg/policies): what `resourceName` pools use. */
  resourceName?: string;
}

export const SRIOV_RESOURCE_POLICY = "SriovResourcePolicy" as const;

export interface FilterRef {
  namespace: string;
  name: string;
  /** For the conditions' observedGeneration. */
  generation?: number;
  /** Set for an upstream SriovResourcePolicy; absent for a SriovResourceFilter. */
  kind?: typeof SRIOV_RESOURCE_POLICY;
}

export interface ConfigRef {
  filter: FilterRef;
  /** Index in `spec.configs`. */
  configIndex: number;
  /** "" for a policy config that names none. */
  resourceName: string;
  /** A policy config's attributes. */
  attributes?: Readonly<Record<string, AttributeValue>>;
}

/** A VF that `loser` matched but `winner` had already taken. */
export interface VfLoss {
  pciAddress: string;
  winner: ConfigRef;
  loser: ConfigRef;
}

/** A filter that lost VFs to other filters on this node: the `Conflicting` condition. */
export interface FilterConflict {
  filter: FilterRef;
  /** Winning filters, in precedence order. */
  losesTo: FilterRef[];
  /** PCI addresses of the VFs it lost to them, sorted. */
  lostVfs: string[];
}

export interface RejectedFilter {
  filter: FilterRef;
  problems: FilterProblem[];
}

export interface NodeFilterInput<T extends Device = Device> {
  nodeLabels: Readonly<Record<string, string>>;
  /** For policies' `matchFields` on `metadata.name`. */
  nodeName?: string;
  devices: readonly T[];
  filters: readonly FilterObject[];
  /** Upstream SriovResourcePolicies of the driver's namespace: any at all makes publishing opt-in. */
  policies?: readonly PolicyObject[];
}

export interface NodeFilterResult<T extends Device = Device> {
  /**
   * What the node publishes, in input order; `resourceName` is set only when a filter or
   * policy takes the device, `attributes` only when a policy does.
   */
  devices: T[];
  /** Filters, then policies, whose nodeSelector selects the node, in precedence order. */
  selectedBy: FilterRef[];
  /** PCI addresses of devices (VFs, whole PFs) withheld because no config matched them. */
  hiddenVfs: string[];
  /**
   * Every match after the first for a VF. Where winner and loser are configs of one
   * filter, that is first-match-wins by design (e.g. a catch-all last config), not a conflict.
   */
  losses: VfLoss[];
  /** Filters that lost VFs to other filters, in precedence order. */
  conflicts: FilterConflict[];
  /** Configs of applied filters that matched no VF on this node. */
  unmatchedConfigs: ConfigRef[];
  /** Selecting filters that failed validation: they keep the node but publish nothing. */
  rejected: RejectedFilter[];
}

/**
 * How SriovResourceFilters shape one node's published VFs.
 *
 * - A filter selects the node when every label of its nodeSelector matches; an empty or
 *   absent selector selects every node.
 * - No filter selects the node: every VF is published, without `resourceName`, so the
 *   default DeviceClass works out of the box.
 * - One or more filters select it: exactly the VFs some config matches are published, each
 *   with that config's `resourceName`; the rest are hidden.
 * - Precedence: filters ordered by namespace, then name; within a filter, configs in order.
 *   The first config that matches a VF takes it. Every later match is reported in `losses`,
 *   and a filter that lost VFs to other filters in `conflicts`: never "ignore everything",
 *   never dependent on the order the filters arrive in.
 * - Matching (see `compileResourceFilter`): within a resource filter every non-empty field
 *   must match (AND), values within a field are ORed, a config matches when any of its
 *   resource filters does (OR), and a resource filter with no fields matches every VF.
 * - A selecting filter that fails `validateFilterSpec`, or could not be read at all, still
 *   selects the node but takes no VFs: failing closed never exposes VFs an operator meant
 *   to restrict.
 * - Upstream SriovResourcePolicies (`policies`) come after every SriovResourceFilter, by
 *   namespace then name, configs in order, with the same first-match rule; a policy config
 *   gives its VFs its attributes (and a resourceName when they name one). Once any policy
 *   exists, publishing is opt-in as upstream's: a node publishes only what some selecting
 *   filter or policy takes, nothing when none selects it. An unreadable policy takes no VFs.
 */
export function applyResourceFilters<T extends Device>(
  input: NodeFilterInput<T>,
): NodeFilterResult<T> {
  const selecting = input.filters
    .filter((filter) => nodeSelectorMatches(filter.spec.nodeSelector, input.nodeLabels))
    // One ref object per filter: losses tell same-filter overlaps apart by identity.
    .map((filter) => ({
      spec: filter.spec,
      undecodable: filter.undecodable,
      ref: filterRef(filter),
    }))
    .sort((a, b) => byPrecedence(a.ref, b.ref));
  const policies = input.policies ?? [];
  const node = { name: input.nodeName ?? "", labels: input.nodeLabels };
  const selectingPolicies = policies
    .filter((policy) => nodeSelectorSelects(policy.nodeSelector, node))
    .map((policy) => ({ policy, ref: policyRef(policy) }))
    .sort((a, b) => byPrecedence(a.ref, b.ref));
  if (selecting.length === 0 && policies.length === 0) return unfiltered(input.devices);

  const claims = new Map<Device, ConfigRef>();
  const losses: VfLoss[] = [];
  const unmatchedConfigs: ConfigRef[] = [];
  const rejected: RejectedFilter[] = [];
  for (const { spec, undecodable, ref } of selecting) {
    const problems = undecodable ?? validateFilterSpec(spec);
    if (problems.length > 0) {
      rejected.push({ filter: ref, problems });
      continue;
    }
    spec.configs.forEach((config, configIndex) => {
      const configRef = { filter: ref, configIndex, resourceName: config.resourceName };
      const matched = claimMatches(compileConfig(config), configRef, input.devices, claims);
      losses.push(...matched.losses);
      if (!matched.any) unmatchedConfigs.push(configRef);
    });
  }
  for (const { policy, ref } of selectingPolicies) {
    if (policy.undecodable !== undefined) {
      rejected.push({ filter: ref, problems: policy.undecodable });
      continue;
    }
    policy.configs.forEach((config, configIndex) => {
      const configRef: ConfigRef = {
        filter: ref,
        configIndex,
        resourceName: config.resourceName ?? "",
        attributes: config.attributes,
      };
      const matched = claimMatches(compileConfig(config), configRef, input.devices, claims);
      losses.push(...matched.losses);
      if (!matched.any) unmatchedConfigs.push(configRef);
    });
  }
  return {
    devices: input.devices.flatMap((device) => {
      const claim = claims.get(device);
      return claim === undefined ? [] : [takenBy(device, claim)];
    }),
    selectedBy: [...selecting, ...selectingPolicies].map(({ ref }) => ref),
    hiddenVfs: input.devices.filter((d) => !claims.has(d)).map(pciAddressOf),
    losses,
    conflicts: conflictsOf(losses),
    unmatchedConfigs,
    rejected,
  };
}

/** Gives the config every VF it matches that no earlier config took. */
function claimMatches(
  matches: VfPredicate,
  config: ConfigRef,
  devices: readonly Device[],
  claims: Map<Device, ConfigRef>,
): { any: boolean; losses: VfLoss[] } {
  let any = false;
  const losses: VfLoss[] = [];
  for (const device of devices) {
    if (!matches(device)) continue;
    any = true;
    const winner = claims.get(device);
    if (winner === undefined) claims.set(device, config);
    else losses.push({ pciAddress: pciAddressOf(device), winner, loser: config });
  }
  return { any, losses };
}

/** The device as the config that took it publishes it: its resourceName and attributes, if any. */
function takenBy<T extends Device>(device: T, claim: ConfigRef): T {
  const copy = withoutResourceName(device);
  if (claim.resourceName !== "") copy.resourceName = claim.resourceName;
  if (claim.attributes !== undefined && Object.keys(claim.attributes).length > 0) {
    copy.attributes = claim.attributes;
  }
  return copy;
}

function unfiltered<T extends Device>(devices: readonly T[]): NodeFilterResult<T> {
  return {
    devices: devices.map(withoutResourceName),
    selectedBy: [],
    hiddenVfs: [],
    losses: [],
    conflicts: [],
    unmatchedConfigs: [],
    rejected: [],
  };
}

function withoutResourceName<T extends Device>(device: T): T {
  const copy = { ...device };
  delete copy.resourceName;
  delete copy.attributes;
  return copy;
}

/** Losses between different filters, grouped by the losing filter (already in precedence order). */
function conflictsOf(losses: readonly VfLoss[]): FilterConflict[] {
  const byLoser = new Map<string, FilterConflict>();
  for (const { pciAddress, winner, loser } of losses) {
    if (winner.filter === loser.filter) continue;
    const key = formatFilterRef(loser.filter);
    let conflict = byLoser.get(key);
    if (conflict === undefined) {
      conflict = { filter: loser.filter, losesTo: [], lostVfs: [] };
      byLoser.set(key, conflict);
    }
    if (!conflict.losesTo.includes(winner.filter)) conflict.losesTo.push(winner.filter);
    if (!conflict.lostVfs.includes(pciAddress)) conflict.lostVfs.push(pciAddress);
  }
  return [...byLoser.values()].map((conflict) => ({
    ...conflict,
    losesTo: [...conflict.losesTo].sort(byPrecedence),
    lostVfs: [...conflict.lostVfs].sort(),
  }));
}

/** Every label of the selector must be on the node with the same value; empty selects all. */
export function nodeSelectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector ?? {}).every(
    ([key, value]) => Object.hasOwn(labels, key) && labels[key] === value,
  );
}

/** `namespace/name`, as operators write it; a policy's with its kind in front. */
export function formatFilterRef(ref: FilterRef): string {
  const name = `${ref.namespace}/${ref.name}`;
  return ref.kind === undefined ? name : `${ref.kind} ${name}`;
}

function policyRef(policy: PolicyObject): FilterRef {
  return { ...filterRef(policy), kind: SRIOV_RESOURCE_POLICY };
}

function filterRef(filter: Pick<FilterObject, "metadata">): FilterRef {
  const { namespace, name, generation } = filter.metadata;
  return generation === undefined ? { namespace, name } : { namespace, name, generation };
}

/** Namespace, then name, by character code: the same on every node whatever the locale. */
function byPrecedence(a: FilterRef, b: FilterRef): number {
  return compare(a.namespace, b.namespace) || compare(a.name, b.name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
