/** gRPC status codes, which ttrpc carries in every response (google.rpc.Status.code). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type Code = (typeof Code)[keyof typeof Code];

const NAMES = new Map<number, string>(Object.entries(Code).map(([name, code]) => [code, name]));

export function codeName(code: number): string {
  return NAMES.get(code) ?? `CODE_${code}`;
}

/** A call that ended with a status other than OK, on either side of the connection. */
export class TtrpcError extends Error {
  override readonly name = "TtrpcError";

  constructor(
    readonly code: number,
    /** The status message as the peer sees it. */
    readonly statusMessage: string,
  ) {
    super(`${codeName(code)}: ${statusMessage}`);
  }
}

export interface Status {
  code: number;
  message: string;
}

/** The status a server answers for what a handler threw: its own code, or UNKNOWN. */
export function statusOf(error: unknown): Status {
  if (error instanceof TtrpcError) return { code: error.code, message: error.statusMessage };
  if (error instanceof Error) return { code: Code.UNKNOWN, message: error.message };
  return { code: Code.UNKNOWN, message: String(error) };
}
