/**
 * How many inputs each property of the fuzz tier tries: a few hundred in `make test`
 * (the tier stays within a few minutes on 2 cores), many more in `make fuzz`
 * (DRA_SRIOV_FUZZ_RUNS_SCALE=20).
 */
export function fuzzRuns(short: number): number {
  const scale = Number(process.env["DRA_SRIOV_FUZZ_RUNS_SCALE"] ?? "1");
  return Math.max(1, Math.round(short * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}
