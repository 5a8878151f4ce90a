/**
 * A problem with one claim that the operator can fix (configuration, allocation, host
 * state). Its message ends up in the pod's events, so it says what is wrong and what to do.
 */
export class ClaimError extends Error {
  override readonly name = "ClaimError";
}
