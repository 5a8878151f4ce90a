/** A CNI spec version, `major.minor.patch`. */
export interface SpecVersion {
  major: number;
  minor: number;
  patch: number;
}

/** Oldest spec version this executor runs: rich results and chaining came with 0.3.0. */
export const OLDEST_SUPPORTED = "0.3.0";
/** Spec version that added CHECK and `prevResult` on DEL. */
export const CHECK_AND_DEL_PREV_RESULT = "0.4.0";
/** Spec version that dropped `ips[].version` from results. */
export const NO_IP_VERSION_FIELD = "1.0.0";

export function parseVersion(text: string): SpecVersion | null {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (match === null) return null;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareVersions(a: SpecVersion, b: SpecVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** `version` is at least `than` (a well-formed constant). */
export function atLeast(version: SpecVersion, than: string): boolean {
  return compareVersions(version, parseVersion(than)!) >= 0;
}

/**
 * Why this executor cannot run a configuration of this `cniVersion`, or null when it can:
 * 0.3.0 to 1.x (results before 0.3.0 have another shape, a 2.x one is unknown).
 */
export function unsupportedVersionReason(text: string): string | null {
  const version = parseVersion(text);
  if (version === null) {
    return `cniVersion "${text}" is not a spec version (major.minor.patch, e.g. 1.0.0)`;
  }
  if (!atLeast(version, OLDEST_SUPPORTED)) {
    return `cniVersion ${text} is older than ${OLDEST_SUPPORTED}, the oldest this driver runs: set cniVersion to 0.4.0 or 1.0.0`;
  }
  if (version.major > 1) {
    return `cniVersion ${text} is newer than this driver knows (1.x): set cniVersion to 1.0.0`;
  }
  return null;
}
