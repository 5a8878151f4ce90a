import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildEmulatedHost, scaledHostProfile } from "../pkg/emulator/index.js";
import type { DiscoverySample } from "./discovery-worker.js";
import { ratio, writeCurve } from "./results.js";
import { mb, median, ms, percentile, table } from "./stats.js";
import { DAEMON_NODE_FLAGS, curveSizes } from "./support.js";

/** Hosts of these many VFs (E810 PFs of up to 256 VFs), and passes measured on each. */
const SIZES = curveSizes([
  { vfs: 16, passes: 30 },
  { vfs: 256, passes: 30 },
  { vfs: 2048, passes: 20 },
  { vfs: 10_000, passes: 10 },
]);
const worker = fileURLToPath(new URL("./discovery-worker.js", import.meta.url));

interface Point {
  vfs: number;
  pfs: number;
  sample: DiscoverySample;
}

/** One host of `vfs` VFs: discovery + rendering passes in a fresh process with the image's Node flags. */
async function measure(vfs: number, passes: number): Promise<Point> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-discovery-"));
  try {
    const profile = scaledHostProfile(vfs);
    await buildEmulatedHost({ root, profile });
    const output = execFileSync(
      process.execPath,
      [...DAEMON_NODE_FLAGS, worker, root, String(passes)],
      { encoding: "utf8" },
    );
    return { vfs, pfs: profile.pfs.length, sample: JSON.parse(output) as DiscoverySample };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Discovery + rendering on emulated hosts of 16 to 10,000 VFs: wall time and RSS, as a curve. */
export async function main(): Promise<void> {
  const points: Point[] = [];
  for (const { vfs, passes } of SIZES) points.push(await measure(vfs, passes));
  const total = (p: Point) => median(p.sample.totalMs);
  const first = points[0]!;
  writeCurve({
    name: "discovery",
    title: "Discovery + rendering by host size",
    xLabel: "VFs on the host",
    yLabel: "median ms per pass",
    logX: true,
    logY: true,
    series: [
      {
        label: "discover (sysfs scan)",
        points: points.map((p) => [p.vfs, median(p.sample.discoverMs)]),
      },
      { label: "render (slices)", points: points.map((p) => [p.vfs, median(p.sample.renderMs)]) },
      { label: "total", points: points.map((p) => [p.vfs, total(p)]) },
    ],
    table: table(
      [
        "VFs",
        "PFs",
        "slices",
        "discover ms",
        "render ms",
        "total ms",
        "total p95 ms",
        "µs per VF",
        `total vs ${first.vfs} VFs`,
        "RSS after 1 pass MB",
      ],
      points.map((p) => [
        p.vfs,
        p.pfs,
        p.sample.slices,
        ms(median(p.sample.discoverMs)),
        ms(median(p.sample.renderMs)),
        ms(total(p)),
        ms(percentile(p.sample.totalMs, 95)),
        ((total(p) * 1000) / p.vfs).toFixed(1),
        ratio(total(first), total(p)),
        mb(p.sample.firstPassRssKb),
      ]),
    ),
    note:
      `Medians of ${SIZES.map((s) => s.passes).join("/")} passes, each host in a fresh process ` +
      `(\`node ${DAEMON_NODE_FLAGS.join(" ")}\`, as the image runs the daemon) importing only the discovery path.`,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
