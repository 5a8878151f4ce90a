import { describe, expect, it } from "vitest";
import { MetricsRegistry } from "./metrics.js";
import { parsePrometheusText, sampleValue } from "./testing/prometheus-text.js";

describe("MetricsRegistry", () => {
  it("renders counters and gauges with labels, families in registration order", () => {
    const registry = new MetricsRegistry();
    const calls = registry.counter({ name: "calls_total", help: "Calls.", labelNames: ["op"] });
    const size = registry.gauge({ name: "checkpoint_bytes", help: "Size.", labelNames: [] });
    calls.inc({ op: "prepare" });
    calls.inc({ op: "prepare" }, 2);
    calls.inc({ op: "unprepare" });
    size.set({}, 512);
    size.dec({}, 12);

    expect(registry.render()).toBe(
      [
        "# HELP calls_total Calls.",
        "# TYPE calls_total counter",
        'calls_total{op="prepare"} 3',
        'calls_total{op="unprepare"} 1',
        "# HELP checkpoint_bytes Size.",
        "# TYPE checkpoint_bytes gauge",
        "checkpoint_bytes 500",
        "",
      ].join("\n"),
    );
    expect(calls.get({ op: "prepare" })).toBe(3);
    expect(calls.get({ op: "never" })).toBe(0);
  });

  it("shows a metric without labels from the start, a labelled one once it has a series", () => {
    const registry = new MetricsRegistry();
    registry.counter({ name: "restarts_total", help: "h", labelNames: [] });
    registry.counter({ name: "errors_total", help: "h", labelNames: ["kind"] });
    const parsed = parsePrometheusText(registry.render());
    expect(parsed.samples).toEqual([{ name: "restarts_total", labels: {}, value: 0 }]);
    expect(parsed.types.get("errors_total")).toBe("counter");
  });

  it("renders cumulative histogram buckets, sum and count", () => {
    const registry = new MetricsRegistry();
    const latency = registry.histogram({
      name: "latency_seconds",
      help: "Latency.",
      labelNames: ["op"],
      buckets: [0.1, 1],
    });
    for (const value of [0.05, 0.1, 0.5, 3]) latency.observe({ op: "prepare" }, value);

    const parsed = parsePrometheusText(registry.render());
    const bucket = (le: string) =>
      sampleValue(parsed, "latency_seconds_bucket", { op: "prepare", le });
    expect([bucket("0.1"), bucket("1"), bucket("+Inf")]).toEqual([2, 3, 4]);
    expect(sampleValue(parsed, "latency_seconds_sum", { op: "prepare" })).toBeCloseTo(3.65);
    expect(sampleValue(parsed, "latency_seconds_count", { op: "prepare" })).toBe(4);
    expect(parsed.types.get("latency_seconds")).toBe("histogram");
    expect(latency.count({ op: "prepare" })).toBe(4);
  });

  it("times with startTimer", () => {
    const registry = new MetricsRegistry();
    const latency = registry.histogram({
      name: "t_seconds",
      help: "h",
      labelNames: [],
      buckets: [1],
    });
    const seconds = latency.startTimer({})();
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(latency.count({})).toBe(1);
  });

  it("escapes label values and help text so they parse back", () => {
    const registry = new MetricsRegistry();
    const published = registry.gauge({
      name: "devices_published",
      help: 'VFs per resource name \\ "quoted"\nsecond line',
      labelNames: ["resource_name"],
    });
    const odd = 'a"b\\c\nd';
    published.set({ resource_name: odd }, 4);
    const parsed = parsePrometheusText(registry.render());
    expect(sampleValue(parsed, "devices_published", { resource_name: odd })).toBe(4);
    expect(parsed.help.get("devices_published")).toBe(
      'VFs per resource name \\ "quoted"\nsecond line',
    );
  });

  it("drops gauge series on reset, for label values that went away", () => {
    const registry = new MetricsRegistry();
    const published = registry.gauge({ name: "g", help: "h", labelNames: ["r"] });
    published.set({ r: "old" }, 1);
    published.reset();
    published.set({ r: "new" }, 2);
    expect(parsePrometheusText(registry.render()).samples).toEqual([
      { name: "g", labels: { r: "new" }, value: 2 },
    ]);
  });

  it("formats special values", () => {
    const registry = new MetricsRegistry();
    const gauge = registry.gauge({ name: "g", help: "h", labelNames: ["k"] });
    gauge.set({ k: "inf" }, Infinity);
    gauge.set({ k: "nan" }, NaN);
    expect(registry.render()).toContain('g{k="inf"} +Inf\ng{k="nan"} NaN\n');
  });

  it("rejects misuse with a message naming the metric", () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter({ name: "c_total", help: "h", labelNames: ["a"] });
    expect(() => registry.gauge({ name: "c_total", help: "h", labelNames: [] })).toThrow(
      /c_total is already registered/,
    );
    expect(() => counter.inc({ a: "x" }, -1)).toThrow(/cannot decrease/);
    expect(() => counter.inc({ b: "x" } as unknown as { a: string })).toThrow(
      /c_total takes labels \[a\], got \[b\]/,
    );
    expect(() => registry.counter({ name: "bad-name", help: "h", labelNames: [] })).toThrow(
      /invalid metric name/,
    );
    expect(() => registry.counter({ name: "x", help: "h", labelNames: ["__x"] })).toThrow(
      /invalid label name/,
    );
    expect(() =>
      registry.histogram({ name: "h1", help: "h", labelNames: ["le"], buckets: [1] }),
    ).toThrow(/reserved/);
    expect(() =>
      registry.histogram({ name: "h2", help: "h", labelNames: [], buckets: [2, 1] }),
    ).toThrow(/ascending/);
  });
});
