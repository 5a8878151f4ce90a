import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { selectDevices, type VfDevice } from "../devices/model.js";
import { buildEmulatedHost, builtinProfiles } from "../emulator/index.js";
import { scanHostSysfs } from "../host/discovery.js";
import { HostPaths } from "../host/paths.js";
import type { DeviceHealth } from "./model.js";
import { HealthMonitor } from "./monitor.js";

const VF = "0000:3b:02.1";
const DEVICE = "0000-3b-02-1";

describe("HealthMonitor on an emulated X710 host", () => {
  let root: string;
  let paths: HostPaths;
  let devices: VfDevice[];
  let now: number;
  let prepared: Map<string, string>;
  let monitor: HealthMonitor;
  let changes: DeviceHealth[][];

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "health-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    paths = new HostPaths({ root });
    devices = selectDevices(scanHostSysfs(paths), false).devices;
    now = 0;
    prepared = new Map();
    changes = [];
    monitor = new HealthMonitor({
      paths,
      devices: () => devices,
      preparedDrivers: () => prepared,
      pollIntervalMs: 1_000,
      vfCheckIntervalMs: 5_000,
      debounce: { unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 },
      logger: pino({ level: "silent" }),
      now: () => now,
    });
    monitor.subscribe((changed) => changes.push([...changed]));
  });

  afterEach(() => {
    monitor.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const pfNetDir = () => path.join(paths.pciDevice("0000:3b:00.0"), "net", "ens1f0");
  const setPfLink = (carrier: string, operstate: string) => {
    for (const [file, text] of [
      ["carrier", carrier],
      ["operstate", operstate],
    ] as const) {
      fs.rmSync(path.join(pfNetDir(), file), { force: true });
      fs.writeFileSync(path.join(pfNetDir(), file), `${text}\n`);
    }
  };
  const pollAt = (ms: number) => {
    now = ms;
    monitor.poll();
  };
  const stateOf = (device: string) => monitor.current().find((h) => h.device === device);

  it("calls every published VF healthy on a healthy host, in one first report", () => {
    pollAt(0);
    expect(monitor.current()).toHaveLength(devices.length);
    expect(monitor.current().every((health) => health.state === "Healthy")).toBe(true);
    expect(changes).toHaveLength(1);
    pollAt(1_000);
    expect(changes).toHaveLength(1);
  });

  it("taints a PF's VFs within the debounce time of its link going down, and recovers after", () => {
    pollAt(0);
    setPfLink("0", "down");
    pollAt(1_000);
    pollAt(2_000);
    expect(stateOf(DEVICE)?.state).toBe("Healthy");
    pollAt(3_000);
    const ens1f0Vfs = devices.filter((d) => d.pf.netdev === "ens1f0").map((d) => d.name);
    expect(
      changes
        .at(-1)!
        .map((h) => h.device)
        .sort(),
    ).toEqual(ens1f0Vfs.sort());
    expect(stateOf(DEVICE)).toMatchObject({
      state: "Unhealthy",
      reason: "PFLinkDown",
      sinceMs: 1_000,
    });
    // The other port's VFs are not affected.
    expect(stateOf("0000-3b-0a-0")?.state).toBe("Healthy");

    setPfLink("1", "up");
    pollAt(4_000);
    pollAt(13_999);
    expect(stateOf(DEVICE)?.state).toBe("Unhealthy");
    pollAt(14_000);
    expect(stateOf(DEVICE)?.state).toBe("Healthy");
  });

  it("reads an unreadable carrier (a PF set down) through operstate", () => {
    pollAt(0);
    fs.rmSync(path.join(pfNetDir(), "carrier"), { force: true });
    fs.mkdirSync(path.join(pfNetDir(), "carrier")); // reading it fails, as EINVAL would
    fs.rmSync(path.join(pfNetDir(), "operstate"));
    fs.writeFileSync(path.join(pfNetDir(), "operstate"), "down\n");
    pollAt(1_000);
    pollAt(3_000);
    expect(stateOf(DEVICE)?.reason).toBe("PFLinkDown");
  });

  it("sees a VF vanish and one rebound behind the driver's back at the next VF check", () => {
    pollAt(0);
    fs.rmSync(paths.pciDevice(VF), { recursive: true });
    const other = paths.pciDevice("0000:3b:02.2");
    fs.rmSync(path.join(other, "driver"));
    pollAt(1_000);
    pollAt(4_000);
    // Not before the VF check interval has passed.
    expect(stateOf(DEVICE)?.state).toBe("Healthy");
    pollAt(5_000);
    pollAt(7_000);
    expect(stateOf(DEVICE)).toMatchObject({ state: "Unhealthy", reason: "VFMissing" });
    expect(stateOf("0000-3b-02-2")).toMatchObject({
      state: "Unhealthy",
      reason: "UnexpectedDriver",
    });
  });

  it("accepts vfio-pci on a VF a claim put there, and forgets devices no longer published", () => {
    pollAt(0);
    const dir = paths.pciDevice(VF);
    fs.rmSync(path.join(dir, "driver"));
    fs.symlinkSync("../../../../bus/pci/drivers/vfio-pci", path.join(dir, "driver"));
    prepared.set(VF, "vfio-pci");
    pollAt(5_000);
    pollAt(8_000);
    expect(stateOf(DEVICE)?.state).toBe("Healthy");
    devices = devices.filter((device) => device.name !== DEVICE);
    pollAt(9_000);
    expect(stateOf(DEVICE)).toBeUndefined();
  });

  it("unsubscribes", () => {
    const calls: number[] = [];
    const unsubscribe = monitor.subscribe(() => calls.push(1));
    pollAt(0);
    unsubscribe();
    setPfLink("0", "down");
    pollAt(1_000);
    pollAt(3_000);
    expect(calls).toEqual([1]);
  });
});
