import type { ResourceConfig, ResourceFilter } from "../../api/v1alpha1/sriov-resource-filter.js";
import { isPfDevice, pciAddressOf, type Device } from "../devices/model.js";
import {
  parsePfSelector,
  parseRootDeviceSelector,
  pfSelectorMatches,
  rootDeviceSelectorMatches,
  type PfSelector,
  type RootDeviceSelector,
} from "./pf-selector.js";

export type VfPredicate = (device: Device) => boolean;

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
} satisfies Record<keyof ResourceFilter, FieldMatcher>;

/** Every field that is set and non-empty must match (AND); a filter without such fields matches every device. */
export function compileResourceFilter(filter: ResourceFilter): VfPredicate {
  const predicates = (Object.keys(FIELD_MATCHERS) as (keyof ResourceFilter)[]).flatMap((field) => {
    const values = filter[field];
    return values === undefined || values.length === 0 ? [] : [FIELD_MATCHERS[field](values)];
  });
  return (device) => predicates.every((predicate) => predicate(device));
}

/** A config matches a VF when any of its resource filters does (OR). */
export function compileConfig(config: ResourceConfig): VfPredicate {
  const filters = config.resourceFilters.map(compileResourceFilter);
  return (device) => filters.some((matches) => matches(device));
}
