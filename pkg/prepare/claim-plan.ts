import { interfaceNameRule } from "../../api/v1alpha1/formats.js";
import type { VfConfig } from "../../api/v1alpha1/vf-config.js";
import type { NetdevLink } from "../host/netdev-link.js";
import { deviceName, isPfDeviceName, pfDeviceName, PF_NAME_PREFIX } from "../devices/model.js";
import { isPciAddress } from "../host/pci-address.js";
import type { ClaimRef } from "../../lib/kubeletplugin/index.js";
import type { DeviceResult } from "./allocation.js";
import { baseRequestName } from "./allocation.js";
import { cdiDeviceId } from "./cdi-edits.js";
import { ClaimError } from "./claim-error.js";
import { assignInterfaceNames } from "./interface-names.js";
import { formatRef, withDeviceId } from "./network-config.js";
import type { CniConfigList } from "../../lib/cni/index.js";
import { isJsonObject } from "../../lib/util/json.js";
import type { NetAttachDefRef, PreparedClaim, PreparedVf, WholePfVf } from "./prepared-claim.js";
import { interfaceNamesOf, VFIO_PCI } from "./prepared-claim.js";

/** What the host shows for a VF (or a whole PF) before prepare. */
export interface VfOnHost {
  /** "" when unbound. */
  driver: string;
  iommuGroup: number | null;
  /** A whole PF's VFs now, by index, with their drivers and IOMMU groups; absent for a VF. */
  vfs?: { vfID: number; pciAddress: string; driver?: string; iommuGroup?: number | null }[];
  /** A whole PF's netdev in the node's namespace now (null: none there); absent for a VF. */
  link?: NetdevLink | null;
  /** The host uses the whole PF's netdev: an address or route on it (procfs). */
  hostUsesLink?: boolean;
}

export interface DevicePlanInput {
  result: DeviceResult;
  config: VfConfig;
  /** Undefined: no such VF on the host. */
  host: VfOnHost | undefined;
  /** The `resourceName` the node published for the device, if any. */
  publishedResourceName: string | undefined;
  network: { ref: NetAttachDefRef; cniConfig: CniConfigList } | null;
  /**
   * The config's `ips` and `mac` were asked for this VF alone (by the pod's networks
   * annotation), not for every VF of its request.
   */
  addressesForThisVf?: boolean;
}

export interface ClaimPlanInput {
  ref: ClaimRef;
  podUids: string[];
  devices: DevicePlanInput[];
  /** Interface names the claim's pods use already, with the claim holding each. */
  takenIfNames: ReadonlyMap<string, string>;
  interfacePrefix: string;
  cdiKind: string;
  cdiSpecFile: string;
}

/**
 * `0000-3b-02-1` → `0000:3b:02.1`, `pf-0000-3b-00-0` → `0000:3b:00.0`: our device names are
 * PCI addresses with `-` for `:` and `.`, a whole PF's with `pf-` before.
 */
export function pciAddressOfDevice(device: string): string {
  const wholePf = isPfDeviceName(device);
  const match = /^([0-9a-f]{4})-([0-9a-f]{2})-([0-9a-f]{2})-([0-7])$/.exec(
    wholePf ? device.slice(PF_NAME_PREFIX.length) : device,
  );
  const address = match ? `${match[1]}:${match[2]}:${match[3]}.${match[4]}` : "";
  const named = isPciAddress(address) && (wholePf ? pfDeviceName(address) : deviceName(address));
  if (named !== device) {
    throw new ClaimError(
      `allocated device "${device}" is not a device name this driver publishes (a VF's PCI address such as 0000-3b-02-1, or a whole PF's such as pf-0000-3b-00-0)`,
    );
  }
  return address;
}

/**
 * Decides everything about a claim before the host is touched: each VF's drivers, IOMMU
 * group, interface name, network and CDI name. The result is the PrepareStarted
 * checkpoint entry; undo and redo work from it alone.
 */
export function planClaim(input: ClaimPlanInput): PreparedClaim {
  const ifNames = assignInterfaceNames(
    input.devices.map(({ result, config }) => ({ request: result.request, ifName: config.ifName })),
    input.takenIfNames,
    input.interfacePrefix,
  );
  const devices = input.devices.map((device, index): PreparedVf => {
    const { result, config, network } = device;
    const pciAddress = pciAddressOfDevice(result.device);
    const host = presentVf(device.host, pciAddress, result.device);
    const wholePf = isPfDeviceName(result.device);
    const ifName = ifNames[index]!;
    const cniConfigOf = (address: string) =>
      network ? withDeviceId(network.cniConfig, address) : null;
    return {
      request: result.request,
      pool: result.pool,
      device: result.device,
      pciAddress,
      ...(wholePf
        ? {
            wholePfVfs: wholePfVfsOf(
              host,
              pciAddress,
              ifName,
              config.driver === VFIO_PCI,
              cniConfigOf,
            ),
            pfLink: pfLinkOf(host, pciAddress),
          }
        : {}),
      originalDriver: host.driver,
      targetDriver: wholePf
        ? wholePfDriverOf(host, pciAddress)
        : targetDriverOf(config, host, pciAddress, "VF"),
      iommuGroup: host.iommuGroup,
      ifName,
      addVhostMount: config.addVhostMount ?? false,
      resourceName: device.publishedResourceName ?? baseRequestName(result.request),
      netAttachDef: network?.ref ?? null,
      cniConfig: cniConfigOf(pciAddress),
      ...runtimeConfigOf(config, device, input.devices),
      cdiDeviceId: cdiDeviceId(input.cdiKind, pciAddress),
    };
  });
  refuseSharedInterfaceNames(devices);
  return {
    namespace: input.ref.namespace,
    name: input.ref.name,
    podUids: input.podUids,
    state: "PrepareStarted",
    devices,
    cdiSpecFile: input.cdiSpecFile,
  };
}

/**
 * The VfConfig's static addresses and MAC for the CNI. They belong to one interface: a
 * request of several VFs cannot share them, and without a network nobody would apply them.
 */
function runtimeConfigOf(
  config: VfConfig,
  device: DevicePlanInput,
  all: readonly DevicePlanInput[],
): Pick<PreparedVf, "runtimeConfig"> {
  const { ips, mac } = config;
  if (ips === undefined && mac === undefined) return {};
  const request = device.result.request;
  const asked = [ips && "ips", mac && "mac"].filter((field) => typeof field === "string");
  const { network } = device;
  if (network === null) {
    throw new ClaimError(
      `VfConfig of request "${request}" sets ${asked.join(" and ")} but names no network: set netAttachDefName, whose CNI applies them`,
    );
  }
  const undeclared = asked.filter((field) => !declaresCapability(network.cniConfig, field));
  if (undeclared.length > 0) {
    throw new ClaimError(
      `VfConfig of request "${request}" sets ${undeclared.join(" and ")}, but no plugin of network ${formatRef(network.ref)} declares the capability, so nothing would apply it: add "capabilities": {${undeclared.map((field) => `"${field}": true`).join(", ")}} to the plugin that should (e.g. with static IPAM)`,
    );
  }
  if (
    !device.addressesForThisVf &&
    all.filter((other) => other.result.request === request).length > 1
  ) {
    throw new ClaimError(
      `VfConfig of request "${request}" sets ${asked.join(" and ")}, but the request has several VFs and one address cannot go to all: give each VF its own request`,
    );
  }
  return { runtimeConfig: { ...(ips ? { ips } : {}), ...(mac ? { mac } : {}) } };
}

function declaresCapability(list: CniConfigList, capability: string): boolean {
  return list.plugins.some((plugin) => {
    const capabilities = plugin["capabilities"];
    return isJsonObject(capabilities) && capabilities[capability] === true;
  });
}

/**
 * The VFs that go into the pod with a whole PF, each named after the PF's interface and its
 * VF index (`net1` → `net1v0`, `net1v1`, ...): with their kernel drivers through the claim's
 * network for its own address, or (`vfio`) each on vfio-pci with its IOMMU group.
 */
function wholePfVfsOf(
  host: VfOnHost,
  pfAddress: string,
  ifName: string,
  vfio: boolean,
  cniConfigOf: (pciAddress: string) => CniConfigList | null,
): WholePfVf[] {
  const vfs = host.vfs ?? [];
  if (vfio && vfs.length === 0) {
    throw new ClaimError(
      `whole PF ${pfAddress} has no VFs, so driver vfio-pci has nothing to bind (the PF itself keeps its network driver: unbinding it would take its VFs away); leave driver unset for the PF's network interface, or create VFs (sriov_numvfs) first`,
    );
  }
  return vfs.map(({ vfID, pciAddress, driver, iommuGroup }) => {
    const name = `${ifName}v${vfID}`;
    const problem = interfaceNameRule.check(name);
    if (problem !== undefined) {
      throw new ClaimError(
        `interface name ${JSON.stringify(name)} for VF ${vfID} of the whole PF named ${JSON.stringify(ifName)} in the pod: ${problem}; give the PF a shorter ifName`,
      );
    }
    if (!vfio) return { pciAddress, ifName: name, cniConfig: cniConfigOf(pciAddress) };
    if (iommuGroup === undefined || iommuGroup === null) {
      throw new ClaimError(
        `VF ${vfID} (${pciAddress}) of whole PF ${pfAddress} has no IOMMU group, so vfio-pci cannot use it: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)`,
      );
    }
    return {
      pciAddress,
      ifName: name,
      cniConfig: null,
      vfio: { originalDriver: driver ?? "", iommuGroup },
    };
  });
}

/**
 * A whole PF keeps the network driver it has, whatever the VfConfig's driver: unbinding it
 * would destroy its VFs (the driver's remove disables SR-IOV). One without it has neither a
 * netdev nor VFs to hand over.
 */
function wholePfDriverOf(host: VfOnHost, pciAddress: string): string {
  if (host.driver === "" || host.driver === VFIO_PCI) {
    throw new ClaimError(
      `whole PF ${pciAddress} is ${host.driver === "" ? "not bound to any driver" : "bound to vfio-pci"}, so it has neither a network interface nor VFs to hand over: bind it to its network driver again`,
    );
  }
  return host.driver;
}

/**
 * The PF's link as unprepare puts it back. A netdev the host uses (an address or route on
 * it) is refused: the pod would take the host's network, and the node plugin (no netlink)
 * could not give the addresses back; the IPv6 link-local ones the kernel makes come back
 * with the link.
 */
function pfLinkOf(host: VfOnHost, pciAddress: string): NetdevLink | null {
  const link = host.link ?? null;
  if (link !== null && host.hostUsesLink === true) {
    throw new ClaimError(
      `whole PF ${pciAddress}: the host uses its network interface ${link.name} (an address or route on it), which the pod would take away and this driver could not give back: remove its addresses and routes, or allocate another PF (the node stops publishing this one)`,
    );
  }
  return link;
}

/** Every interface of the claim in the pod, a whole PF's VFs included, has a name of its own. */
function refuseSharedInterfaceNames(devices: readonly PreparedVf[]): void {
  const seen = new Set<string>();
  for (const name of devices.flatMap(interfaceNamesOf)) {
    if (seen.has(name)) {
      throw new ClaimError(
        `interface name "${name}" would be used twice in the pod (a whole PF's VFs are named <its ifName>v<index>): give the requests other ifNames`,
      );
    }
    seen.add(name);
  }
}

/** How messages name the function behind a device: a VF, or a whole PF. */
function functionNoun(device: string): string {
  return isPfDeviceName(device) ? "PF" : "VF";
}

function presentVf(host: VfOnHost | undefined, pciAddress: string, device: string): VfOnHost {
  if (host === undefined) {
    const what = functionNoun(device);
    throw new ClaimError(
      `${what} ${pciAddress} (device ${device}) is not present on this host: the node's devices changed after they were published (sriov_numvfs?); delete the pod so its claim is allocated again`,
    );
  }
  return host;
}

/**
 * `vfio-pci` when the config asks for it; otherwise the VF keeps the kernel network driver
 * it has. A VF without one (unbound, or held by vfio-pci) has no netdev to hand over.
 */
function targetDriverOf(
  config: VfConfig,
  host: VfOnHost,
  pciAddress: string,
  what: string,
): string {
  if (config.driver === VFIO_PCI) {
    if (host.iommuGroup === null) {
      throw new ClaimError(
        `${what} ${pciAddress} has no IOMMU group, so vfio-pci cannot use it: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)`,
      );
    }
    return VFIO_PCI;
  }
  if (host.driver === "" || host.driver === VFIO_PCI) {
    throw new ClaimError(
      `${what} ${pciAddress} is ${host.driver === "" ? "not bound to any driver" : "bound to vfio-pci"}, so it has no network interface for a kernel-driver config: set driver: vfio-pci in the VfConfig, or select VFs by their published "driver" attribute in a CEL selector`,
    );
  }
  return host.driver;
}
