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
  vfs: InventoryVf[];
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
 * The PF → VF tree of each node from what its slices publish, with who holds each VF.
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
      return {
        name: node,
        pfs: groupByPf(published.byNode.get(node) ?? []).map((devices): InventoryPf => {
          const pf = devices[0]!.pf;
          return {
            pciAddress: pf.pciAddress,
            name: pf.netdev ?? null,
            deviceID: pf.deviceID,
            numaNode: pf.numaNode,
            pcieRoot: pf.pcieRoot,
            linkType: pf.linkType,
            eswitchMode: pf.eswitchMode,
            vfs: devices.map((device) => ({
              device: device.name,
              vfID: device.vf.vfID,
              pciAddress: device.vf.pciAddress,
              vendor: pf.vfVendor,
              deviceID: pf.vfDeviceID,
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

function vfRow(vf: InventoryVf, wide: boolean): string[] {
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
      ? "free"
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
    lines.push(
      `NODE ${node.name}  ${inventory.driver}  ${vfs.length} VF${vfs.length === 1 ? "" : "s"}, ${allocated} allocated` +
        (tainted > 0 ? `, ${tainted} tainted` : ""),
    );
    // One column width per node, so every PF's VFs line up.
    const aligned = alignColumns(
      node.pfs.flatMap((pf) => pf.vfs.map((vf) => vfRow(vf, wide).map(terminalSafe))),
    );
    for (const pf of node.pfs) {
      lines.push(
        `  PF ${pf.pciAddress} ${pf.name ?? "-"}  numa ${pf.numaNode}` +
          `${wide ? `  ${pf.pcieRoot || "-"}  device ${pf.deviceID || "-"}` : ""}` +
          `  ${pf.linkType}/${pf.eswitchMode}`,
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
