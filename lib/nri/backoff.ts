export interface BackoffOptions {
  /** The first retry's delay, before jitter. */
  initialDelayMs: number;
  /** The cap the doubling stops at, before jitter. */
  maxDelayMs: number;
}

export const DEFAULT_RECONNECT: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000 };

/**
 * The delay before retry number `attempt` (0 for the first): doubling from the initial
 * delay up to the cap, then a random half taken off, so plugins that lost the same
 * runtime do not all come back at the same instant.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt, 0), 30);
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Throws, saying what to fix, when the options cannot work. */
export function checkBackoff(options: BackoffOptions): void {
  const { initialDelayMs, maxDelayMs } = options;
  if (!(Number.isFinite(initialDelayMs) && initialDelayMs > 0)) {
    throw new RangeError(
      `reconnect.initialDelayMs must be a positive number, got ${initialDelayMs}`,
    );
  }
  if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= initialDelayMs)) {
    throw new RangeError(
      `reconnect.maxDelayMs must be at least initialDelayMs (${initialDelayMs}), got ${maxDelayMs}`,
    );
  }
}
