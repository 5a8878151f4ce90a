/** Who holds a published device: one ResourceClaim's allocation result, and its consumers. */
export interface DeviceHolder {
  namespace: string;
  claim: string;
  /** The request of the claim the device was allocated for (`request` or `request/subrequest`). */
  request: string;
  /** `status.reservedFor`: the pods (or other consumers) using the claim now. */
  consumers: Consumer[];
}

export interface Consumer {
  /** `pods` for a pod; another resource for other consumers. */
  resource: string;
  name: string;
}

/** Pool name → device name → the claims allocated it (more than one only when shared). */
export type HoldersByDevice = Map<string, Map<string, DeviceHolder[]>>;

/** Limits on what one claim may contribute; the API's own limits are lower. */
export const MAX_RESULTS_PER_CLAIM = 128;
export const MAX_CONSUMERS_PER_CLAIM = 256;
/** Longest name kept: a DNS subdomain (253), or a request and subrequest with their slash. */
const MAX_NAME = 253;

/**
 * The devices of `driverName` that ResourceClaims hold, from their `status.allocation`
 * results, with the claim's `status.reservedFor`. Every field is checked (a claim is read
 * off the wire): a claim without a readable name, or a result that is not well formed, is
 * skipped; lists are cut at the limits above.
 */
export function holdersByDevice(claims: Iterable<unknown>, driverName: string): HoldersByDevice {
  const holders: HoldersByDevice = new Map();
  for (const claim of claims) {
    const metadata = member(claim, "metadata");
    const namespace = name(member(metadata, "namespace"));
    const claimName = name(member(metadata, "name"));
    if (namespace === undefined || claimName === undefined) continue;
    const status = member(claim, "status");
    const results = list(member(member(member(status, "allocation"), "devices"), "results"));
    const consumers = list(member(status, "reservedFor"))
      .slice(0, MAX_CONSUMERS_PER_CLAIM)
      .flatMap((entry) => {
        const resource = name(member(entry, "resource"));
        const consumer = name(member(entry, "name"));
        return resource === undefined || consumer === undefined
          ? []
          : [{ resource, name: consumer }];
      });
    for (const result of results.slice(0, MAX_RESULTS_PER_CLAIM)) {
      const driver = member(result, "driver");
      const pool = name(member(result, "pool"));
      const device = name(member(result, "device"));
      const request = name(member(result, "request"));
      if (driver !== driverName || pool === undefined || device === undefined) continue;
      if (request === undefined) continue;
      let devices = holders.get(pool);
      if (devices === undefined) {
        devices = new Map();
        holders.set(pool, devices);
      }
      const held = devices.get(device) ?? [];
      held.push({ namespace, claim: claimName, request, consumers });
      devices.set(device, held);
    }
  }
  return holders;
}

/** `value[key]` when `value` is a plain object that has it (read off the wire, so checked). */
export function member(value: unknown, key: string): unknown {
  return typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** `value` when it is an array, else an empty one. */
export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function name(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" && value.length <= MAX_NAME ? value : undefined;
}
