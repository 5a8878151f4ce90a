import { list, member } from "../cluster-inventory/claims.js";
import type { KubeObject } from "../../lib/kube/client.js";
import { newestPoolSlices, type PublishedTaint } from "../controller/slice-devices.js";
import type { CelAttribute, CelDevice } from "./cel.js";
import { Quantity, parseQuantity, parseSemver } from "./cel-library.js";
import type { Toleration } from "./allocate.js";

/** One request (or one `firstAvailable` subrequest) as read from a claim's spec. */
export interface RequestSpec {
  /** `request` or `request/subrequest`. */
  name: string;
  deviceClassName: string;
  mode: "ExactCount" | "All";
  count: number;
  selectors: string[];
  tolerations: Toleration[];
}

/** A request: one spec, or the subrequests tried in order (`firstAvailable`). */
export interface RequestChoice {
  name: string;
  alternatives: RequestSpec[];
}

export interface ConstraintSpec {
  requests: string[];
  kind: "matchAttribute" | "distinctAttribute";
  attribute: string;
}

export interface ClaimSpec {
  requests: RequestChoice[];
  constraints: ConstraintSpec[];
}

/** Limits on what one claim may hold; the API's own limits are lower. */
const MAX_REQUESTS = 32;
const MAX_SELECTORS = 32;
const MAX_CONSTRAINTS = 32;
const MAX_TOLERATIONS = 16;
const MAX_TEXT = 10 * 1024;

/**
 * The devices part of a ResourceClaim spec (`spec.devices`; a template's is
 * `spec.spec.devices`). Every field is checked; what is not well formed is reported as a
 * string naming the field.
 */
export function readClaimSpec(spec: unknown): ClaimSpec | string {
  const devices = member(spec, "devices");
  const requests = member(devices, "requests");
  if (!Array.isArray(requests) || requests.length === 0) {
    return "spec.devices.requests: the claim asks for no devices";
  }
  if (requests.length > MAX_REQUESTS) return `spec.devices.requests: more than ${MAX_REQUESTS}`;
  const choices: RequestChoice[] = [];
  for (const [index, request] of requests.entries()) {
    const name = text(member(request, "name"));
    if (name === undefined) return `spec.devices.requests[${index}].name: missing`;
    const exactly = member(request, "exactly");
    const firstAvailable = member(request, "firstAvailable");
    if (exactly !== undefined) {
      const read = readRequest(name, exactly, `spec.devices.requests[${index}].exactly`);
      if (typeof read === "string") return read;
      choices.push({ name, alternatives: [read] });
    } else if (Array.isArray(firstAvailable) && firstAvailable.length > 0) {
      const alternatives: RequestSpec[] = [];
      for (const [subIndex, sub] of firstAvailable.slice(0, MAX_REQUESTS).entries()) {
        const where = `spec.devices.requests[${index}].firstAvailable[${subIndex}]`;
        const subName = text(member(sub, "name"));
        if (subName === undefined) return `${where}.name: missing`;
        const read = readRequest(`${name}/${subName}`, sub, where);
        if (typeof read === "string") return read;
        alternatives.push(read);
      }
      choices.push({ name, alternatives });
    } else {
      return `spec.devices.requests[${index}]: neither exactly nor firstAvailable`;
    }
  }
  const constraints: ConstraintSpec[] = [];
  const rawConstraints = member(devices, "constraints");
  for (const [index, constraint] of list(rawConstraints).slice(0, MAX_CONSTRAINTS).entries()) {
    const requestNames = list(member(constraint, "requests")).flatMap((entry) => {
      const name = text(entry);
      return name === undefined ? [] : [name];
    });
    const match = text(member(constraint, "matchAttribute"));
    const distinct = text(member(constraint, "distinctAttribute"));
    if (match !== undefined) {
      constraints.push({ requests: requestNames, kind: "matchAttribute", attribute: match });
    } else if (distinct !== undefined) {
      constraints.push({ requests: requestNames, kind: "distinctAttribute", attribute: distinct });
    } else {
      return `spec.devices.constraints[${index}]: neither matchAttribute nor distinctAttribute`;
    }
  }
  return { requests: choices, constraints };
}

function readRequest(name: string, value: unknown, where: string): RequestSpec | string {
  const deviceClassName = text(member(value, "deviceClassName"));
  if (deviceClassName === undefined) return `${where}.deviceClassName: missing`;
  const mode = member(value, "allocationMode") ?? "ExactCount";
  if (mode !== "ExactCount" && mode !== "All") {
    return `${where}.allocationMode: ${JSON.stringify(mode)} is neither ExactCount nor All`;
  }
  const count = member(value, "count") ?? 1;
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 1) {
    return `${where}.count: must be a positive integer`;
  }
  const selectors = readSelectors(member(value, "selectors"), `${where}.selectors`);
  if (typeof selectors === "string") return selectors;
  const tolerations = list(member(value, "tolerations"))
    .slice(0, MAX_TOLERATIONS)
    .map((toleration) => ({
      key: text(member(toleration, "key")) ?? "",
      operator: text(member(toleration, "operator")) ?? "",
      value: text(member(toleration, "value")) ?? "",
      effect: text(member(toleration, "effect")) ?? "",
    }));
  return { name, deviceClassName, mode, count, selectors, tolerations };
}

/** The CEL expressions of a selector list (`[{cel: {expression}}]`). */
export function readSelectors(value: unknown, where: string): string[] | string {
  const selectors = list(value);
  if (selectors.length > MAX_SELECTORS) return `${where}: more than ${MAX_SELECTORS}`;
  const expressions: string[] = [];
  for (const [index, selector] of selectors.entries()) {
    const expression = text(member(member(selector, "cel"), "expression"));
    if (expression === undefined) return `${where}[${index}].cel.expression: missing`;
    expressions.push(expression);
  }
  return expressions;
}

/** A published device as explain evaluates it. */
export interface NodeDevice {
  name: string;
  pool: string;
  taints: PublishedTaint[];
  /** Undefined when an attribute cannot be turned into a CEL value (see `problem`). */
  cel: CelDevice | undefined;
  problem?: string;
  /** Qualified attribute name → its type, for hints. */
  types: Map<string, "string" | "int" | "bool" | "version">;
  /**
   * What the device takes of its pool's shared counters (a whole PF all of a counter set, each
   * of its VFs one); `capacity` is the set's value, undefined when no slice of the pool has it.
   */
  consumes: { counterSet: string; counter: string; amount: bigint; capacity?: bigint }[];
}

/** Node name → its devices of `driverName` in the order the slices list them. */
export function devicesByNode(
  slices: Iterable<KubeObject>,
  driverName: string,
): Map<string, NodeDevice[]> {
  const nodes = new Map<string, NodeDevice[]>();
  for (const pool of newestPoolSlices(slices, driverName)) {
    const capacities = new Map(
      pool.flatMap((slice) => slice.sharedCounters).map((set) => [set.name, set.counters]),
    );
    for (const slice of pool) {
      const devices = nodes.get(slice.nodeName) ?? [];
      nodes.set(slice.nodeName, devices);
      for (const device of slice.devices) {
        devices.push({
          name: device.name,
          pool: slice.poolName,
          taints: device.taints,
          ...celDevice(driverName, device.attributes, device.capacity),
          consumes: device.consumesCounters.flatMap((set) =>
            [...set.counters].map(([counter, amount]) => {
              const capacity = capacities.get(set.name)?.get(counter);
              return {
                counterSet: set.name,
                counter,
                amount,
                ...(capacity === undefined ? {} : { capacity }),
              };
            }),
          ),
        });
      }
    }
  }
  return nodes;
}

/**
 * A device's attributes and capacity as the scheduler hands them to CEL
 * (k8s.io/dynamic-resource-allocation/cel, DeviceMatches): a name without a domain under
 * the driver's; an attribute whose value cannot be read makes every selector fail on the
 * device with that error.
 */
export function celDevice(
  driver: string,
  attributes: Record<string, unknown>,
  capacity: Record<string, unknown>,
): Pick<NodeDevice, "cel" | "problem" | "types"> {
  const types: NodeDevice["types"] = new Map();
  const device: CelDevice = {
    driver,
    allowMultipleAllocations: false,
    attributes: new Map(),
    capacity: new Map(),
  };
  for (const [name, raw] of Object.entries(attributes)) {
    const typed = attributeValue(raw);
    if ("problem" in typed) {
      return { cel: undefined, problem: `attribute ${name}: ${typed.problem}`, types };
    }
    const [domain, id] = split(name, driver);
    types.set(`${domain}/${id}`, typed.type);
    const map = device.attributes.get(domain) ?? new Map<string, CelAttribute>();
    map.set(id, typed.value);
    device.attributes.set(domain, map);
  }
  for (const [name, raw] of Object.entries(capacity)) {
    const value = member(raw, "value");
    const quantity = typeof value === "string" ? parseQuantity(value) : undefined;
    if (quantity === undefined) {
      return { cel: undefined, problem: `capacity ${name}: not a quantity`, types };
    }
    const [domain, id] = split(name, driver);
    const map = device.capacity.get(domain) ?? new Map<string, Quantity>();
    map.set(id, quantity);
    device.capacity.set(domain, map);
  }
  return { cel: device, types };
}

function attributeValue(
  raw: unknown,
): { value: CelAttribute; type: "string" | "int" | "bool" | "version" } | { problem: string } {
  const int = member(raw, "int");
  if (typeof int === "number" && Number.isInteger(int)) return { value: BigInt(int), type: "int" };
  const bool = member(raw, "bool");
  if (typeof bool === "boolean") return { value: bool, type: "bool" };
  const string = member(raw, "string");
  if (typeof string === "string") return { value: string, type: "string" };
  const version = member(raw, "version");
  if (typeof version === "string") {
    const parsed = parseSemver(version);
    return parsed === undefined
      ? { problem: "parse semantic version: not SemVer 2.0.0" }
      : { value: parsed, type: "version" };
  }
  return { problem: "unsupported attribute value" };
}

function split(name: string, driver: string): [string, string] {
  const slash = name.indexOf("/");
  return slash < 0 ? [driver, name] : [name.slice(0, slash), name.slice(slash + 1)];
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" && value.length <= MAX_TEXT ? value : undefined;
}
