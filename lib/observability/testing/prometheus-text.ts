/** One sample line of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

/** A strict reader of the text exposition format 0.0.4, for tests: malformed lines throw. */
export function parsePrometheusText(text: string): ParsedMetrics {
  const parsed: ParsedMetrics = { types: new Map(), help: new Map(), samples: [] };
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      (kind === "HELP" ? parsed.help : parsed.types).set(name!, unescape(rest!));
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`malformed line: ${line}`);
    const [, name, labelText, valueText] = sample;
    parsed.samples.push({
      name: name!,
      labels: parseLabels(labelText ?? ""),
      value: parseValue(valueText!),
    });
  }
  return parsed;
}

/** The value of the one sample with this name and exactly these labels. */
export function sampleValue(
  parsed: ParsedMetrics,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return parsed.samples.find(
    (sample) =>
      sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted,
  )?.value;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (!match) throw new Error(`malformed labels: {${text}}`);
    labels[match[1]!] = unescape(match[2]!);
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`malformed value: ${text}`);
  return value;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, char: string) => (char === "n" ? "\n" : char));
}
