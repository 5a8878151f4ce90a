import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { selectDevices } from "../pkg/devices/model.js";
import { buildEmulatedHost, builtinProfiles } from "../pkg/emulator/index.js";
import { HealthMonitor } from "../pkg/health/monitor.js";
import { taintsOf } from "../pkg/health/taints.js";
import { scanHostSysfs } from "../pkg/host/discovery.js";
import { HostPaths } from "../pkg/host/paths.js";
import { renderSlices } from "../pkg/slices/render.js";
import { canonical } from "../lib/util/canonical-json.js";
import { median, ms, percentile, table } from "./stats.js";

const POLLS = 50;
const DRIVER = "sriovnetwork.openshift.io";

/**
 * Device health on `scale` (8 PFs, 2,048 VFs): what one poll costs (PF links only, and with
 * every VF's presence, driver and group), and how many times a flapping link makes the pool
 * be rewritten in a minute, with the daemon's debounce and without.
 */
export async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-health-"));
  try {
    await buildEmulatedHost({ root, profile: builtinProfiles.scale });
    const paths = new HostPaths({ root });
    const devices = selectDevices(scanHostSysfs(paths), false).devices;
    const netDir = path.join(
      paths.pciDevice(devices[0]!.pf.pciAddress),
      "net",
      devices[0]!.pf.netdev!,
    );
    const setLink = (up: boolean) => {
      for (const [file, text] of [
        ["carrier", up ? "1" : "0"],
        ["operstate", up ? "up" : "down"],
      ] as const) {
        fs.rmSync(path.join(netDir, file), { force: true });
        fs.writeFileSync(path.join(netDir, file), `${text}\n`);
      }
    };
    setLink(true);

    const monitorAt = (
      clock: { now: number },
      debounce: { unhealthyAfterMs: number; healthyAfterMs: number },
    ) =>
      new HealthMonitor({
        paths,
        devices: () => devices,
        preparedDrivers: () => new Map(),
        pollIntervalMs: 1_000,
        vfCheckIntervalMs: 5_000,
        debounce,
        logger: pino({ level: "silent" }),
        now: () => clock.now,
      });

    // Cost of one poll.
    const clock = { now: 0 };
    const monitor = monitorAt(clock, { unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 });
    monitor.poll();
    const linksOnly: number[] = [];
    const withVfs: number[] = [];
    for (let i = 0; i < POLLS; i++) {
      clock.now += 1_000; // under the VF interval: PF links only
      let start = performance.now();
      monitor.poll();
      linksOnly.push(performance.now() - start);
      clock.now += 5_000; // the VF check is due
      start = performance.now();
      monitor.poll();
      withVfs.push(performance.now() - start);
    }

    // A link flapping every second for a minute, polled every second: pool rewrites.
    const rewrites = (debounce: { unhealthyAfterMs: number; healthyAfterMs: number }) => {
      const flapClock = { now: 0 };
      setLink(true);
      const flapping = monitorAt(flapClock, debounce);
      let last = "";
      let writes = 0;
      const publish = () => {
        const rendered = canonical(
          renderSlices(devices, {
            driverName: DRIVER,
            nodeName: "bench",
            generation: 0,
            taints: taintsOf(flapping.current(), DRIVER, "NoSchedule"),
          }),
        );
        if (rendered !== last) writes++;
        last = rendered;
      };
      flapping.subscribe(publish);
      flapping.poll();
      for (let second = 1; second <= 60; second++) {
        setLink(second % 2 === 0);
        flapClock.now = second * 1_000;
        flapping.poll();
      }
      return writes - 1; // the first publication is not a rewrite
    };

    console.log(
      `\nDevice health, profile "scale" (${devices.length} VFs, 8 PFs), ${POLLS} polls each\n`,
    );
    console.log(
      table(
        ["poll", "median ms", "p95 ms"],
        [
          ["PF links only (every 1 s)", ms(median(linksOnly)), ms(percentile(linksOnly, 95))],
          ["with every VF (every 5 s)", ms(median(withVfs)), ms(percentile(withVfs, 95))],
        ],
      ),
    );
    console.log("\nA link flapping every second for 60 s: pool rewrites\n");
    console.log(
      table(
        ["debounce", "rewrites"],
        [
          ["none", String(rewrites({ unhealthyAfterMs: 0, healthyAfterMs: 0 }))],
          [
            "daemon's (2 s to taint, 10 s to clear)",
            String(rewrites({ unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 })),
          ],
        ],
      ),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
