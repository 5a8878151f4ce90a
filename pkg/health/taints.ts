import type { DeviceTaint } from "../slices/render.js";
import type { DeviceHealth } from "./model.js";

export type TaintEffect = DeviceTaint["effect"];

/** The taint key of an unhealthy device: `<driver>/unhealthy`. */
export function unhealthyTaintKey(driverName: string): string {
  return `${driverName}/unhealthy`;
}

/**
 * The taints of the node's devices: one on each Unhealthy device, its reason as the value,
 * added when it turned unhealthy (whole seconds, as the API server keeps it). Unknown is no
 * taint: the scheduler should not avoid a device we cannot judge.
 */
export function taintsOf(
  health: readonly DeviceHealth[],
  driverName: string,
  effect: TaintEffect,
): Map<string, DeviceTaint[]> {
  const taints = new Map<string, DeviceTaint[]>();
  for (const device of health) {
    if (device.state !== "Unhealthy" || device.reason === undefined) continue;
    taints.set(device.device, [
      {
        key: unhealthyTaintKey(driverName),
        value: device.reason,
        effect,
        timeAdded: new Date(Math.floor(device.sinceMs / 1000) * 1000)
          .toISOString()
          .replace(/\.000Z$/, "Z"),
      },
    ]);
  }
  return taints;
}
