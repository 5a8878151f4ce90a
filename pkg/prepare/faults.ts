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

/** `DRA_SRIOV_FAULT=after-driver-bound` (or a comma-separated list): die at that step. */
export const FAULT_ENV = "DRA_SRIOV_FAULT";

export function parseFaultSteps(value: string | undefined): Set<FaultStep> {
  const names = (value ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const known = new Set<string>(FAULT_STEPS);
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `${FAULT_ENV} names unknown step(s) ${unknown.join(", ")}; known: ${FAULT_STEPS.join(", ")}`,
    );
  }
  return new Set(names as FaultStep[]);
}

/**
 * The hook `DRA_SRIOV_FAULT` asks for: at a named step the process kills itself with
 * SIGKILL, as a crash or OOM kill would, so no cleanup code runs. Undefined when unset.
 */
export function faultHookFromEnv(
  value: string | undefined,
  logger: Logger,
  kill: () => void = () => process.kill(process.pid, "SIGKILL"),
): FaultHook | undefined {
  const steps = parseFaultSteps(value);
  if (steps.size === 0) return undefined;
  logger.warn(
    { steps: [...steps] },
    `${FAULT_ENV} is set: the driver will kill itself at these steps`,
  );
  return (step, context) => {
    if (!steps.has(step)) return undefined;
    logger.fatal({ step, ...context }, "fault injection: killing the process");
    kill();
    // Nothing after the step may run while the signal is delivered.
    return new Promise<void>(() => undefined);
  };
}
