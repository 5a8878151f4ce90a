import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { VfDevice } from "../devices/model.js";
import { VFIO_PCI } from "../host/driver-binding.js";
import type { HostPaths } from "../host/paths.js";
import { listDirectory, readAttribute, readLinkName } from "../host/sysfs.js";
import {
  assessDevice,
  track,
  type Debounce,
  type HealthTracker,
  type PfObservation,
  type VfObservation,
} from "./assess.js";
import type { DeviceHealth, HealthSource } from "./model.js";

export interface HealthMonitorOptions {
  paths: HostPaths;
  /** The devices this node publishes now. */
  devices: () => readonly VfDevice[];
  /** Drivers prepared claims put VFs on (PCI address → driver), besides their own. */
  preparedDrivers: () => ReadonlyMap<string, string>;
  /** How often the PFs' link files are read: a few files per PF. */
  pollIntervalMs: number;
  /** How often each VF's presence, driver and IOMMU group are read (every few polls). */
  vfCheckIntervalMs: number;
  debounce: Debounce;
  logger: Logger;
  now?: () => number;
}

/**
 * Watches the health of every published device: each PF's link (carrier, operstate) on a
 * short interval, each VF's presence, driver and IOMMU group on a longer one, both read
 * through the host's safe readers. State changes are debounced (see track) and handed to
 * subscribers in one call per poll.
 */
export class HealthMonitor implements HealthSource {
  private readonly trackers = new Map<string, HealthTracker>();
  private readonly listeners = new Set<(changed: readonly DeviceHealth[]) => void>();
  private readonly vfCache = new Map<string, VfObservation>();
  private lastVfCheckMs = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: HealthMonitorOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    const poll = () => {
      try {
        this.poll();
      } catch (error) {
        // The next poll tries again; published health stays as it was meanwhile.
        this.options.logger.error({ err: error }, "reading device health failed");
      }
    };
    poll();
    this.timer = setInterval(poll, this.options.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  current(): readonly DeviceHealth[] {
    return [...this.trackers.values()].map((tracker) => tracker.committed);
  }

  subscribe(listener: (changed: readonly DeviceHealth[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the host once and reports what changed. Public for tests, which drive time. */
  poll(): void {
    const now = this.now();
    const devices = this.options.devices();
    const checkVfs = now - this.lastVfCheckMs >= this.options.vfCheckIntervalMs;
    if (checkVfs) this.lastVfCheckMs = now;
    const prepared = this.options.preparedDrivers();
    const pfs = new Map<string, PfObservation>();
    const changed: DeviceHealth[] = [];
    const seen = new Set<string>();
    for (const device of devices) {
      seen.add(device.name);
      let pf = pfs.get(device.pf.pciAddress);
      if (pf === undefined) {
        pf = this.observePf(device);
        pfs.set(device.pf.pciAddress, pf);
      }
      let vf = this.vfCache.get(device.name);
      if (vf === undefined || checkVfs) {
        vf = this.observeVf(device.vf.pciAddress);
        this.vfCache.set(device.name, vf);
      }
      const expected = [device.vf.driver];
      const preparedDriver = prepared.get(device.vf.pciAddress);
      if (preparedDriver !== undefined && preparedDriver !== device.vf.driver) {
        expected.push(preparedDriver);
      }
      const assessment = assessDevice(device, pf, vf, expected);
      const step = track(
        this.trackers.get(device.name),
        device.name,
        assessment,
        now,
        this.options.debounce,
      );
      this.trackers.set(device.name, step.tracker);
      if (step.changed) changed.push(step.tracker.committed);
    }
    // Devices no longer published (a filter change, a VF removed and rediscovered) leave.
    let left = false;
    for (const name of this.trackers.keys()) {
      if (!seen.has(name)) {
        this.trackers.delete(name);
        this.vfCache.delete(name);
        left = true;
      }
    }
    if (changed.length === 0 && !left) return;
    for (const health of changed) {
      const log = health.state === "Healthy" ? "info" : "warn";
      this.options.logger[log](
        { device: health.device, state: health.state, reason: health.reason },
        health.state === "Healthy" ? "device healthy" : health.message,
      );
    }
    for (const listener of this.listeners) {
      try {
        listener(changed);
      } catch (error) {
        this.options.logger.error({ err: error }, "a device health subscriber failed");
      }
    }
  }

  private observePf(device: VfDevice): PfObservation {
    const dir = this.options.paths.pciDevice(device.pf.pciAddress);
    if (!fs.existsSync(dir)) {
      return { present: false, netdev: undefined, carrier: undefined, operstate: undefined };
    }
    const netdevs = listDirectory(path.join(dir, "net")) ?? [];
    const netdev =
      device.pf.netdev !== undefined && netdevs.includes(device.pf.netdev)
        ? device.pf.netdev
        : netdevs.sort()[0];
    if (netdev === undefined) {
      return { present: true, netdev, carrier: undefined, operstate: undefined };
    }
    const netDir = path.join(dir, "net", netdev);
    return {
      present: true,
      netdev,
      carrier: readUnlessRefused(path.join(netDir, "carrier")),
      operstate: readUnlessRefused(path.join(netDir, "operstate")),
    };
  }

  private observeVf(pciAddress: string): VfObservation {
    const dir = this.options.paths.pciDevice(pciAddress);
    if (!fs.existsSync(dir)) return { present: false, driver: "", hasIommuGroup: false };
    const driver = readLinkName(path.join(dir, "driver")) ?? "";
    return {
      present: true,
      driver,
      hasIommuGroup:
        driver !== VFIO_PCI || readLinkName(path.join(dir, "iommu_group")) !== undefined,
    };
  }
}

/**
 * A link attribute, or undefined when it is missing or the kernel refuses the read: reading
 * `carrier` of a netdev that is administratively down fails with EINVAL.
 */
function readUnlessRefused(file: string): string | undefined {
  try {
    return readAttribute(file);
  } catch {
    return undefined;
  }
}
