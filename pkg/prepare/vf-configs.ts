import { SchemaError, formatIssue } from "../../api/schema/index.js";
import { decodeVfConfig, mergeVfConfigs, type VfConfig } from "../../api/v1alpha1/vf-config.js";
import type { AllocationConfig } from "./allocation.js";
import { baseRequestName } from "./allocation.js";
import { ClaimError } from "./claim-error.js";

/** A VfConfig of the allocation, decoded, with the requests it is limited to. */
export interface RequestConfig {
  /** Empty: applies to every request. */
  requests: string[];
  config: VfConfig;
}

const SOURCE_ORDER: Record<AllocationConfig["source"], number> = { FromClass: 0, FromClaim: 1 };

/**
 * Our driver's configs in the order they merge: DeviceClass configs first, then the
 * claim's, each in allocation order. Every one is decoded, used or not: a broken config
 * is an error the operator should hear about at once.
 */
export function decodeRequestConfigs(
  configs: readonly AllocationConfig[],
  options: { driverName: string; claimName: string },
): RequestConfig[] {
  return configs
    .map((config, index) => ({ config, index }))
    .filter(({ config }) => config.opaque?.driver === options.driverName)
    .sort(
      (a, b) => SOURCE_ORDER[a.config.source] - SOURCE_ORDER[b.config.source] || a.index - b.index,
    )
    .map(({ config, index }) => ({
      requests: config.requests ?? [],
      config: decodeOne(config, index, options.claimName),
    }));
}

function decodeOne(config: AllocationConfig, index: number, claimName: string): VfConfig {
  const where = `ResourceClaim ${claimName} status.allocation.devices.config[${index}].opaque.parameters`;
  try {
    return decodeVfConfig(config.opaque?.parameters, where);
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error;
    const owner = config.source === "FromClass" ? "the DeviceClass's config" : "the claim's config";
    throw new ClaimError(
      `invalid VfConfig (${error.issues.map(formatIssue).join("; ")}): fix ${owner}`,
    );
  }
}

/**
 * Whether a config limited to `requests` applies to a device allocated for `request`.
 * A config naming the main request applies to all its subrequests; one naming
 * `main/sub` only to that subrequest.
 */
export function configAppliesTo(requests: readonly string[], request: string): boolean {
  return (
    requests.length === 0 ||
    requests.includes(request) ||
    requests.includes(baseRequestName(request))
  );
}

/** The merged configuration of a device allocated for `request`; later configs win per field. */
export function vfConfigFor(configs: readonly RequestConfig[], request: string): VfConfig {
  return mergeVfConfigs(
    configs.filter((config) => configAppliesTo(config.requests, request)).map((c) => c.config),
  );
}
