import { CniError } from "../errors.js";

/** The CniError a call fails with; anything else fails the test. */
export async function failure(promise: Promise<unknown>): Promise<CniError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CniError) return error;
    throw error;
  }
  throw new Error("expected a CniError");
}
