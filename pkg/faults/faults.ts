import type { Logger } from "pino";

/** Points in prepare, unprepare and a pod's attach where a crash test can stop the process. */
export const FAULT_STEPS = [
  "after-checkpoint-started",
  "after-driver-bound",
  "after-cdi-written",
  "before-checkpoint-completed",
  "during-unprepare-after-checkpoint",
  "during-unprepare-after-cdi-removed",
  "during-unprepare-after-driver-restored",
  "during-attach-after-checkpoint",
  "during-attach-after-add",
] as const;

export type FaultStep = (typeof FAULT_STEPS)[number];

/**
 * Called at every fault step. Production has none unless the variable below is set; tests
 * inject one that throws (the step fails) or never settles (the process "died" there).
 */
export type FaultHook = (
  step: FaultStep,
  context: { claimUid: string } | { sandboxId: string },
) => void | Promise<void>;

/**
 * `DRA_SRIOV_FAULT=after-driver-bound` (or a comma-separated list): die at that step.
 * `hang:after-driver-bound`: stop there and keep running, so that a test can kill the
 * process from outside in the middle of the operation (`kubectl delete pod --force`).
 */
export const FAULT_ENV = "DRA_SRIOV_FAULT";

export type FaultAction = "kill" | "hang";

const HANG_PREFIX = "hang:";

export function parseFaults(value: string | undefined): Map<FaultStep, FaultAction> {
  const entries = (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) =>
      entry.startsWith(HANG_PREFIX)
        ? { entry, step: entry.slice(HANG_PREFIX.length), action: "hang" as const }
        : { entry, step: entry, action: "kill" as const },
    );
  const known = new Set<string>(FAULT_STEPS);
  const unknown = entries.filter(({ step }) => !known.has(step)).map(({ entry }) => entry);
  if (unknown.length > 0) {
    throw new Error(
      `${FAULT_ENV} names unknown step(s) ${unknown.join(", ")}; known: ${FAULT_STEPS.join(", ")}`,
    );
  }
  return new Map(entries.map(({ step, action }) => [step as FaultStep, action]));
}

/**
 * The hook `DRA_SRIOV_FAULT` asks for: at a named step the process kills itself with
 * SIGKILL, as a crash or OOM kill would, so no cleanup code runs; or, with `hang:`, the
 * operation stops there for good. Undefined when unset.
 */
export function faultHookFromEnv(
  value: string | undefined,
  logger: Logger,
  kill: () => void = crashNow,
): FaultHook | undefined {
  const faults = parseFaults(value);
  if (faults.size === 0) return undefined;
  logger.warn(
    { faults: Object.fromEntries(faults) },
    `${FAULT_ENV} is set: the driver will kill itself or stop at these steps`,
  );
  return (step, context) => {
    const action = faults.get(step);
    if (action === undefined) return undefined;
    if (action === "kill") {
      logger.fatal({ step, ...context }, "fault injection: killing the process");
      kill();
    } else {
      logger.warn(
        { step, ...context },
        "fault injection: stopping here until the process is killed",
      );
    }
    // Nothing after the step may run (while the signal is delivered, or ever).
    return new Promise<void>(() => undefined);
  };
}

/**
 * Ends the process at once, as a crash would. As PID 1 of a container (the node plugin's
 * pod) the kernel drops signals it has no handler for, SIGKILL from itself included, so
 * there it exits instead: no handler of ours runs either way.
 */
function crashNow(): void {
  if (process.pid === 1) process.exit(137);
  process.kill(process.pid, "SIGKILL");
}
