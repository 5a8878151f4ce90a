/**
 * Running CNI plugins (spec 0.3.0–1.x) for the VFs the driver plugs into pods: the executor
 * with its result cache, and the pure parts it is built from.
 */
export type { CniConfigList } from "./config.js";
export { CniError, CniErrorCode } from "./errors.js";
export type { CniExecutorOptions } from "./executor.js";
export { CniExecutor } from "./executor.js";
export type { CniCommand, CniRuntime } from "./invocation.js";
export type {
  CniDns,
  CniInterface,
  CniIpConfig,
  CniResult,
  CniRoute,
  PodInterface,
} from "./result.js";
export { podInterfaceOf } from "./result.js";
