import type { PublishedDevices, PublishedTaint } from "../controller/slice-devices.js";
import { alignColumns, groupByPf, treeRows } from "../devices/inventory-table.js";
import type { DeviceHolder, HoldersByDevice } from "./claims.js";
import { terminalSafe } from "./text.js";

/**
 * `kubectl sriov nodes -o json|yaml`: the documented, stable structure (README, "kubectl
 * sriov"). Fields are only added, never renamed; absent values are `null`, lists empty.
 */
export interface NodeInventory {
  apiVersion: "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1";
  kind: "NodeInventory";
  driver: string;
  nodes: InventoryNode[];
  /** Published devices that could not be read back (missing or mistyped attributes). */
  unreadable: { slice: string; node: string; device: string; problem: string }[];
}

export interface InventoryNode {
  name: string;
  pfs: InventoryPf[];
}

export interface InventoryPf {
  pciAddress: string;
  /** The PF's netdev, as published (`PFName`). */
  name: string | null;
  deviceID: string;
  numaNode: number;
  pcieRoot: string;
  linkType: string;
  eswitchMode: string;
  /**
   * The PF as a device of its own (`--publish-pfs`), which takes every VF of it; null when
   * the node does not publish it whole.
   */
  wholePf: InventoryWholePf | null;
  vfs: InventoryVf[];
}

export interface InventoryWholePf {
  /** The ResourceSlice device name, `pf-<address>`. */
  device: string;
  driver: string;
  /** VFs it has (and takes along when allocated). */
  numVfs: number;
  resourceName: string | null;
  taints: PublishedTaint[];
  /** The claims allocated the whole PF. Empty: it is free (or one of its VFs is taken). */
  allocatedTo: DeviceHolder[];
}

export interface InventoryVf {
  /** The ResourceSlice device name. */
  device: string;
  vfID: number;
  pciAddress: string;
  vendor: string;
  deviceID: string;
  driver: string;
  iommuGroup: number | null;
  rdmaCapable: boolean;
  resourceName: string | null;
  taints: PublishedTaint[];
  /** The claims allocated this VF, with the pods using them. Empty: the VF is free. */
  allocatedTo: DeviceHolder[];
}

export const INVENTORY_API_VERSION = "kubectl-sriov.sriovnetwork.openshift.io/v1alpha1";

/**
 * The PF → VF tree of each node from what its slices publish, with who holds each VF and
 * each PF published whole.
 * `onlyNode` keeps one node (empty result when it publishes nothing). Nodes by name, PFs
 * by PCI address, VFs by VF id: the same input always gives the same output.
 */
export function buildNodeInventory(
  published: PublishedDevices,
  holders: HoldersByDevice,
  driver: string,
  onlyNode?: string,
): NodeInventory {
  const poolOf = new Map([...published.poolNodes].map(([pool, node]) => [node, pool]));
  const nodes = [...published.byNode.keys()]
    .filter((node) => onlyNode === undefined || node === onlyNode)
    .sort(compare)
    .map((node): InventoryNode => {
      const taints = published.taints.get(node);
      const held = holders.get(poolOf.get(node) ?? node);
      const wholePfs = new Map(
        (published.pfsByNode.get(node) ?? []).map((device) => [device.pf.pciAddress, device]),
      );
      const vfsByPf = new Map(
        groupByPf(published.byNode.get(node) ?? []).map((vfs) => [vfs[0]!.pf.pciAddress, vfs]),
      );
      const addresses = [...new Set([...vfsByPf.keys(), ...wholePfs.keys()])].sort(compare);
      return {
        name: node,
        pfs: addresses.map((address): InventoryPf => {
          const devices = vfsByPf.get(address) ?? [];
          const whole = wholePfs.get(address);
          const pf = whole?.pf ?? devices[0]!.pf;
          return {
            pciAddress: pf.pciAddress,
            name: pf.netdev ?? null,
            deviceID: pf.deviceID,
            numaNode: pf.numaNode,
            pcieRoot: pf.pcieRoot,
            linkType: pf.linkType,
            eswitchMode: pf.eswitchMode,
            wholePf:
              whole === undefined
                ? null
                : {
                    device: whole.name,
                    driver: whole.pf.driver,
                    numVfs: whole.pf.numVfs,
                    resourceName: whole.resourceName ?? null,
                    taints: taints?.get(whole.name) ?? [],
                    allocatedTo: held?.get(whole.name) ?? [],
                  },
            vfs: devices.map((device) => ({
              device: device.name,
              vfID: device.vf.vfID,
              pciAddress: device.vf.pciAddress,
              vendor: device.pf.vfVendor,
              deviceID: device.pf.vfDeviceID,
              driver: device.vf.driver,
              iommuGroup: device.vf.iommuGroup ?? null,
              rdmaCapable: device.vf.rdmaCapable,
              resourceName: device.resourceName ?? null,
              taints: taints?.get(device.name) ?? [],
              allocatedTo: held?.get(device.name) ?? [],
            })),
          };
        }),
      };
    });
  return {
    apiVersion: INVENTORY_API_VERSION,
    kind: "NodeInventory",
    driver,
    nodes,
    unreadable: published.unreadable.filter(
      (entry) => onlyNode === undefined || entry.node === onlyNode,
    ),
  };
}

/**
 * A PF published whole, on its PF line: `whole pf-0000-3b-00-0 i40e fast free`, or who holds
 * it, or that one of its VFs is taken (the counters then keep the PF from being allocated).
 */
function wholePfText(pf: InventoryWholePf, vfs: readonly InventoryVf[], wide: boolean): string {
  const taken = vfs.filter((vf) => vf.allocatedTo.length > 0).length;
  const holder =
    pf.allocatedTo.length > 0
      ? `${pf.allocatedTo.map((h) => formatHolder(h) + (wide ? ` request ${h.request}` : "")).join(", ")} (all ${pf.numVfs} VFs with it)`
      : taken > 0
        ? `not allocatable: ${taken} of its VFs allocated`
        : "free";
  return (
    `whole ${pf.device} ${pf.driver || "unbound"} ${pf.resourceName ?? "-"} ${holder}` +
    (pf.taints.length === 0 ? "" : `  TAINT ${pf.taints.map(formatTaint).join(", ")}`)
  );
}

function vfRow(vf: InventoryVf, wide: boolean, wholePf: InventoryWholePf | null): string[] {
  return [
    vf.device,
    `vf ${vf.vfID}`,
    ...(wide
      ? [
          vf.pciAddress,
          `${vf.vendor}:${vf.deviceID}`,
          vf.iommuGroup === null ? "iommu -" : `iommu ${vf.iommuGroup}`,
        ]
      : []),
    vf.driver || "unbound",
    vf.resourceName ?? "-",
    vf.allocatedTo.length === 0
      ? wholePf !== null && wholePf.allocatedTo.length > 0
        ? `with whole ${wholePf.device}`
        : "free"
      : vf.allocatedTo
          .map((holder) => formatHolder(holder) + (wide ? ` request ${holder.request}` : ""))
          .join(", "),
    vf.taints.length === 0 ? "" : `TAINT ${vf.taints.map(formatTaint).join(", ")}`,
  ];
}

/** `driver/unhealthy=LinkDown:NoSchedule`, as kubectl prints a taint. */
export function formatTaint(taint: PublishedTaint): string {
  return `${taint.key}${taint.value === "" ? "" : `=${taint.value}`}:${taint.effect}`;
}

/** `namespace/claim (pod NAME)`: one holder of a VF. */
export function formatHolder(holder: DeviceHolder): string {
  const consumers = holder.consumers.map((consumer) =>
    consumer.resource === "pods" ? `pod ${consumer.name}` : `${consumer.resource} ${consumer.name}`,
  );
  return `${holder.namespace}/${holder.claim}${consumers.length > 0 ? ` (${consumers.join(", ")})` : " (reserved by none)"}`;
}

/**
 * The tree: a line per node with its totals, a line per PF, a branch per VF with its
 * resourceName, holder and taints. `wide` adds the VF's PCI address, ids, IOMMU group and
 * the claim's request. Every value from the cluster is made terminal-safe.
 */
export function formatNodeInventoryTable(inventory: NodeInventory, wide: boolean): string {
  const lines: string[] = [];
  for (const node of inventory.nodes) {
    const vfs = node.pfs.flatMap((pf) => pf.vfs);
    const allocated = vfs.filter((vf) => vf.allocatedTo.length > 0).length;
    const tainted = vfs.filter((vf) => vf.taints.length > 0).length;
    const wholePfs = node.pfs.flatMap((pf) => (pf.wholePf === null ? [] : [pf.wholePf]));
    const wholeAllocated = wholePfs.filter((pf) => pf.allocatedTo.length > 0).length;
    lines.push(
      `NODE ${node.name}  ${inventory.driver}  ${vfs.length} VF${vfs.length === 1 ? "" : "s"}, ${allocated} allocated` +
        (tainted > 0 ? `, ${tainted} tainted` : "") +
        (wholePfs.length > 0
          ? `; ${wholePfs.length} whole PF${wholePfs.length === 1 ? "" : "s"}, ${wholeAllocated} allocated`
          : ""),
    );
    // One column width per node, so every PF's VFs line up.
    const aligned = alignColumns(
      node.pfs.flatMap((pf) => pf.vfs.map((vf) => vfRow(vf, wide, pf.wholePf).map(terminalSafe))),
    );
    for (const pf of node.pfs) {
      lines.push(
        `  PF ${pf.pciAddress} ${pf.name ?? "-"}  numa ${pf.numaNode}` +
          `${wide ? `  ${pf.pcieRoot || "-"}  device ${pf.deviceID || "-"}` : ""}` +
          `  ${pf.linkType}/${pf.eswitchMode}` +
          (pf.wholePf === null ? "" : `  ${wholePfText(pf.wholePf, pf.vfs, wide)}`),
      );
      lines.push(
        ...treeRows(
          aligned.splice(0, pf.vfs.length).map((line) => [line]),
          "    ",
        ),
      );
    }
    if (node.pfs.length === 0) lines.push("  (publishes no VFs)");
  }
  if (inventory.nodes.length === 0) lines.push(`No node publishes devices of ${inventory.driver}.`);
  for (const entry of inventory.unreadable) {
    lines.push(`warning: slice ${entry.slice}, device ${entry.device}: ${entry.problem}`);
  }
  return lines.map(terminalSafe).join("\n");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
