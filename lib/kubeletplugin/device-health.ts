/**
 * Device health as the kubelet's DRAResourceHealth service carries it: one state per device
 * of the driver's pool, with a reason and a message. The driver decides what is healthy;
 * this is only the shape the service streams.
 */

export type HealthState = "Healthy" | "Unhealthy" | "Unknown";

export interface DeviceHealth {
  /** The device's name in this node's pool. */
  device: string;
  state: HealthState;
  /** Set when state is Unhealthy: a word an operator can act on. */
  reason?: string;
  /**
   * What is wrong and what to do, ≤ 1,024 characters; the kubelet's limit is 1,024 bytes,
   * which the health service enforces when it sends.
   */
  message: string;
  /** When the device entered this state, ms since the epoch. */
  sinceMs: number;
}

/** The kubelet's limit on a device health message. */
export const MAX_HEALTH_MESSAGE_CHARS = 1024;

/**
 * Where the node's current device health comes from. Consumers read the whole picture and
 * are called after every change.
 */
export interface HealthSource<T extends DeviceHealth = DeviceHealth> {
  /** Every published device's health now. */
  current(): readonly T[];
  /**
   * Calls `listener` with the devices whose health changed (an empty list when devices only
   * left the node's pool); returns the unsubscribe.
   */
  subscribe(listener: (changed: readonly T[]) => void): () => void;
}
