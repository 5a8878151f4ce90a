import {
  CONDITION_ACCEPTED,
  CONDITION_CONFLICTING,
  sriovResourceFilterSpecSchema,
  sriovResourceFilterStatusSchema,
  type Condition,
  type SriovResourceFilterSpec,
  type SriovResourceFilterStatus,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import { decode, SchemaError } from "../../api/schema/index.js";
import { isPfDevice, type Device } from "../devices/model.js";
import {
  applyResourceFilters,
  formatFilterRef,
  type FilterObject,
  type FilterRef,
} from "../filters/apply.js";
import { compileConfig, type VfPredicate } from "../filters/match.js";
import { validateFilterSpec } from "../filters/validate.js";
import type { KubeObject } from "../../lib/kube/client.js";
import { canonical } from "../../lib/util/canonical-json.js";

/** A SriovResourceFilter as the API server returns it: spec and status unchecked. */
export interface FilterResource extends KubeObject {
  spec?: unknown;
  status?: unknown;
}

/** Everything the status of every filter depends on: the controller's three caches. */
export interface FilterStatusInput {
  filters: readonly FilterResource[];
  nodes: readonly KubeObject[];
  /** Node name → the VFs and whole PFs it publishes (see `allDevicesByNode`). */
  devicesByNode: ReadonlyMap<string, readonly Device[]>;
}

/** A condition as computed, before `lastTransitionTime` is carried over or set. */
export type DesiredCondition = Omit<Condition, "lastTransitionTime">;

/** The status one filter should have, transition times aside. */
export interface DesiredFilterStatus {
  namespace: string;
  name: string;
  generation: number | undefined;
  conditions: DesiredCondition[];
  matchedNodes: number;
  /** `count`: VFs; `wholePfs`: whole PFs, only when there are any. */
  devicesExposed: { resourceName: string; count: number; wholePfs?: number }[];
}

/** A status that differs from the one stored and must be written. */
export interface StatusWrite {
  desired: DesiredFilterStatus;
  status: SriovResourceFilterStatus;
  /** Of the object the status was compared with; the write is conditional on it. */
  resourceVersion: string | undefined;
}

export const REASON_VALID = "Valid";
export const REASON_INVALID_SPEC = "InvalidSpec";
export const REASON_NO_CONFLICT = "NoConflict";
export const REASON_VFS_TAKEN = "VfsTakenByOtherFilters";
export const REASON_NOT_APPLIED = "NotApplied";

/** Winners named in a Conflicting message; the rest are counted. */
const MAX_WINNERS_LISTED = 20;
/** Problems listed in an Accepted message; the rest are counted. */
const MAX_PROBLEMS_LISTED = 20;

/** A filter that decoded, with what the per-node passes need of it. */
interface ReadableFilter {
  key: string;
  object: FilterObject;
  problems: string[];
  /** resourceName → its config's predicate; empty for an invalid spec (it takes no VFs). */
  predicates: Map<string, VfPredicate>;
  tally: FilterTally;
}

/** What one filter lost to one winner, over all nodes. */
interface LossTally {
  winner: FilterRef;
  vfs: number;
  /** Whole PFs lost, counted apart from VFs. */
  pfs: number;
  nodes: Set<string>;
}

/** Per-filter totals gathered over the nodes. */
interface FilterTally {
  matchedNodes: number;
  /** resourceName → VFs it published. */
  exposed: Map<string, number>;
  /** resourceName → whole PFs it published. */
  exposedPfs: Map<string, number>;
  /** Winner `namespace/name` → what this filter lost to it. */
  lostTo: Map<string, LossTally>;
  lostOnNodes: Set<string>;
}

/**
 * The status every filter should have, from the three caches. Pure, so one pass over all
 * filters is cheap to test and to benchmark. Per node, the filters are applied exactly as
 * the node plugin applies them, to the devices the node publishes (VFs no filter matched
 * are hidden, so they cannot show up as conflicts, which is fine: nobody lost them).
 */
export function desiredFilterStatuses(input: FilterStatusInput): DesiredFilterStatus[] {
  const readable = new Map<string, ReadableFilter>();
  const decodeProblems = new Map<FilterResource, string[]>();
  for (const resource of input.filters) {
    const read = readFilter(resource);
    if (Array.isArray(read)) decodeProblems.set(resource, read);
    else readable.set(read.key, read);
  }
  const filterObjects = [...readable.values()].map((filter) => filter.object);
  for (const node of input.nodes) tallyNode(node, input.devicesByNode, filterObjects, readable);

  return input.filters.map((resource) => {
    const { namespace = "", name = "", generation } = resource.metadata ?? {};
    const problems = decodeProblems.get(resource);
    if (problems !== undefined) {
      return {
        namespace,
        name,
        generation,
        conditions: notAcceptedConditions(problems, generation),
        matchedNodes: 0,
        devicesExposed: [],
      };
    }
    const filter = readable.get(formatFilterRef({ namespace, name }))!;
    const tally = filter.tally;
    return {
      namespace,
      name,
      generation,
      conditions:
        filter.problems.length > 0
          ? notAcceptedConditions(filter.problems, generation)
          : acceptedConditions(tally, generation),
      matchedNodes: tally.matchedNodes,
      devicesExposed: filter.object.spec.configs.map(({ resourceName }) => {
        const wholePfs = tally.exposedPfs.get(resourceName) ?? 0;
        return {
          resourceName,
          count: tally.exposed.get(resourceName) ?? 0,
          ...(wholePfs > 0 ? { wholePfs } : {}),
        };
      }),
    };
  });
}

/**
 * The statuses to write: desired statuses with transition times, for the filters whose
 * stored status differs. `now` stamps conditions whose status changed.
 */
export function statusWrites(input: FilterStatusInput, now: Date): StatusWrite[] {
  return desiredFilterStatuses(input).flatMap((desired, index) => {
    const write = statusWrite(desired, input.filters[index]!, now);
    return write === undefined ? [] : [write];
  });
}

/** The write that brings `stored` to `desired`, or undefined when it is there already. */
export function statusWrite(
  desired: DesiredFilterStatus,
  stored: FilterResource,
  now: Date,
): StatusWrite | undefined {
  const status = withTransitionTimes(desired, readStatus(stored.status), now);
  if (canonical(status) === canonical(stored.status ?? {})) return undefined;
  return { desired, status, resourceVersion: stored.metadata?.resourceVersion };
}

/**
 * The full status: each condition keeps its `lastTransitionTime` while its status stays
 * the same, and gets `now` when it changes or is new.
 */
export function withTransitionTimes(
  desired: DesiredFilterStatus,
  current: SriovResourceFilterStatus | undefined,
  now: Date,
): SriovResourceFilterStatus {
  const stamp = formatTime(now);
  const previous = new Map((current?.conditions ?? []).map((c) => [c.type, c]));
  return {
    conditions: desired.conditions.map((condition) => {
      const before = previous.get(condition.type);
      const lastTransitionTime =
        before !== undefined && before.status === condition.status
          ? before.lastTransitionTime
          : stamp;
      return { ...condition, lastTransitionTime };
    }),
    matchedNodes: desired.matchedNodes,
    devicesExposed: desired.devicesExposed,
  };
}

/** metav1.Time: RFC 3339 in UTC, whole seconds. */
export function formatTime(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A stored status that does not decode (written by hand, say) is replaced, not merged. */
function readStatus(status: unknown): SriovResourceFilterStatus | undefined {
  if (status === undefined) return undefined;
  try {
    return decode(sriovResourceFilterStatusSchema, status, "status");
  } catch {
    return undefined;
  }
}

/** The filter ready for the per-node passes, or why its spec does not decode. */
function readFilter(resource: FilterResource): ReadableFilter | string[] {
  const { namespace = "", name = "", generation } = resource.metadata ?? {};
  let spec: SriovResourceFilterSpec;
  try {
    spec = decode(sriovResourceFilterSpecSchema, resource.spec, "spec");
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  const problems = validateFilterSpec(spec).map(({ path, message }) => `${path}: ${message}`);
  const metadata = generation === undefined ? { namespace, name } : { namespace, name, generation };
  return {
    key: formatFilterRef({ namespace, name }),
    object: { metadata, spec },
    problems,
    predicates: new Map(
      problems.length > 0
        ? []
        : spec.configs.map((config) => [config.resourceName, compileConfig(config)]),
    ),
    tally: {
      matchedNodes: 0,
      exposed: new Map(),
      exposedPfs: new Map(),
      lostTo: new Map(),
      lostOnNodes: new Set(),
    },
  };
}

/** Applies the filters on one node and adds what each won, lost and selected to its tally. */
function tallyNode(
  node: KubeObject,
  devicesByNode: ReadonlyMap<string, readonly Device[]>,
  filters: readonly FilterObject[],
  readable: ReadonlyMap<string, ReadableFilter>,
): void {
  const nodeName = node.metadata?.name ?? "";
  const result = applyResourceFilters({
    nodeLabels: node.metadata?.labels ?? {},
    devices: devicesByNode.get(nodeName) ?? [],
    filters,
  });
  // The result names each filter by one ref object: look each up once, then by identity.
  const selecting = new Map(
    result.selectedBy.map((ref) => [ref, readable.get(formatFilterRef(ref))!]),
  );
  for (const { tally } of selecting.values()) tally.matchedNodes++;
  for (const device of result.devices) {
    const winner = winnerOf(device, selecting.values());
    if (winner === undefined) continue;
    const counts = isPfDevice(device) ? winner.exposedPfs : winner.exposed;
    counts.set(device.resourceName!, (counts.get(device.resourceName!) ?? 0) + 1);
  }
  const wholePfAddresses = new Set(
    result.devices.filter(isPfDevice).map((device) => device.pf.pciAddress),
  );
  // A loser can match one VF with several configs: count each VF once per loser.
  const counted = new Map<FilterRef, Set<string>>();
  for (const { pciAddress, winner, loser } of result.losses) {
    if (winner.filter === loser.filter) continue;
    let lostVfs = counted.get(loser.filter);
    if (lostVfs === undefined) {
      lostVfs = new Set();
      counted.set(loser.filter, lostVfs);
    }
    if (lostVfs.has(pciAddress)) continue;
    lostVfs.add(pciAddress);
    const tally = selecting.get(loser.filter)!.tally;
    const winnerKey = selecting.get(winner.filter)!.key;
    let lost = tally.lostTo.get(winnerKey);
    if (lost === undefined) {
      lost = { winner: winner.filter, vfs: 0, pfs: 0, nodes: new Set() };
      tally.lostTo.set(winnerKey, lost);
    }
    if (wholePfAddresses.has(pciAddress)) lost.pfs++;
    else lost.vfs++;
    lost.nodes.add(nodeName);
    tally.lostOnNodes.add(nodeName);
  }
}

/**
 * The tally of the filter that took a published device. The first config in precedence
 * order that matches a VF takes it, so no earlier config matches it at all: the first
 * selecting filter with a config of the device's resourceName that matches is the one.
 */
function winnerOf(device: Device, selecting: Iterable<ReadableFilter>): FilterTally | undefined {
  for (const filter of selecting) {
    if (filter.predicates.get(device.resourceName ?? "")?.(device)) return filter.tally;
  }
  return undefined;
}

function notAcceptedConditions(
  problems: readonly string[],
  generation: number | undefined,
): DesiredCondition[] {
  const listed = problems.slice(0, MAX_PROBLEMS_LISTED).join("; ");
  const more =
    problems.length > MAX_PROBLEMS_LISTED
      ? ` (and ${problems.length - MAX_PROBLEMS_LISTED} more)`
      : "";
  return [
    condition(
      CONDITION_ACCEPTED,
      "False",
      REASON_INVALID_SPEC,
      `The spec is invalid: ${listed}${more}. The filter still selects its nodes but publishes ` +
        "no VFs on them until the spec is fixed.",
      generation,
    ),
    condition(
      CONDITION_CONFLICTING,
      "False",
      REASON_NOT_APPLIED,
      "The filter takes no VFs while its spec is invalid (see Accepted).",
      generation,
    ),
  ];
}

function acceptedConditions(
  tally: FilterTally,
  generation: number | undefined,
): DesiredCondition[] {
  const accepted = condition(
    CONDITION_ACCEPTED,
    "True",
    REASON_VALID,
    "The spec is valid and applied on the nodes the nodeSelector selects.",
    generation,
  );
  if (tally.lostTo.size === 0) {
    return [
      accepted,
      condition(
        CONDITION_CONFLICTING,
        "False",
        REASON_NO_CONFLICT,
        "No other filter takes VFs this filter matches on any node that publishes them.",
        generation,
      ),
    ];
  }
  return [
    accepted,
    condition(CONDITION_CONFLICTING, "True", REASON_VFS_TAKEN, conflictMessage(tally), generation),
  ];
}

function conflictMessage(tally: FilterTally): string {
  // Winners were met node by node; list them in precedence order, whatever the node order.
  const winners = [...tally.lostTo.values()].sort((a, b) => byPrecedence(a.winner, b.winner));
  const total = winners.reduce((sum, lost) => sum + lost.vfs, 0);
  const totalPfs = winners.reduce((sum, lost) => sum + lost.pfs, 0);
  const devices = (vfs: number, pfs: number) =>
    count(vfs, "VF") + (pfs > 0 ? ` and ${count(pfs, "whole PF")}` : "");
  const listed = winners
    .slice(0, MAX_WINNERS_LISTED)
    .map(
      (lost) =>
        `${formatFilterRef(lost.winner)} (${devices(lost.vfs, lost.pfs)} on ${count(lost.nodes.size, "node")})`,
    )
    .join(", ");
  const more =
    winners.length > MAX_WINNERS_LISTED
      ? ` and ${winners.length - MAX_WINNERS_LISTED} more filters`
      : "";
  return (
    `${devices(total, totalPfs)} this filter matches on ${count(tally.lostOnNodes.size, "node")} ` +
    `went to filters that take precedence (by namespace, then name): ${listed}${more}. ` +
    "Narrow the nodeSelector or resourceFilters of one side, or rename a filter to change precedence."
  );
}

function condition(
  type: string,
  status: "True" | "False",
  reason: string,
  message: string,
  generation: number | undefined,
): DesiredCondition {
  return generation === undefined
    ? { type, status, reason, message }
    : { type, status, observedGeneration: generation, reason, message };
}

/** Namespace, then name, by character code: the order filters take VFs in. */
function byPrecedence(a: FilterRef, b: FilterRef): number {
  return compare(a.namespace, b.namespace) || compare(a.name, b.name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
