import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseCel } from "@marcbachmann/cel-js";
import { describe, expect, it } from "vitest";
import { deviceAttributes, type AttributeValue } from "../../pkg/devices/attributes.js";
import type { PfDevice, VfDevice } from "../../pkg/devices/model.js";
import { x710Pf } from "../../pkg/devices/testing/fixtures.js";
import { registerPluginMetrics } from "../../lib/kubeletplugin/plugin-metrics.js";
import { MetricsRegistry } from "../../lib/observability/metrics.js";

// The metrics table (docs/operations.md) and the attribute table (docs/usage.md) are
// written by hand; these tests fail when the code registers a metric or publishes an
// attribute the tables do not list, or the other way round.

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OPERATIONS = fs.readFileSync(path.join(REPO_ROOT, "docs/operations.md"), "utf8");
const USAGE = fs.readFileSync(path.join(REPO_ROOT, "docs/usage.md"), "utf8");
const DRIVER = "sriovnetwork.openshift.io";
const METRIC_PREFIX = "dra_sriov_";

/** Cells of each body row of the first table after the line `heading`. */
function tableUnder(markdown: string, heading: string): string[][] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  if (start === -1) throw new Error(`no line "${heading}" in the document`);
  const first = lines.findIndex((line, index) => index > start && line.startsWith("|"));
  if (first === -1) throw new Error(`no table after "${heading}" in the document`);
  const end = lines.findIndex((line, index) => index > first && !line.startsWith("|"));
  return lines
    .slice(first + 2, end === -1 ? undefined : end) // header and rule first
    .map((line) =>
      line
        .slice(1, -1)
        .split("|")
        .map((cell) => cell.trim()),
    );
}

/** The text between the first pair of backticks in a cell. */
function code(cell: string): string {
  const match = /`([^`]+)`/.exec(cell);
  if (!match) throw new Error(`no code in table cell "${cell}"`);
  return match[1]!;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((entry) => {
    const file = path.join(entry.parentPath, entry.name);
    const relative = path.relative(REPO_ROOT, file);
    const isSource =
      entry.isFile() &&
      entry.name.endsWith(".ts") &&
      !entry.name.endsWith(".test.ts") &&
      !relative.split(path.sep).includes("testing");
    return isSource ? [file] : [];
  });
}

interface RegisteredMetric {
  name: string;
  type: string;
  labels: string[];
}

/**
 * Every metric the driver registers: each `dra_sriov_*` name in lib/, pkg/ and cmd/ (tests and
 * test helpers left out), with its type and labels read off the registration call.
 */
function registeredMetrics(): RegisteredMetric[] {
  const sources = ["lib", "pkg", "cmd"]
    .flatMap((dir) => sourceFiles(path.join(REPO_ROOT, dir)))
    .map((file) => fs.readFileSync(file, "utf8"));
  const names = new Set(
    sources.flatMap((text) =>
      [...text.matchAll(/\bname:\s*"(dra_sriov_[a-z0-9_]+)"/g)].map((match) => match[1]!),
    ),
  );
  const calls = new Map<string, RegisteredMetric>();
  const call =
    /\.(counter|gauge|histogram)\(\{\s*name:\s*"(dra_sriov_[a-z0-9_]+)",[^}]*?labelNames:\s*\[([^\]]*)\]/g;
  for (const text of sources) {
    for (const [, type, name, labels] of text.matchAll(call)) {
      calls.set(name!, {
        name: name!,
        type: type!,
        labels: [...labels!.matchAll(/"([^"]+)"/g)].map((label) => label[1]!),
      });
    }
  }
  for (const name of names) {
    if (!calls.has(name)) {
      throw new Error(
        `metric ${name} is not registered as registry.<type>({ name, help, labelNames }): teach cmd/dra-driver-sriov/readme.test.ts to read it`,
      );
    }
  }
  return [...calls.values()];
}

describe("the metrics table of docs/operations.md", () => {
  const rows = tableUnder(OPERATIONS, "### Metrics");
  const documented = new Map(rows.map((cells) => [code(cells[0]!), cells]));

  it("finds the kubelet plugin's metrics in the sources", () => {
    const rendered = registerPluginMetrics(new MetricsRegistry()).registered;
    expect(rendered.name.startsWith(METRIC_PREFIX)).toBe(true);
    const names = registeredMetrics().map((metric) => metric.name);
    expect(names).toContain(rendered.name);
    expect(names.length).toBeGreaterThanOrEqual(4);
  });

  it.each(registeredMetrics().map((metric) => [metric.name, metric] as const))(
    "lists %s with its type and labels",
    (name, metric) => {
      const cells = documented.get(name);
      expect(cells, `add a row for ${name} to the table under "### Metrics"`).toBeDefined();
      const [, type, labels] = cells!;
      expect(type, `type of ${name}`).toBe(metric.type);
      const listed = [...labels!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
      expect(listed, `labels of ${name}`).toEqual(metric.labels);
    },
  );

  it("lists no metric the driver does not register", () => {
    const registered = new Set(registeredMetrics().map((metric) => metric.name));
    const stale = [...documented.keys()].filter((name) => !registered.has(name));
    expect(stale, "rows for metrics that no longer exist").toEqual([]);
  });
});

/** A VF with every optional attribute present: PF netdev, IOMMU group, resourceName. */
const device: VfDevice = {
  name: "0000-3b-02-1",
  vf: {
    pciAddress: "0000:3b:02.1",
    vfID: 1,
    driver: "iavf",
    iommuGroup: 42,
    netdev: "ens1f0v1",
    rdmaCapable: false,
  },
  pf: x710Pf(),
  resourceName: "eth0_resource",
};

/** The same VF's PF, published whole (--publish-pfs). */
const wholePf: PfDevice = {
  name: "pf-0000-3b-00-0",
  pf: x710Pf(),
  vfAddresses: [device.vf.pciAddress],
  resourceName: "eth0_resource",
};

/** The CEL `device` variable of a DRA selector for that VF (ints are CEL ints: bigint). */
function celDevice(attributes: Record<string, AttributeValue>) {
  const domains: Record<string, Record<string, unknown>> = {};
  for (const [qualified, value] of Object.entries(attributes)) {
    const slash = qualified.lastIndexOf("/");
    const [domain, name] = [qualified.slice(0, slash), qualified.slice(slash + 1)];
    const plain =
      "int" in value
        ? BigInt(value.int)
        : "bool" in value
          ? value.bool
          : "string" in value
            ? value.string
            : value.version;
    (domains[domain] ??= {})[name] = plain;
  }
  return { driver: DRIVER, attributes: domains };
}

describe("the attribute table of docs/usage.md", () => {
  const vfAttributes = deviceAttributes(device, DRIVER);
  const pfAttributes = deviceAttributes(wholePf, DRIVER);
  // Every attribute a VF or a whole PF has; a VF's where both have it (same type).
  const attributes = { ...pfAttributes, ...vfAttributes };
  const rows = tableUnder(USAGE, "### Published attributes");
  const documented = new Map(rows.map((cells) => [code(cells[0]!), cells]));

  it.each(Object.entries(attributes))("lists %s with its type", (name, value) => {
    const cells = documented.get(name);
    expect(
      cells,
      `add a row for ${name} to the table under "### Published attributes"`,
    ).toBeDefined();
    expect(cells![1], `type of ${name}`).toBe(Object.keys(value)[0]);
  });

  it("lists no attribute the driver does not publish", () => {
    const stale = [...documented.keys()].filter((name) => !(name in attributes));
    expect(stale, "rows for attributes that are not published").toEqual([]);
  });

  it.each(rows.map((cells) => [code(cells[0]!), code(cells[3]!)] as const))(
    "has a CEL example for %s that evaluates to a boolean",
    (name, expression) => {
      const slash = name.lastIndexOf("/");
      expect(expression).toContain(`"${name.slice(0, slash)}"`);
      expect(expression).toContain(name.slice(slash + 1));
      const onVf = name in vfAttributes;
      const result = parseCel(expression)({
        device: celDevice(onVf ? vfAttributes : pfAttributes),
      });
      expect(typeof result, `${expression} on ${onVf ? device.name : wholePf.name}`).toBe(
        "boolean",
      );
    },
  );
});
