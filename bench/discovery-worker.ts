/**
 * The measured part of bench/discovery.ts, in a process of its own that imports only
 * what the node plugin's discovery path imports, so its peak RSS is that path's.
 */
import { performance } from "node:perf_hooks";
import { selectDevices } from "../pkg/devices/model.js";
import { scanHostSysfs } from "../pkg/host/discovery.js";
import { HostPaths } from "../pkg/host/paths.js";
import { renderSlices } from "../pkg/slices/render.js";

export interface DiscoverySample {
  discoverMs: number[];
  renderMs: number[];
  totalMs: number[];
  devices: number;
  slices: number;
  /** Peak RSS after the first pass: what the daemon pays per rediscovery. */
  firstPassRssKb: number;
  /** Peak RSS after all passes back to back, garbage collected lazily: the worst case. */
  maxRssKb: number;
}

const [root, iterations] = [process.argv[2]!, Number(process.argv[3])];
const paths = new HostPaths({ root });
const sample: DiscoverySample = {
  discoverMs: [],
  renderMs: [],
  totalMs: [],
  devices: 0,
  slices: 0,
  firstPassRssKb: 0,
  maxRssKb: 0,
};
for (let i = 0; i < iterations; i++) {
  const start = performance.now();
  const inventory = scanHostSysfs(paths);
  const discovered = performance.now();
  const { devices } = selectDevices(inventory, false);
  const slices = renderSlices(devices, {
    driverName: "sriovnetwork.openshift.io",
    nodeName: "bench",
    generation: 1,
  });
  const end = performance.now();
  sample.discoverMs.push(discovered - start);
  sample.renderMs.push(end - discovered);
  sample.totalMs.push(end - start);
  sample.devices = devices.length;
  sample.slices = slices.length;
  if (i === 0) sample.firstPassRssKb = process.resourceUsage().maxRSS;
}
sample.maxRssKb = process.resourceUsage().maxRSS;
process.stdout.write(JSON.stringify(sample));
