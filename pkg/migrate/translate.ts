import { decode, type Schema } from "../../api/schema/index.js";
import {
  dnsSubdomain,
  hexId,
  kernelDriver,
  pciAddress,
  pfSelector,
  resourceName as resourceNameFormat,
  rootDeviceSelector,
} from "../../api/v1alpha1/formats.js";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import {
  SRIOV_RESOURCE_FILTER_KIND,
  type ResourceConfig,
  type ResourceFilter,
  type SriovResourceFilter,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import { VF_CONFIG_KIND, type VfConfig } from "../../api/v1alpha1/vf-config.js";
import { DEVICE_TYPE } from "../devices/attributes.js";
import { parsePfSelector, parseRootDeviceSelector, type VfRange } from "../filters/pf-selector.js";
import type { DevicePluginConfig, DpResource, DpSelector } from "./device-plugin-config.js";
import type { NetworkAttachment } from "./network-attachments.js";

export interface MigrateOptions {
  /** DRA driver name: the attribute domain of the CEL selectors and the opaque config's driver. */
  driverName: string;
  /** The device plugin's `-resource-prefix`, for resources without `resourcePrefix`. */
  defaultPrefix: string;
  /** Name and namespace of the SriovResourceFilter written. */
  filterName: string;
  namespace: string;
  nodeSelector: Readonly<Record<string, string>>;
}

/**
 * Something of the device plugin's config the translation does not carry over exactly:
 * - `approximate`: carried over, but not quite as the device plugin does it (the message says how);
 * - `unsupported`: left out, because this driver has nothing like it;
 * - `ignored`: has no effect in the device plugin either, or nothing to translate.
 */
export type FindingKind = "approximate" | "unsupported" | "ignored";

export interface Finding {
  kind: FindingKind;
  /** `<prefix>/<name>` of the device plugin resource, or the NetworkAttachmentDefinition. */
  subject: string;
  /** Where in it, e.g. `selectors[1].ddpProfiles`; empty for the whole subject. */
  field: string;
  message: string;
}

export interface DeviceClass {
  apiVersion: "resource.k8s.io/v1";
  kind: "DeviceClass";
  metadata: { name: string };
  spec: {
    selectors: { cel: { expression: string } }[];
    config?: { opaque: { driver: string; parameters: VfConfig } }[];
    extendedResourceName: string;
  };
}

/** One device plugin resource and what it became. */
export interface MigratedResource {
  /** `<prefix>/<name>`: the extended resource pods request. */
  extendedResourceName: string;
  /** The filter config's resourceName, published on the VFs. */
  resourceName: string;
  deviceClass: string;
}

export interface NetworkMapping {
  network: NetworkAttachment;
  /** The DeviceClass that serves the network's resource; absent when none does. */
  deviceClass?: string;
}

export interface Migration {
  /** Absent when no resource could be carried over. */
  filter?: SriovResourceFilter;
  deviceClasses: DeviceClass[];
  resources: MigratedResource[];
  networks: NetworkMapping[];
  findings: Finding[];
}

/** The filter's limit on configs. */
const MAX_CONFIGS = 64;
/** Drivers that hand a VF to user space; only vfio-pci is one VfConfig can bind. */
const VFIO = "vfio-pci";
const OTHER_USERSPACE_DRIVERS = new Set(["igb_uio", "uio_pci_generic"]);
/** The device plugin's link types (netlink's encapsulation names) → the published `linkType`. */
const LINK_TYPES: Readonly<Record<string, string>> = {
  ether: "ethernet",
  infiniband: "infiniband",
};

/**
 * Translates a device plugin configuration into one SriovResourceFilter (one config per
 * resource, in the device plugin's order, so a VF goes to the first resource that selects
 * it, as there), a DeviceClass per resource (`extendedResourceName` = `<prefix>/<name>`,
 * selecting the resource's VFs by their `resourceName` attribute), and findings for
 * everything not carried over exactly.
 */
export function translateDevicePluginConfig(
  config: DevicePluginConfig,
  networks: readonly NetworkAttachment[],
  options: MigrateOptions,
): Migration {
  const findings: Finding[] = [];
  const translated: TranslatedResource[] = [];
  const seen = new Set<string>();
  for (const resource of config.resourceList) {
    const prefix = resource.resourcePrefix ?? options.defaultPrefix;
    const extendedName = `${prefix}/${resource.resourceName}`;
    const report = (kind: FindingKind, field: string, message: string) =>
      findings.push({ kind, subject: extendedName, field, message });
    if (seen.has(extendedName)) {
      report(
        "ignored",
        "",
        "an earlier resource has this name (names are unique per prefix): this one is left out",
      );
      continue;
    }
    seen.add(extendedName);
    const result = translateResource(resource, prefix, options, report);
    if (result === undefined) continue;
    if (translated.length === MAX_CONFIGS) {
      report("unsupported", "", `a SriovResourceFilter holds at most ${MAX_CONFIGS} configs`);
      continue;
    }
    translated.push({ ...result, extendedName });
  }
  findings.push(...wideConfigFindings(translated));
  // Exact configs first: a config whose filter takes more VFs than its selectors (the
  // DeviceClass narrows with CEL) must not take VFs a later exact resource would get.
  const ordered = [
    ...translated.filter((entry) => !entry.wide),
    ...translated.filter((entry) => entry.wide),
  ];
  const configs = ordered.map((entry) => entry.config);
  const deviceClasses = translated.map((entry) => entry.deviceClass);
  const resources = translated.map((entry) => ({
    extendedResourceName: entry.extendedName,
    resourceName: entry.config.resourceName,
    deviceClass: entry.deviceClass.metadata.name,
  }));
  const migration: Migration = {
    deviceClasses,
    resources,
    networks: mapNetworks(networks, resources, findings),
    findings,
  };
  if (configs.length > 0) {
    migration.filter = {
      apiVersion: API_VERSION,
      kind: SRIOV_RESOURCE_FILTER_KIND,
      metadata: { name: options.filterName, namespace: options.namespace },
      spec: {
        ...(Object.keys(options.nodeSelector).length > 0
          ? { nodeSelector: { ...options.nodeSelector } }
          : {}),
        configs,
      },
    };
  }
  return migration;
}

type Report = (kind: FindingKind, field: string, message: string) => void;

interface TranslatedResource {
  extendedName: string;
  config: ResourceConfig;
  deviceClass: DeviceClass;
  /** The filter config takes more VFs than the device plugin's selectors. */
  wide: boolean;
}

/**
 * A wide config goes after the exact ones, and takes VFs before later wide ones: where
 * its filter may overlap a resource that came after it in the device plugin's list,
 * VFs both select may land elsewhere than the device plugin put them.
 */
function wideConfigFindings(translated: readonly TranslatedResource[]): Finding[] {
  return translated.flatMap((entry, index) => {
    if (!entry.wide) return [];
    const later = translated
      .slice(index + 1)
      .filter((other) => configsMayOverlap(entry.config, other.config))
      .map((other) => other.extendedName);
    if (later.length === 0) return [];
    return [
      {
        kind: "approximate" as const,
        subject: entry.extendedName,
        field: "",
        message: `its filter config takes more VFs than its selectors (the DeviceClass narrows with CEL), so it follows the exact configs; a VF that it and ${later.join(", ")} both select may go elsewhere than the device plugin put it`,
      },
    ];
  });
}

/** Whether two configs may select a common VF: no field both set has disjoint values. */
function configsMayOverlap(a: ResourceConfig, b: ResourceConfig): boolean {
  return a.resourceFilters.some((fa) => b.resourceFilters.some((fb) => filtersMayOverlap(fa, fb)));
}

function filtersMayOverlap(a: ResourceFilter, b: ResourceFilter): boolean {
  const keyOf = (value: string) => value.split("#")[0]!.toLowerCase();
  return (
    ["vendors", "devices", "drivers", "pciAddresses", "pfNames", "rootDevices"] as const
  ).every((field) => {
    const [va, vb] = [a[field], b[field]];
    if (va === undefined || vb === undefined) return true;
    const keys = new Set(va.map(keyOf));
    return vb.some((value) => keys.has(keyOf(value)));
  });
}

interface TranslatedSelector {
  filter: ResourceFilter;
  /** The whole selector over published attributes, for the DeviceClass. */
  cel: string;
  /** The filter matches more VFs than the selector: the DeviceClass must narrow with `cel`. */
  needsCel: boolean;
  needVhostNet: boolean;
  drivers: readonly string[] | undefined;
}

function translateResource(
  resource: DpResource,
  prefix: string,
  options: MigrateOptions,
  report: Report,
): Omit<TranslatedResource, "extendedName"> | undefined {
  if (resource.deviceType !== "netDevice") {
    const what =
      resource.deviceType === "accelerator"
        ? "accelerators (FPGAs, crypto devices) are not network VFs"
        : "auxiliary network devices (SFs) are not VFs";
    report(
      "unsupported",
      "deviceType",
      `${resource.deviceType}: ${what}; this driver publishes SR-IOV VFs only, left out`,
    );
    return undefined;
  }
  const resourceName = `${prefix}_${resource.resourceName}`;
  if (!fits(resourceNameFormat, resourceName)) {
    report(
      "unsupported",
      "resourceName",
      `"${resourceName}" is not a resourceName here (letters, digits, "_", "-", "." and at most 63 characters), left out`,
    );
    return undefined;
  }
  const className = deviceClassName(prefix, resource.resourceName);
  if (className === undefined) {
    report("unsupported", "resourceName", "no DeviceClass name can be made of it, left out");
    return undefined;
  }
  if (resource.excludeTopology) {
    report(
      "ignored",
      "excludeTopology",
      "DRA gives the kubelet no topology hints; the VFs' numaNode attribute is there for claims that want it",
    );
  }
  if (resource.hasAdditionalInfo) {
    report(
      "unsupported",
      "additionalInfo",
      "no extra information is added to the environment; the CDI variables are PCIDEVICE_<RESOURCE> and SRIOVNETWORK_*",
    );
  }
  const selectors = resource.selectors.flatMap((selector, index) => {
    const translated = translateSelector(selector, options.driverName, (kind, field, message) =>
      report(kind, `selectors[${index}]${field === "" ? "" : `.${field}`}`, message),
    );
    return translated === undefined ? [] : [translated];
  });
  if (selectors.length === 0) {
    if (resource.selectors.length === 0) {
      report("ignored", "selectors", "none: the device plugin registers no resource either");
    } else {
      report("unsupported", "selectors", "none is left (see above): the resource is left out");
    }
    return undefined;
  }
  const attributes = attributesOf(options.driverName);
  // VFs only: the device plugin never pools a PF that has VFs, and with --publish-pfs a
  // filter config can give a whole PF the resource's name too.
  const vfOnly = `(!("deviceType" in ${attributes}) || ${attributes}.deviceType == ${quote(DEVICE_TYPE.vf)})`;
  const base = `device.driver == ${quote(options.driverName)} && ${vfOnly} && "resourceName" in ${attributes} && ${attributes}.resourceName == ${quote(resourceName)}`;
  const needsCel = selectors.some((selector) => selector.needsCel);
  const expression = needsCel
    ? `${base} && (${selectors.map((selector) => `(${selector.cel})`).join(" || ")})`
    : base;
  const vfConfig = classVfConfig(selectors, report);
  const deviceClass: DeviceClass = {
    apiVersion: "resource.k8s.io/v1",
    kind: "DeviceClass",
    metadata: { name: className },
    spec: {
      selectors: [{ cel: { expression } }],
      ...(vfConfig === undefined
        ? {}
        : { config: [{ opaque: { driver: options.driverName, parameters: vfConfig } }] }),
      extendedResourceName: `${prefix}/${resource.resourceName}`,
    },
  };
  return {
    config: { resourceName, resourceFilters: selectors.map((selector) => selector.filter) },
    deviceClass,
    wide: needsCel,
  };
}

/** `intel.com`, `intel_sriov_netdevice` → `intel-sriov-netdevice.intel.com`. */
export function deviceClassName(prefix: string, name: string): string | undefined {
  const candidate = `${name}.${prefix}`.toLowerCase().replaceAll("_", "-");
  const labelsFit = candidate.split(".").every((label) => label.length <= 63);
  return labelsFit && fits(dnsSubdomain, candidate) ? candidate : undefined;
}

/** What the class gives every VF of the resource: /dev/vhost-net, and vfio-pci. */
function classVfConfig(
  selectors: readonly TranslatedSelector[],
  report: Report,
): VfConfig | undefined {
  const config: VfConfig = { apiVersion: API_VERSION, kind: VF_CONFIG_KIND };
  const vhost = selectors.filter((selector) => selector.needVhostNet).length;
  if (vhost > 0) {
    config.addVhostMount = true;
    if (vhost < selectors.length) {
      report(
        "approximate",
        "needVhostNet",
        "set on some selectors only: the DeviceClass gives /dev/vhost-net and /dev/net/tun with every VF of the resource",
      );
    }
  }
  const vfioOnly = (drivers: readonly string[] | undefined) =>
    drivers !== undefined && drivers.length > 0 && drivers.every((driver) => driver === VFIO);
  const vfio = selectors.filter((selector) => vfioOnly(selector.drivers)).length;
  if (vfio === selectors.length) {
    config.driver = VFIO;
  } else if (selectors.some((selector) => selector.drivers?.includes(VFIO))) {
    report(
      "approximate",
      "drivers",
      "the resource mixes VFs on vfio-pci and on other drivers: the DeviceClass binds none to vfio-pci; a claim that needs it sets VfConfig.driver",
    );
  }
  return config.addVhostMount === undefined && config.driver === undefined ? undefined : config;
}

/**
 * One selector object: the fields a ResourceFilter has go there; the rest go to CEL over
 * the published attributes, or are reported. Undefined when the selector cannot select a
 * VF this driver publishes (so leaving it out changes nothing) or selects other devices.
 */
function translateSelector(
  selector: DpSelector,
  driverName: string,
  report: Report,
): TranslatedSelector | undefined {
  const a = attributesOf(driverName);
  const filter: ResourceFilter = {};
  const cel: string[] = [];
  let needsCel = false;
  let matchesNothing = false;
  const list = (
    field: "vendors" | "devices" | "drivers" | "pciAddresses",
    format: Schema<string>,
    attribute: string,
  ) => {
    // sysfs shows hex ids and PCI addresses in lower case; driver names as they are.
    const caseMatters = field !== "drivers";
    const canMatch = (value: string) =>
      fits(format, value) && (!caseMatters || value === value.toLowerCase());
    const values = kept(selector[field], field, canMatch, report);
    if (values === undefined) return;
    if (values.length === 0) matchesNothing = true;
    filter[field] = values;
    cel.push(`${a}.${attribute} in [${values.map(quote).join(", ")}]`);
  };
  if (selector.vdpaType !== undefined) {
    report(
      "unsupported",
      "vdpaType",
      "the device plugin hands out the vDPA device of the VF; this driver hands out VFs, not vDPA devices: selector left out",
    );
    return undefined;
  }
  list("vendors", hexId, "vendor");
  list("devices", hexId, "deviceID");
  list("drivers", kernelDriver, "driver");
  list("pciAddresses", pciAddress, "pciAddress");
  for (const driver of selector.drivers ?? []) {
    if (OTHER_USERSPACE_DRIVERS.has(driver)) {
      report(
        "unsupported",
        "drivers",
        `${driver}: VFs already bound to it are selected, but a pod gets no /dev/uio* device; VfConfig binds vfio-pci only`,
      );
    }
  }

  const pfNames = rangedSelectors(selector.pfNames, "pfNames", report, (name) => {
    const parsed = parsePfSelector(name);
    return fits(pfSelector, name) && "selector" in parsed
      ? (parsed.selector.vfRanges ?? null)
      : undefined;
  });
  if (pfNames !== undefined) {
    if (pfNames.length === 0) matchesNothing = true;
    filter.pfNames = pfNames.map((entry) => entry.text);
    cel.push(
      `"PFName" in ${a} && (${pfNames
        .map((entry) => `${a}.PFName == ${quote(entry.key)}${rangeCel(a, entry.ranges)}`)
        .join(" || ")})`,
    );
    for (const entry of pfNames) {
      if (entry.key !== entry.key.toLowerCase()) {
        report(
          "approximate",
          "pfNames",
          `"${entry.key}": the device plugin compares PF names ignoring case, the filter exactly`,
        );
      }
    }
  }

  const roots = rangedSelectors(selector.rootDevices, "rootDevices", report, (text) => {
    const parsed = parseRootDeviceSelector(text);
    return fits(rootDeviceSelector, text) && "selector" in parsed
      ? (parsed.selector.vfRanges ?? null)
      : undefined;
  });
  if (roots !== undefined) {
    if (roots.length === 0) matchesNothing = true;
    filter.rootDevices = roots.map((entry) => entry.text);
    cel.push(
      `(${roots.map((entry) => `${a}.pfPciAddress == ${quote(entry.key.toLowerCase())}${rangeCel(a, entry.ranges)}`).join(" || ")})`,
    );
  }

  if (selector.linkTypes !== undefined && selector.linkTypes.length > 0) {
    const types = selector.linkTypes.flatMap((type) => {
      const published = LINK_TYPES[type];
      if (published === undefined) {
        report("ignored", "linkTypes", `"${type}": no VF this driver publishes has this link type`);
      }
      return published === undefined ? [] : [published];
    });
    if (types.length === 0) matchesNothing = true;
    needsCel = true;
    cel.push(`${a}.linkType in [${types.map(quote).join(", ")}]`);
    report(
      "approximate",
      "linkTypes",
      "not a filter field: the DeviceClass selects it with CEL on linkType; the filter config takes the VFs of other link types too, so a later resource cannot get them",
    );
  }
  if (selector.isRdma === true) {
    needsCel = true;
    cel.push(`${a}.rdmaCapable == true`);
    report(
      "approximate",
      "isRdma",
      "selected with CEL on rdmaCapable in the DeviceClass (the filter config also takes the VFs without RDMA); the pod gets the VF's netdev but not its RDMA device nodes",
    );
  }
  for (const field of ["ddpProfiles", "pKeys", "acpiIndexes"] as const) {
    const values = selector[field];
    if (values === undefined || values.length === 0) continue;
    const what = {
      ddpProfiles: "the DDP profile loaded on the PF",
      pKeys: "InfiniBand partition keys",
      acpiIndexes: "ACPI indexes",
    }[field];
    report(
      "unsupported",
      field,
      `this driver does not publish ${what}: left out, so the pool holds every VF the other fields select`,
    );
  }
  for (const field of selector.unknownFields) {
    const hint = field === "auxTypes" ? " (auxTypes applies to deviceType auxNetDevice)" : "";
    report("ignored", field, `not a netDevice selector; the device plugin ignores it too${hint}`);
  }
  if (selector.auxTypes !== undefined && selector.auxTypes.length > 0) {
    report(
      "ignored",
      "auxTypes",
      "applies to deviceType auxNetDevice only; the device plugin ignores it here",
    );
  }
  if (matchesNothing) {
    report(
      "ignored",
      "",
      "no value of some field can match a device: the selector selects nothing, left out",
    );
    return undefined;
  }
  return {
    filter,
    cel: cel.length === 0 ? "true" : cel.join(" && "),
    needsCel,
    needVhostNet: selector.needVhostNet === true,
    drivers: filter.drivers,
  };
}

/**
 * The values of a field that can match something, each reported when it cannot: the
 * device plugin compares them exactly with what sysfs shows (lower-case hex), so such a
 * value never matches there either. Undefined when the field is absent or empty (any).
 */
function kept(
  values: readonly string[] | undefined,
  field: string,
  canMatch: (value: string) => boolean,
  report: Report,
): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return values.filter((value) => {
    if (canMatch(value)) return true;
    report(
      "ignored",
      field,
      `"${value}" never matches a device (the device plugin compares it with sysfs' lower-case form)`,
    );
    return false;
  });
}

interface RangedEntry {
  text: string;
  /** The PF name or address before `#`. */
  key: string;
  ranges: readonly VfRange[] | null;
}

/**
 * pfNames and rootDevices entries: `<key>` or `<key>#<ranges>`. The device plugin uses the
 * first entry per key (compared ignoring case) and never matches a malformed one.
 */
function rangedSelectors(
  values: readonly string[] | undefined,
  field: string,
  report: Report,
  parse: (text: string) => readonly VfRange[] | null | undefined,
): RangedEntry[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const entries: RangedEntry[] = [];
  for (const text of values) {
    const key = text.split("#")[0]!;
    const ranges = parse(text);
    if (ranges === undefined) {
      report("ignored", field, `"${text}" is malformed, so it never matches a device`);
    } else if (entries.some((entry) => entry.key.toLowerCase() === key.toLowerCase())) {
      report(
        "ignored",
        field,
        `"${text}": an earlier entry names ${key}, and the device plugin uses only the first`,
      );
    } else {
      entries.push({ text, key, ranges });
    }
  }
  return entries;
}

function rangeCel(a: string, ranges: readonly VfRange[] | null): string {
  if (ranges === null) return "";
  const parts = ranges.map((range) =>
    range.first === range.last
      ? `${a}.vfID == ${range.first}`
      : `(${a}.vfID >= ${range.first} && ${a}.vfID <= ${range.last})`,
  );
  return ` && (${parts.join(" || ")})`;
}

function mapNetworks(
  networks: readonly NetworkAttachment[],
  resources: readonly MigratedResource[],
  findings: Finding[],
): NetworkMapping[] {
  return networks.map((network) => {
    const resource = resources.find((r) => r.extendedResourceName === network.resourceName);
    if (resource === undefined) {
      findings.push({
        kind: "unsupported",
        subject: `NetworkAttachmentDefinition ${network.namespace}/${network.name}`,
        field: "",
        message: `asks for ${network.resourceName}, which no migrated resource provides`,
      });
      return { network };
    }
    return { network, deviceClass: resource.deviceClass };
  });
}

const attributesOf = (driverName: string) => `device.attributes[${quote(driverName)}]`;

/** A CEL string literal; JSON's escapes are CEL's. */
const quote = (text: string) => JSON.stringify(text);

function fits(format: Schema<string>, value: string): boolean {
  try {
    decode(format, value);
    return true;
  } catch {
    return false;
  }
}
