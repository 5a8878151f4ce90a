/**
 * A small Prometheus metrics registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4.
 */

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels<L extends string> = Readonly<Record<L, string>>;

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, ascending; `+Inf` is added. */
  buckets: readonly number[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Series<V> {
  labelValues: readonly string[];
  value: V;
}

abstract class Metric<L extends string, V> {
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, Series<V>>();

  constructor(options: MetricOptions<L>) {
    if (!METRIC_NAME.test(options.name)) {
      throw new Error(`invalid metric name "${options.name}"`);
    }
    for (const label of options.labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new Error(`metric ${options.name}: invalid label name "${label}"`);
      }
    }
    if (new Set(options.labelNames).size !== options.labelNames.length) {
      throw new Error(`metric ${options.name}: duplicate label names`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
  }

  protected abstract initial(): V;

  /** The series for these labels, created on first use. */
  protected at(labels: Labels<L>): Series<V> {
    const labelValues = this.labelValuesOf(labels);
    const key = JSON.stringify(labelValues);
    let series = this.series.get(key);
    if (!series) {
      series = { labelValues, value: this.initial() };
      this.series.set(key, series);
    }
    return series;
  }

  protected peek(labels: Labels<L>): V | undefined {
    return this.series.get(JSON.stringify(this.labelValuesOf(labels)))?.value;
  }

  private labelValuesOf(labels: Labels<L>): string[] {
    const given = Object.keys(labels);
    const unknown = given.filter((name) => !(this.labelNames as readonly string[]).includes(name));
    if (unknown.length > 0 || given.length !== this.labelNames.length) {
      throw new Error(
        `metric ${this.name} takes labels [${this.labelNames.join(", ")}], got [${given.join(", ")}]`,
      );
    }
    return this.labelNames.map((name) => labels[name]);
  }

  render(): string {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    // A metric without labels has exactly one series, shown from the start.
    if (this.labelNames.length === 0 && this.series.size === 0) {
      this.at({} as Labels<L>);
    }
    for (const series of this.series.values()) {
      lines.push(...this.sampleLines(series));
    }
    return lines.join("\n") + "\n";
  }

  protected abstract sampleLines(series: Series<V>): string[];

  protected labelText(labelValues: readonly string[], extra: [string, string][] = []): string {
    const pairs: [string, string][] = [
      ...this.labelNames.map((name, i): [string, string] => [name, labelValues[i]!]),
      ...extra,
    ];
    if (pairs.length === 0) return "";
    return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
  }
}

/** Only goes up; resets with the process. */
export class Counter<L extends string = never> extends Metric<L, number> {
  readonly type = "counter";

  protected initial(): number {
    return 0;
  }

  inc(labels: Labels<L>, amount = 1): void {
    if (!(amount >= 0)) {
      throw new Error(`counter ${this.name} cannot decrease (got ${amount})`);
    }
    this.at(labels).value += amount;
  }

  get(labels: Labels<L>): number {
    return this.peek(labels) ?? 0;
  }

  protected sampleLines(series: Series<number>): string[] {
    return [`${this.name}${this.labelText(series.labelValues)} ${formatNumber(series.value)}`];
  }
}

export class Gauge<L extends string = never> extends Metric<L, number> {
  readonly type = "gauge";

  protected initial(): number {
    return 0;
  }

  set(labels: Labels<L>, value: number): void {
    this.at(labels).value = value;
  }

  inc(labels: Labels<L>, amount = 1): void {
    this.at(labels).value += amount;
  }

  dec(labels: Labels<L>, amount = 1): void {
    this.at(labels).value -= amount;
  }

  get(labels: Labels<L>): number {
    return this.peek(labels) ?? 0;
  }

  /** Drops every series, for label values that may disappear (set the current ones again after). */
  reset(): void {
    this.series.clear();
  }

  protected sampleLines(series: Series<number>): string[] {
    return [`${this.name}${this.labelText(series.labelValues)} ${formatNumber(series.value)}`];
  }
}

interface HistogramValue {
  /** Per bucket (same order as the bounds), not cumulative; the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<L extends string = never> extends Metric<L, HistogramValue> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super(options);
    if ((options.labelNames as readonly string[]).includes("le")) {
      throw new Error(`histogram ${options.name}: "le" is reserved for bucket bounds`);
    }
    const ascending = options.buckets.every(
      (bound, i) => i === 0 || bound > options.buckets[i - 1]!,
    );
    if (options.buckets.length === 0 || !ascending || !options.buckets.every(Number.isFinite)) {
      throw new Error(`histogram ${options.name}: buckets must be finite and strictly ascending`);
    }
    this.buckets = options.buckets;
  }

  protected initial(): HistogramValue {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  observe(labels: Labels<L>, value: number): void {
    const histogram = this.at(labels).value;
    const index = this.buckets.findIndex((bound) => value <= bound);
    histogram.counts[index === -1 ? this.buckets.length : index]! += 1;
    histogram.sum += value;
    histogram.count += 1;
  }

  /** Starts timing; the returned function observes the elapsed seconds. */
  startTimer(labels: Labels<L>): () => number {
    const start = performance.now();
    return () => {
      const seconds = (performance.now() - start) / 1000;
      this.observe(labels, seconds);
      return seconds;
    };
  }

  /** Number of observations so far. */
  count(labels: Labels<L>): number {
    return this.peek(labels)?.count ?? 0;
  }

  protected sampleLines(series: Series<HistogramValue>): string[] {
    const { counts, sum, count } = series.value;
    const bounds = [...this.buckets.map(formatNumber), "+Inf"];
    let cumulative = 0;
    const lines = bounds.map((le, i) => {
      cumulative += counts[i]!;
      return `${this.name}_bucket${this.labelText(series.labelValues, [["le", le]])} ${cumulative}`;
    });
    const labels = this.labelText(series.labelValues);
    lines.push(
      `${this.name}_sum${labels} ${formatNumber(sum)}`,
      `${this.name}_count${labels} ${count}`,
    );
    return lines;
  }
}

/** Holds metric families and renders them for `/metrics`. */
export class MetricsRegistry {
  private readonly families = new Map<string, Metric<string, unknown>>();

  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.add(new Counter(options));
  }

  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram(options));
  }

  /** Every family in registration order, in the text exposition format. */
  render(): string {
    return [...this.families.values()].map((family) => family.render()).join("");
  }

  private add<M extends Metric<string, unknown>>(metric: M): M {
    if (this.families.has(metric.name)) {
      throw new Error(`metric ${metric.name} is already registered`);
    }
    this.families.set(metric.name, metric);
    return metric;
  }
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
