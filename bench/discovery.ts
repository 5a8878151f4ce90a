import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildEmulatedHost, builtinProfiles } from "../pkg/emulator/index.js";
import type { DiscoverySample } from "./discovery-worker.js";
import { mb, median, ms, percentile, table } from "./stats.js";

const ITERATIONS = 30;
const worker = fileURLToPath(new URL("./discovery-worker.js", import.meta.url));

/** Discovery + rendering of the `scale` profile (2,048 VFs): wall time and peak RSS. */
export async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-discovery-"));
  try {
    await buildEmulatedHost({ root, profile: builtinProfiles.scale });
    // The node plugin's container runs with a small young generation (see deployments/);
    // measure both that and Node's default.
    const runs = [
      { label: "default heap", flags: [] },
      { label: "--max-semi-space-size=4", flags: ["--max-semi-space-size=4"] },
    ].map(({ label, flags }) => {
      const output = execFileSync(process.execPath, [...flags, worker, root, String(ITERATIONS)], {
        encoding: "utf8",
      });
      return { label, sample: JSON.parse(output) as DiscoverySample };
    });
    const first = runs[0]!.sample;
    console.log(
      `\nDiscovery + rendering, profile "scale" (${first.devices} VFs → ${first.slices} slices), ${ITERATIONS} runs per process`,
    );
    console.log("(targets: median ≤ 100 ms, peak RSS ≤ 80 MB)\n");
    console.log(
      table(
        [
          "node flags",
          "discover median ms",
          "render median ms",
          "total median ms",
          "total p95 ms",
          "RSS after 1 pass MB",
          `RSS after ${ITERATIONS} passes MB`,
        ],
        runs.map(({ label, sample }) => [
          label,
          ms(median(sample.discoverMs)),
          ms(median(sample.renderMs)),
          ms(median(sample.totalMs)),
          ms(percentile(sample.totalMs, 95)),
          mb(sample.firstPassRssKb),
          mb(sample.maxRssKb),
        ]),
      ),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
