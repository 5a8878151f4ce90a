import type { ResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import { isPfDevice, pciAddressOf, type Device } from "../devices/model.js";
import type { LinkType } from "../host/discovery.js";
import {
  parsePfSelector,
  parseRootDeviceSelector,
  pfSelectorMatches,
  rootDeviceSelectorMatches,
  type PfSelector,
  type RootDeviceSelector,
} from "./pf-selector.js";

export type VfPredicate = (device: Device) => boolean;

/**
 * A resource filter as a node matches it: a SriovResourceFilter's, or one translated from
 * a SriovResourcePolicy (pkg/policies), which can also select by the PF's link type.
 */
export type MatchFilter = ResourceFilter & { linkTypes?: LinkType[] };

/** Builds the predicate of one field from its values; the values are ORed. */
type FieldMatcher = (values: readonly string[]) => VfPredicate;

const lower = (text: string) => text.toLowerCase();

function oneOf(values: readonly string[], read: (device: Device) => string): VfPredicate {
  const wanted = new Set(values.map(lower));
  return (device) => wanted.has(lower(read(device)));
}

/**
 * One matcher per ResourceFilter field; the `satisfies` makes a new API field a compile error
 * here. A whole PF matches by its own ids, address and driver; `pfNames` picks it only
 * and `rootDevices` only without a VF range (`eth0`, not `eth0#0-3`).
 */
const FIELD_MATCHERS = {
  vendors: (values) =>
    oneOf(values, (device) => (isPfDevice(device) ? device.pf.vendor : device.pf.vfVendor)),
  devices: (values) =>
    oneOf(values, (device) => (isPfDevice(device) ? device.pf.deviceID : device.pf.vfDeviceID)),
  pfNames: (values) => {
    // Malformed entries match nothing; validateFilterSpec reports them.
    const selectors = values
      .map(parsePfSelector)
      .flatMap((parsed): PfSelector[] => ("selector" in parsed ? [parsed.selector] : []));
    return (device) =>
      selectors.some((selector) =>
        isPfDevice(device)
          ? selector.pfName === device.pf.netdev && selector.vfRanges === undefined
          : pfSelectorMatches(selector, device.pf.netdev, device.vf.vfID),
      );
  },
  pciAddresses: (values) => oneOf(values, pciAddressOf),
  rootDevices: (values) => {
    // Malformed entries match nothing; validateFilterSpec reports them.
    const selectors = values
      .map(parseRootDeviceSelector)
      .flatMap((parsed): RootDeviceSelector[] => ("selector" in parsed ? [parsed.selector] : []));
    return (device) =>
      selectors.some((selector) =>
        isPfDevice(device)
          ? selector.pciAddress === device.pf.pciAddress.toLowerCase() &&
            selector.vfRanges === undefined
          : rootDeviceSelectorMatches(selector, device.pf.pciAddress, device.vf.vfID),
      );
  },
  numaNodes: (values) => {
    const wanted = new Set(values.map(Number));
    return (device) => wanted.has(device.pf.numaNode);
  },
  drivers: (values) => {
    const wanted = new Set(values);
    return (device) => wanted.has(isPfDevice(device) ? device.pf.driver : device.vf.driver);
  },
  linkTypes: (values) => {
    const wanted = new Set(values);
    return (device) => wanted.has(device.pf.linkType);
  },
} satisfies Record<keyof MatchFilter, FieldMatcher>;

/** Every field that is set and non-empty must match (AND); a filter without such fields matches every device. */
export function compileResourceFilter(filter: MatchFilter): VfPredicate {
  const predicates = (Object.keys(FIELD_MATCHERS) as (keyof MatchFilter)[]).flatMap((field) => {
    const values = filter[field];
    return values === undefined || values.length === 0 ? [] : [FIELD_MATCHERS[field](values)];
  });
  return (device) => predicates.every((predicate) => predicate(device));
}

/** A config matches a VF when any of its resource filters does (OR). */
export function compileConfig(config: { resourceFilters: readonly MatchFilter[] }): VfPredicate {
  const filters = config.resourceFilters.map(compileResourceFilter);
  return (device) => filters.some((matches) => matches(device));
}
