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
  const byPf = new Map<string, VfDevice[]>();
  const withheld = new Set(selection.hostUsed.map((device) => device.name));
  for (const device of [...selection.devices, ...selection.hostUsed]) {
    const list = byPf.get(device.pf.pciAddress) ?? [];
    list.push(device);
    byPf.set(device.pf.pciAddress, list);
  }
  const lines: string[] = [];
  for (const devices of [...byPf.values()].sort((a, b) =>
    cmp(a[0]!.pf.pciAddress, b[0]!.pf.pciAddress),
  )) {
    const pf = devices[0]!.pf;
    lines.push(
      `PF ${pf.pciAddress} ${pf.netdev ?? "-"}  ${pf.vendor}:${pf.deviceID} ${pf.driver || "unbound"}  ` +
        `numa ${pf.numaNode}  ${pf.pcieRoot}  ${pf.linkType}/${pf.eswitchMode}` +
        `${pf.rdmaCapable ? "  rdma" : ""}  VFs ${pf.numVfs}/${pf.totalVfs}`,
    );
    const rows = devices
      .sort((a, b) => a.vf.vfID - b.vf.vfID)
      .map((device) => [
        device.name,
        `vf ${device.vf.vfID}`,
        `${pf.vfVendor}:${pf.vfDeviceID}`,
        device.vf.driver || "unbound",
        device.vf.iommuGroup === undefined ? "iommu -" : `iommu ${device.vf.iommuGroup}`,
        device.vf.netdev ?? "-",
        device.resourceName ?? "",
        withheld.has(device.name) ? "WITHHELD: used by the host" : "",
      ]);
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    rows.forEach((row, index) => {
      const branch = index === rows.length - 1 ? "└─" : "├─";
      lines.push(
        `  ${branch} ${row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join("  ")
          .trimEnd()}`,
      );
    });
  }
  if (byPf.size === 0) lines.push("No SR-IOV physical functions found.");
  lines.push(`${selection.devices.length} VFs published, ${selection.hostUsed.length} withheld.`);
  for (const warning of warnings) lines.push(`warning: ${warning.path}: ${warning.message}`);
  return lines.join("\n");
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
