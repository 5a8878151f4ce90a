import path from "node:path";
import type { CdiContainerEdits, CdiDeviceNode, CdiSpec } from "../../lib/cdi/spec.js";
import { hasEdits, minimumCdiVersion, qualifiedDeviceName } from "../../lib/cdi/spec.js";
import type { PreparedDevice } from "../../lib/kubeletplugin/index.js";
import type { PreparedClaim, PreparedVf } from "./prepared-claim.js";
import { functionsOf, isVfio } from "./prepared-claim.js";

export const VFIO_CONTAINER_NODE = "/dev/vfio/vfio";
export const VHOST_NODES = ["/dev/vhost-net", "/dev/net/tun"] as const;

/**
 * CDI id of a prepared device (a VF, or a whole PF): `<kind>=<PCI address>`. A device is in
 * one claim at a time, so the name is unique on the node; the kubelet's PodResources API
 * reports it, and Multus hands the part after `=` to the CNI as `deviceID`. CDI names may
 * hold `:` and `.`.
 */
export function cdiDeviceId(kind: string, pciAddress: string): string {
  return qualifiedDeviceName(kind, pciAddress);
}

/**
 * The spec's name of a prepared device, from the CDI id stored in the checkpoint: claims
 * prepared before devices were named by PCI address keep their `<claim UID>-<device>`.
 */
function cdiDeviceNameOf(vf: Pick<PreparedVf, "cdiDeviceId">): string {
  return vf.cdiDeviceId.slice(vf.cdiDeviceId.indexOf("=") + 1);
}

/** `eth0_resource` → `PCIDEVICE_ETH0_RESOURCE`, as the SR-IOV device plugin names it. */
export function pciDeviceEnvName(resourceName: string): string {
  return `PCIDEVICE_${resourceName.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/**
 * Device nodes a device needs in the container (paths inside the container): the VFIO group
 * of each function on vfio-pci (a whole PF's VFs too) and the VFIO container once.
 */
export function deviceNodePaths(vf: PreparedVf): string[] {
  const groups = functionsOf(vf)
    .filter((fn) => isVfio(fn) && fn.iommuGroup !== null)
    .map((fn) => `/dev/vfio/${fn.iommuGroup}`);
  const nodes = groups.length > 0 ? [...new Set(groups), VFIO_CONTAINER_NODE] : [];
  if (vf.addVhostMount) nodes.push(...VHOST_NODES);
  return nodes;
}

/**
 * The claim's CDI spec: one device per VF with its own device nodes and
 * `SRIOVNETWORK_VF_DEVICE_<n>`, and the claim-wide variables (device-plugin style
 * `PCIDEVICE_<RESOURCE>` lists, all PCI addresses, networks) in the spec-level edits,
 * which the runtime applies once whenever any device of the spec is injected.
 * `hostRoot` is where the host's `/` is seen; device nodes get a `hostPath` below it
 * unless it is `/`.
 */
export function claimCdiSpec(
  claim: Pick<PreparedClaim, "devices">,
  options: { kind: string; hostRoot: string },
): CdiSpec {
  const toNode = (nodePath: string): CdiDeviceNode =>
    options.hostRoot === "/"
      ? { path: nodePath }
      : { path: nodePath, hostPath: path.join(options.hostRoot, nodePath) };
  const devices = claim.devices.map((vf, index) => {
    const env = [`SRIOVNETWORK_VF_DEVICE_${index}=${vf.pciAddress}`];
    // A whole PF's VFs, for a workload that drives them itself (vfio-pci, DPDK).
    if (vf.wholePfVfs !== undefined) {
      env.push(
        `SRIOVNETWORK_PF_VFS_${index}=${vf.wholePfVfs.map((pfVf) => pfVf.pciAddress).join(",")}`,
      );
    }
    const edits: CdiContainerEdits = { env };
    const nodes = deviceNodePaths(vf);
    if (nodes.length > 0) edits.deviceNodes = nodes.map(toNode);
    return { name: cdiDeviceNameOf(vf), containerEdits: edits };
  });
  const body = { kind: options.kind, devices, containerEdits: { env: claimEnv(claim.devices) } };
  return { cdiVersion: minimumCdiVersion(body), ...body };
}

/** Variables describing the whole claim, in a stable order. */
export function claimEnv(devices: readonly PreparedVf[]): string[] {
  const byResource = new Map<string, string[]>();
  for (const vf of devices) {
    const name = pciDeviceEnvName(vf.resourceName);
    byResource.set(name, [...(byResource.get(name) ?? []), vf.pciAddress]);
  }
  const env = [...byResource].map(([name, addresses]) => `${name}=${addresses.join(",")}`);
  env.push(`SRIOVNETWORK_PCI_ADDRESSES=${devices.map((vf) => vf.pciAddress).join(",")}`);
  const networks = new Set(
    devices.flatMap((vf) =>
      vf.netAttachDef ? [`${vf.netAttachDef.namespace}/${vf.netAttachDef.name}`] : [],
    ),
  );
  if (networks.size > 0) env.push(`SRIOVNETWORK_NET_ATTACH_DEF_NAME=${[...networks].join(",")}`);
  return env;
}

/**
 * The kubelet's answer for a prepared claim, the same on every repeat. A CDI device
 * without edits would make the runtime fail the container, so such a device is reported
 * without CDI ids.
 */
export function preparedDevicesOf(claim: PreparedClaim, spec: CdiSpec): PreparedDevice[] {
  return claim.devices.map((vf) => {
    const cdiDevice = spec.devices.find(
      (device) => qualifiedDeviceName(spec.kind, device.name) === vf.cdiDeviceId,
    );
    return {
      requestNames: [vf.request],
      poolName: vf.pool,
      deviceName: vf.device,
      cdiDeviceIds: hasEdits(cdiDevice?.containerEdits) ? [vf.cdiDeviceId] : [],
    };
  });
}
