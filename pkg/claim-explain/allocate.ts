import type { PublishedTaint } from "../controller/slice-devices.js";
import type { CelAttribute, CelDevice, CompiledSelector, SelectorOutcome } from "./cel.js";

/**
 * One claim's allocation on one node, searched the way the scheduler's structured allocator
 * (k8s.io/dynamic-resource-allocation/structured) does, so explain agrees with it: requests
 * in order, devices in the order their slices list them, a device in use skipped before its
 * selectors run, the class's selectors before the request's, each list stopping at the first
 * false; a CEL runtime error ends the search for the node (the scheduler fails the node, it
 * does not skip the device); taints not tolerated, then constraints, then backtracking.
 */

export interface Toleration {
  key: string;
  operator: string;
  value: string;
  effect: string;
}

export interface SelectorRef {
  /** `class NAME` or `request`. */
  source: string;
  /** Index in its list (the scheduler's "selector #i"). */
  index: number;
  selector: CompiledSelector;
}

export interface SearchRequest {
  /** The request name (`request/subrequest` for a subrequest). */
  name: string;
  /** Names a `constraints[].requests` entry may use for it. */
  constraintNames: readonly string[];
  mode: "ExactCount" | "All";
  count: number;
  tolerations: readonly Toleration[];
  selectors: readonly SelectorRef[];
}

export interface SearchConstraint {
  /** Empty: every request. */
  requests: readonly string[];
  kind: "matchAttribute" | "distinctAttribute";
  /** Fully qualified attribute name. */
  attribute: string;
}

export interface SearchDevice {
  name: string;
  inUse: boolean;
  /**
   * Shared counters the device consumes (by a key unique per pool and counter), with what
   * other claims' allocations leave of each; picks of one claim add up against it.
   */
  counters?: { key: string; amount: bigint; left: bigint }[];
  taints: readonly PublishedTaint[];
  /** Undefined when an attribute cannot be read (every selector then errors, as upstream). */
  cel: CelDevice | undefined;
  problem?: string;
}

export type SearchResult =
  | { outcome: "fits"; picks: { request: string; device: string }[] }
  | { outcome: "no-fit" }
  | { outcome: "error"; request: string; device: string; selector: SelectorRef; message: string }
  | { outcome: "unknown"; message: string };

/** Recursion steps before giving up: the scheduler has a time limit, explain has this. */
export const MAX_SEARCH_STEPS = 200_000;

/** What one selector list says about one device: the first selector that does not pass. */
export function firstFailing(
  selectors: readonly SelectorRef[],
  device: SearchDevice,
): { selector: SelectorRef; outcome: Exclude<SelectorOutcome, { result: "pass" }> } | undefined {
  for (const selector of selectors) {
    const outcome = evaluateOn(selector.selector, device);
    if (outcome.result !== "pass") return { selector, outcome };
  }
  return undefined;
}

export function evaluateOn(selector: CompiledSelector, device: SearchDevice): SelectorOutcome {
  if (device.cel === undefined) {
    return { result: "fail", kind: "runtime-error", message: device.problem ?? "unreadable" };
  }
  return selector.evaluate(device.cel);
}

class SearchError extends Error {
  constructor(readonly result: Exclude<SearchResult, { outcome: "fits" | "no-fit" }>) {
    super(result.outcome);
  }
}

export function tolerates(toleration: Toleration, taint: PublishedTaint): boolean {
  if (toleration.effect !== "" && toleration.effect !== taint.effect) return false;
  if (toleration.key !== "" && toleration.key !== taint.key) return false;
  if (toleration.operator === "" || toleration.operator === "Equal") {
    return toleration.value === taint.value;
  }
  return toleration.operator === "Exists";
}

/** A NoSchedule or NoExecute taint no toleration of the request covers. */
export function blockingTaint(
  device: SearchDevice,
  tolerations: readonly Toleration[],
): PublishedTaint | undefined {
  return device.taints.find(
    (taint) =>
      (taint.effect === "NoSchedule" || taint.effect === "NoExecute") &&
      !tolerations.some((toleration) => tolerates(toleration, taint)),
  );
}

/** The attribute a constraint compares: `domain/id`, or `id` under the driver's domain. */
export function constraintValue(device: SearchDevice, attribute: string): CelAttribute | undefined {
  const slash = attribute.indexOf("/");
  if (slash < 0 || device.cel === undefined) return undefined;
  return device.cel.attributes.get(attribute.slice(0, slash))?.get(attribute.slice(slash + 1));
}

export function sameValue(a: CelAttribute, b: CelAttribute): boolean {
  if (typeof a === "object" && typeof b === "object") return a.text === b.text;
  return typeof a === typeof b && a === b;
}

export function searchAllocation(
  requests: readonly SearchRequest[],
  constraints: readonly SearchConstraint[],
  devices: readonly SearchDevice[],
): SearchResult {
  const selectable = new Map<string, boolean>();
  const isSelectable = (request: SearchRequest, device: SearchDevice): boolean => {
    const key = `${request.name}\u0000${device.name}`;
    const cached = selectable.get(key);
    if (cached !== undefined) return cached;
    const failing = firstFailing(request.selectors, device);
    if (failing !== undefined && failing.outcome.result === "unknown") {
      throw new SearchError({ outcome: "unknown", message: failing.outcome.message });
    }
    if (
      failing !== undefined &&
      failing.outcome.result === "fail" &&
      failing.outcome.kind !== "false"
    ) {
      throw new SearchError({
        outcome: "error",
        request: request.name,
        device: device.name,
        selector: failing.selector,
        message: failing.outcome.message,
      });
    }
    selectable.set(key, failing === undefined);
    return failing === undefined;
  };

  // Constraint state: per constraint, the values of the devices added so far.
  const added: CelAttribute[][] = constraints.map(() => []);
  const applies = (constraint: SearchConstraint, request: SearchRequest) =>
    constraint.requests.length === 0 ||
    request.constraintNames.some((name) => constraint.requests.includes(name));
  const tryConstraints = (
    request: SearchRequest,
    device: SearchDevice,
  ): (() => void) | undefined => {
    const pushed: number[] = [];
    const undo = () => pushed.forEach((index) => added[index]!.pop());
    for (const [index, constraint] of constraints.entries()) {
      if (!applies(constraint, request)) continue;
      const value = constraintValue(device, constraint.attribute);
      const values = added[index]!;
      const ok =
        value !== undefined &&
        (constraint.kind === "matchAttribute"
          ? values.length === 0 || sameValue(values[0]!, value)
          : !values.some((other) => sameValue(other, value)));
      if (!ok) {
        undo();
        return undefined;
      }
      values.push(value);
      pushed.push(index);
    }
    return undo;
  };

  const inUse = new Set(devices.filter((device) => device.inUse).map((device) => device.name));
  const picks: { request: string; device: string }[] = [];
  let steps = 0;

  // What this claim's picks consume of each shared counter so far.
  const taken = new Map<string, bigint>();
  const countersFit = (device: SearchDevice) =>
    (device.counters ?? []).every(
      (counter) => (taken.get(counter.key) ?? 0n) + counter.amount <= counter.left,
    );
  const takeCounters = (device: SearchDevice, sign: bigint) => {
    for (const counter of device.counters ?? []) {
      taken.set(counter.key, (taken.get(counter.key) ?? 0n) + sign * counter.amount);
    }
  };

  const allocate = (request: SearchRequest, device: SearchDevice): (() => void) | undefined => {
    if (inUse.has(device.name)) return undefined;
    if (blockingTaint(device, request.tolerations) !== undefined) return undefined;
    if (!countersFit(device)) return undefined;
    const undoConstraints = tryConstraints(request, device);
    if (undoConstraints === undefined) return undefined;
    inUse.add(device.name);
    takeCounters(device, 1n);
    picks.push({ request: request.name, device: device.name });
    return () => {
      picks.pop();
      takeCounters(device, -1n);
      inUse.delete(device.name);
      undoConstraints();
    };
  };

  // The devices a request in "All" mode needs, found before the search as upstream does.
  const allDevices = new Map<string, SearchDevice[]>();
  const wanted = (request: SearchRequest): number =>
    request.mode === "All" ? (allDevices.get(request.name)?.length ?? 0) : request.count;

  const allocateOne = (requestIndex: number, deviceIndex: number): boolean => {
    if (++steps > MAX_SEARCH_STEPS) {
      throw new SearchError({
        outcome: "unknown",
        message: `gave up after ${MAX_SEARCH_STEPS} search steps`,
      });
    }
    const request = requests[requestIndex];
    if (request === undefined) return true;
    if (request.mode === "All" && wanted(request) === 0) return false;
    if (deviceIndex >= wanted(request)) return allocateOne(requestIndex + 1, 0);
    if (request.mode === "All") {
      const undo = allocate(request, allDevices.get(request.name)![deviceIndex]!);
      if (undo === undefined) return false;
      if (allocateOne(requestIndex, deviceIndex + 1)) return true;
      undo();
      return false;
    }
    for (const device of devices) {
      if (inUse.has(device.name)) continue;
      if (!isSelectable(request, device)) continue;
      const undo = allocate(request, device);
      if (undo === undefined) continue;
      if (allocateOne(requestIndex, deviceIndex + 1)) return true;
      undo();
    }
    return false;
  };

  try {
    for (const request of requests) {
      if (request.mode === "All") {
        allDevices.set(
          request.name,
          devices.filter((device) => isSelectable(request, device)),
        );
      }
    }
    return allocateOne(0, 0) ? { outcome: "fits", picks: [...picks] } : { outcome: "no-fit" };
  } catch (error) {
    if (error instanceof SearchError) return error.result;
    throw error;
  }
}
