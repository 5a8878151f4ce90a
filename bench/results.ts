/**
 * Where `make bench` leaves its curves: bench/results/<name>.md (the table) and
 * <name>.json (the points), which bench/plot.py draws as <name>.png.
 */
import fs from "node:fs";
import path from "node:path";
import { REPO } from "./support.js";

export const RESULTS_DIR =
  process.env["DRA_SRIOV_BENCH_RESULTS"] ?? path.join(REPO, "bench/results");

/** One line of a picture: y over x. */
export interface Series {
  label: string;
  points: (readonly [number, number])[];
}

/** One picture and its table. */
export interface Curve {
  /** File name without extension: lower case, digits and dashes. */
  name: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic axes (for x: sizes that grow by factors). */
  logX: boolean;
  logY: boolean;
  series: Series[];
  /** The Markdown table the curve was drawn from, with its ratios. */
  table: string;
  /** One or two sentences under the table: what was run, how often. */
  note: string;
}

const NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Prints the curve's table and writes its .md and .json (the picture comes from bench/plot.py). */
export function writeCurve(curve: Curve): void {
  if (!NAME.test(curve.name)) throw new Error(`curve name ${JSON.stringify(curve.name)}`);
  const markdown = `### ${curve.title}\n\n${curve.table}\n\n${curve.note}\n`;
  console.log(`\n${markdown}`);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, `${curve.name}.md`), markdown);
  const { name, title, xLabel, yLabel, logX, logY, series } = curve;
  fs.writeFileSync(
    path.join(RESULTS_DIR, `${name}.json`),
    `${JSON.stringify({ title, xLabel, yLabel, logX, logY, series }, null, 2)}\n`,
  );
}

/** `b / a` as "×1.0", for growth columns. */
export const ratio = (a: number, b: number) => `×${(b / a).toFixed(1)}`;
