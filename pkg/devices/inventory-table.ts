import type { DiscoveryWarning } from "../host/discovery.js";
import type { DeviceSelection, VfDevice } from "./model.js";

/**
 * A person's view of the node: each PF with its VFs beneath it, then what was withheld
 * and why, then warnings about host data that was skipped.
 */
export function formatInventoryTable(
  selection: DeviceSelection,
  warnings: readonly DiscoveryWarning[],
): string {
  const withheld = new Set(selection.hostUsed.map((device) => device.name));
  const byPf = groupByPf([...selection.devices, ...selection.hostUsed]);
  const lines: string[] = [];
  for (const devices of byPf) {
    const pf = devices[0]!.pf;
    lines.push(
      `PF ${pf.pciAddress} ${pf.netdev ?? "-"}  ${pf.vendor}:${pf.deviceID} ${pf.driver || "unbound"}  ` +
        `numa ${pf.numaNode}  ${pf.pcieRoot}  ${pf.linkType}/${pf.eswitchMode}` +
        `${pf.rdmaCapable ? "  rdma" : ""}  VFs ${pf.numVfs}/${pf.totalVfs}`,
    );
    const rows = devices.map((device) => [
      device.name,
      `vf ${device.vf.vfID}`,
      `${pf.vfVendor}:${pf.vfDeviceID}`,
      device.vf.driver || "unbound",
      device.vf.iommuGroup === undefined ? "iommu -" : `iommu ${device.vf.iommuGroup}`,
      device.vf.netdev ?? "-",
      device.resourceName ?? "",
      withheld.has(device.name) ? "WITHHELD: used by the host" : "",
    ]);
    lines.push(...treeRows(rows));
  }
  if (byPf.length === 0) lines.push("No SR-IOV physical functions found.");
  lines.push(`${selection.devices.length} VFs published, ${selection.hostUsed.length} withheld.`);
  for (const warning of warnings) lines.push(`warning: ${warning.path}: ${warning.message}`);
  return lines.join("\n");
}

/** Devices grouped by PF, PFs by PCI address, each PF's VFs by VF id. */
export function groupByPf<T extends VfDevice>(devices: readonly T[]): T[][] {
  const byPf = new Map<string, T[]>();
  for (const device of devices) {
    const list = byPf.get(device.pf.pciAddress) ?? [];
    list.push(device);
    byPf.set(device.pf.pciAddress, list);
  }
  return [...byPf.values()]
    .sort((a, b) => cmp(a[0]!.pf.pciAddress, b[0]!.pf.pciAddress))
    .map((list) => list.sort((a, b) => a.vf.vfID - b.vf.vfID));
}

/** Rows as the branches of a tree under a heading line: cells aligned in columns. */
export function treeRows(rows: readonly (readonly string[])[], indent = "  "): string[] {
  return alignColumns(rows).map(
    (line, index) => `${indent}${index === rows.length - 1 ? "└─" : "├─"} ${line}`,
  );
}

/** Each row's cells padded to their column's width, two spaces apart. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd(),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
