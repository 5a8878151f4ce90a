/**
 * Error codes: 1–99 are the CNI spec's well-known codes, 100+ belong to plugins. Failures the
 * executor detects itself (no plugin ran, or it misbehaved) use negative codes, so they never
 * collide with a plugin's.
 */
export const CniErrorCode = {
  /** Spec: incompatible CNI version. */
  INCOMPATIBLE_VERSION: 1,
  /** Spec: unsupported field in the network configuration. */
  UNSUPPORTED_FIELD: 2,
  /** Spec: container unknown; no cleanup (DEL) needed. */
  UNKNOWN_CONTAINER: 3,
  /** Spec: invalid environment variables. */
  INVALID_ENVIRONMENT: 4,
  /** Spec: I/O failure. */
  IO_FAILURE: 5,
  /** Spec: failed to decode content. */
  DECODE_FAILURE: 6,
  /** Spec: invalid network configuration. */
  INVALID_CONFIG: 7,
  /** Spec: transient condition, try again later. */
  TRY_AGAIN_LATER: 11,
  /** Executor: the plugin binary is in none of the plugin directories. */
  PLUGIN_NOT_FOUND: -1,
  /** Executor: the plugin ran longer than the timeout and was killed. */
  TIMEOUT: -2,
  /** Executor: the plugin's output is not a valid result, or too large. */
  BAD_OUTPUT: -3,
  /** Executor: the plugin could not be started, or failed without a CNI error on stdout. */
  EXEC_FAILED: -4,
  /** Executor: the request itself is invalid (configuration list, runtime parameters, cache). */
  INVALID_REQUEST: -5,
} as const;

export interface CniErrorInit {
  code: number;
  /** Plugin type (`host-device`); "" when the failure is about the request, not one plugin. */
  plugin: string;
  /** `ADD`, `DEL`, `CHECK` or `VERSION`. */
  command: string;
  /** Network (configuration list) name, for the message. */
  network: string;
  /** Short description: the plugin's `msg`, or the executor's. */
  msg: string;
  /** The plugin's `details`, or what the operator can do about it. */
  details?: string;
}

/** A failed CNI operation: a plugin's error result, or a failure to run the plugin at all. */
export class CniError extends Error {
  override readonly name = "CniError";
  readonly code: number;
  readonly plugin: string;
  readonly command: string;
  readonly network: string;
  readonly msg: string;
  readonly details: string;

  constructor(init: CniErrorInit) {
    super(formatMessage(init));
    this.code = init.code;
    this.plugin = init.plugin;
    this.command = init.command;
    this.network = init.network;
    this.msg = init.msg;
    this.details = init.details ?? "";
  }
}

function formatMessage(init: CniErrorInit): string {
  const who = init.plugin === "" ? "CNI" : `CNI plugin "${init.plugin}"`;
  const code = init.code > 0 ? ` (code ${init.code})` : "";
  const details = init.details ? `: ${init.details}` : "";
  return `${who} ${init.command} for network "${init.network}" failed${code}: ${init.msg}${details}`;
}

/** Longest plugin message kept from unstructured output (stderr, non-JSON stdout). */
const MAX_FREE_TEXT = 1024;

export interface PluginExit {
  /** Exit status; null when killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * What a failed plugin said: its CNI error object from stdout when it printed one (spec:
 * `code`, `msg`, `details`), else the end of its stderr or stdout with how it exited.
 */
export function pluginFailure(exit: PluginExit): { code: number; msg: string; details: string } {
  const error = parseErrorObject(exit.stdout);
  if (error !== null) return error;
  const how =
    exit.signal !== null ? `killed by ${exit.signal}` : `exited with status ${exit.exitCode}`;
  const text = lastText(exit.stderr) || lastText(exit.stdout);
  return {
    code: CniErrorCode.EXEC_FAILED,
    msg: text ? `${how} without a CNI error result; its output ends: ${text}` : `${how} silently`,
    details: "",
  };
}

function parseErrorObject(stdout: string): { code: number; msg: string; details: string } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  const { code, msg, details } = parsed as Record<string, unknown>;
  if (typeof code !== "number" || typeof msg !== "string") return null;
  return {
    code,
    msg: clip(msg),
    details: typeof details === "string" ? clip(details) : "",
  };
}

function lastText(output: string): string {
  const trimmed = output.trim();
  return trimmed.length > MAX_FREE_TEXT ? `…${trimmed.slice(-MAX_FREE_TEXT)}` : trimmed;
}

function clip(text: string): string {
  return text.length > MAX_FREE_TEXT ? `${text.slice(0, MAX_FREE_TEXT)}…` : text;
}
