import { pino, type Logger } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export const LOG_FORMATS = ["json", "text"] as const;

export interface LoggerOptions {
  level: string;
  format: (typeof LOG_FORMATS)[number];
  /** Where lines go; stderr so command output on stdout stays machine-readable. */
  destination?: NodeJS.WritableStream;
}

/** JSON lines for log pipelines, or `time LEVEL message key=value` for people at a terminal. */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stderr;
  const stream =
    options.format === "json" ? out : { write: (line: string) => out.write(toText(line)) };
  return pino(
    { level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    stream,
  );
}

function toText(jsonLine: string): string {
  const { time, level, msg, ...fields } = JSON.parse(jsonLine) as Record<string, unknown>;
  const name = pino.levels.labels[Number(level)] ?? String(level);
  const rest = Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  return `${String(time)} ${name.toUpperCase().padEnd(5)} ${String(msg ?? "")}${rest ? ` ${rest}` : ""}\n`;
}
