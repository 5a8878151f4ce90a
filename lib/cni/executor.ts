import fs from "node:fs";
import type { Logger } from "../log/logger.js";
import type { JsonObject, JsonValue } from "../util/json.js";
import { CACHE_KIND, ResultCache, type CacheEntry } from "./cache.js";
import type { CniConfigList } from "./config.js";
import { CniError, CniErrorCode, pluginFailure } from "./errors.js";
import { findPlugin, runPlugin } from "./exec.js";
import {
  cacheKeyOf,
  pluginEnv,
  pluginRequest,
  requestProblem,
  type CniCommand,
  type CniRuntime,
} from "./invocation.js";
import { InvalidResultError, parseResult, resultAsVersion, type CniResult } from "./result.js";
import {
  CHECK_AND_DEL_PREV_RESULT,
  atLeast,
  parseVersion,
  unsupportedVersionReason,
} from "./version.js";

export interface CniExecutorOptions {
  /** Directories searched for plugin binaries, in order; also CNI_PATH for the plugins. */
  pluginDirs: string[];
  /** Holds `results/<network>-<containerId>-<ifName>`, what CHECK and DEL need of an ADD. */
  cacheDir: string;
  /**
   * Longest one plugin process may run; then it and what it started are killed. A function
   * is asked at each run: the NRI hook derives it from the runtime's request timeout.
   */
  timeoutMs: number | (() => number);
  logger: Logger;
  /** Most bytes a plugin may print on stdout (default 1 MiB). */
  maxOutputBytes?: number;
  /** Environment the plugins start from (default: this process's); CNI_* is replaced. */
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;

interface Operation {
  /** A CNI command, or what else the executor was doing, for errors. */
  command: string;
  list: CniConfigList;
  runtime: CniRuntime;
}

type PluginOperation = Operation & { command: CniCommand };

/**
 * Runs CNI configuration lists for attachments (container ID + interface name) the way the
 * CNI spec's runtime section says: ADD in order, each plugin given the previous result, the
 * final result cached; DEL in reverse order with the cached result, tolerating a missing
 * cache and a vanished network namespace; CHECK in order with the cached result.
 *
 * `add` does exactly ADD; a failed ADD can leave a plugin's changes behind (the spec leaves
 * the cleanup to the runtime's DEL), so the caller runs DEL after it, as the pod-network step
 * does. Operations on one attachment run one at a time (spec: the runtime never runs two for
 * one container at once); different attachments run in parallel.
 */
export class CniExecutor {
  private readonly cache: ResultCache;
  private readonly busy = new Map<string, Promise<void>>();

  constructor(private readonly options: CniExecutorOptions) {
    this.cache = new ResultCache(options.cacheDir);
  }

  /** ADD: runs the list's plugins in order and caches the final result for CHECK and DEL. */
  add(config: CniConfigList, runtime: CniRuntime): Promise<CniResult> {
    return this.serialized(config, runtime, () => this.addNow(config, runtime));
  }

  /**
   * DEL: runs the plugins in reverse order with the cached ADD result (0.4.0+) and removes
   * the cache entry. Idempotent: without a cache entry the plugins run without
   * `prevResult`; a network namespace that no longer exists is left out (CNI_NETNS is
   * optional on DEL), so plugins clean up what they can.
   */
  del(config: CniConfigList, runtime: CniRuntime): Promise<void> {
    return this.serialized(config, runtime, () => this.delNow(config, runtime));
  }

  /**
   * CHECK: runs the plugins in order with the cached ADD result. Needs cniVersion 0.4.0+
   * and a previous ADD; `disableCheck: true` in the list makes it succeed without running.
   */
  check(config: CniConfigList, runtime: CniRuntime): Promise<void> {
    return this.serialized(config, runtime, () => this.checkNow(config, runtime));
  }

  private async addNow(list: CniConfigList, runtime: CniRuntime): Promise<CniResult> {
    const op: PluginOperation = { command: "ADD", list, runtime };
    this.validate(op);
    const files = await this.findPlugins(op);
    let prevResult: JsonObject | undefined;
    let result: CniResult | undefined;
    for (const [index, file] of files.entries()) {
      const stdout = await this.exec(op, index, file, prevResult);
      const plugin = typeOf(list, index);
      let parsed: JsonValue;
      try {
        parsed = JSON.parse(stdout) as JsonValue;
        result = parseResult(parsed, list.cniVersion);
      } catch (error) {
        const reason =
          error instanceof InvalidResultError
            ? error.message
            : `not JSON (${stdout.trim() === "" ? "empty" : (error as Error).message})`;
        throw this.error(
          op,
          plugin,
          CniErrorCode.BAD_OUTPUT,
          `printed an invalid result: ${reason}`,
          "the plugin does not follow the CNI spec for this cniVersion; check its version and configuration",
        );
      }
      // The next plugin reads prevResult in the configuration's version.
      prevResult = resultAsVersion(parsed as JsonObject, list.cniVersion);
    }
    const entry: CacheEntry = {
      kind: CACHE_KIND,
      networkName: list.name,
      containerId: runtime.containerId,
      ifName: runtime.ifName,
      netns: runtime.netns,
      cniArgs: runtime.args,
      config: list,
      result: prevResult!,
    };
    if (runtime.capabilityArgs !== undefined) entry.capabilityArgs = runtime.capabilityArgs;
    try {
      await this.cache.write(cacheKeyOf(list.name, runtime), entry);
    } catch (error) {
      throw this.error(
        op,
        "",
        CniErrorCode.IO_FAILURE,
        `cannot cache the result in ${this.cache.resultsDir}: ${(error as Error).message}`,
        "DEL needs it; make the CNI cache directory writable",
      );
    }
    return result!;
  }

  private async delNow(list: CniConfigList, runtime: CniRuntime): Promise<void> {
    const op: PluginOperation = { command: "DEL", list, runtime };
    this.validate(op);
    const withPrevResult = atLeast(parseVersion(list.cniVersion)!, CHECK_AND_DEL_PREV_RESULT);
    const entry = withPrevResult ? await this.cachedEntry(op) : null;
    const prevResult = entry ? resultAsVersion(entry.result, list.cniVersion) : undefined;
    const withNetns = runtime.netns === "" || fs.existsSync(runtime.netns);
    if (!withNetns) {
      this.options.logger.info(
        { network: list.name, containerId: runtime.containerId, netns: runtime.netns },
        "network namespace is gone: DEL runs without CNI_NETNS",
      );
    }
    const files = await this.findPlugins(op);
    for (let index = files.length - 1; index >= 0; index--) {
      await this.exec(op, index, files[index]!, prevResult, withNetns);
    }
    // Spec: a successful DEL removes the cached result.
    try {
      await this.cache.remove(cacheKeyOf(list.name, runtime));
    } catch (error) {
      throw this.error(
        op,
        "",
        CniErrorCode.IO_FAILURE,
        `cannot remove the cached result from ${this.cache.resultsDir}: ${(error as Error).message}`,
        "the plugins are done; make the CNI cache directory writable and DEL again",
      );
    }
  }

  private async checkNow(list: CniConfigList, runtime: CniRuntime): Promise<void> {
    const op: PluginOperation = { command: "CHECK", list, runtime };
    this.validate(op);
    if (!atLeast(parseVersion(list.cniVersion)!, CHECK_AND_DEL_PREV_RESULT)) {
      throw this.error(
        op,
        "",
        CniErrorCode.INCOMPATIBLE_VERSION,
        `CHECK needs cniVersion ${CHECK_AND_DEL_PREV_RESULT} or later, the configuration has ${list.cniVersion}`,
        "raise cniVersion in the network's CNI configuration, or do not CHECK it",
      );
    }
    if (list["disableCheck"] === true) return;
    const entry = await this.cachedEntry(op);
    if (entry === null) {
      throw this.error(
        op,
        "",
        CniErrorCode.INVALID_REQUEST,
        `no cached ADD result for container ${runtime.containerId} interface ${runtime.ifName}`,
        "CHECK needs a previous ADD that was not deleted since",
      );
    }
    const prevResult = resultAsVersion(entry.result, list.cniVersion);
    const files = await this.findPlugins(op);
    for (const [index, file] of files.entries()) {
      await this.exec(op, index, file, prevResult);
    }
  }

  /** The cache entry of this attachment; an unreadable or foreign one counts as none. */
  private async cachedEntry(op: Operation): Promise<CacheEntry | null> {
    const key = cacheKeyOf(op.list.name, op.runtime);
    const lookup = await this.cache.read(key);
    if (lookup.state === "missing") return null;
    const context = { network: op.list.name, file: this.cache.fileOf(key) };
    if (lookup.state === "unreadable") {
      this.options.logger.warn(
        context,
        `ignoring unreadable CNI result cache entry: ${lookup.reason}`,
      );
      return null;
    }
    const { entry } = lookup;
    // The libcni key format is ambiguous ("-" in names): the entry says whose it is.
    if (
      entry.networkName !== op.list.name ||
      entry.containerId !== op.runtime.containerId ||
      entry.ifName !== op.runtime.ifName
    ) {
      this.options.logger.warn(context, "ignoring CNI result cache entry of another attachment");
      return null;
    }
    return entry;
  }

  private validate(op: Operation): void {
    const versionProblem = unsupportedVersionReason(op.list.cniVersion);
    if (versionProblem !== null) {
      throw this.error(op, "", CniErrorCode.INCOMPATIBLE_VERSION, versionProblem);
    }
    const problem = requestProblem(op.list, op.runtime);
    if (problem !== null) throw this.error(op, "", CniErrorCode.INVALID_REQUEST, problem);
  }

  /** Every plugin's binary, looked up before any runs: a missing one changes nothing. */
  private async findPlugins(op: Operation): Promise<string[]> {
    const { pluginDirs } = this.options;
    return Promise.all(
      op.list.plugins.map(async (_plugin, index) => {
        const type = typeOf(op.list, index);
        const file = await findPlugin(type, pluginDirs);
        if (file === null) {
          throw this.error(
            op,
            type,
            CniErrorCode.PLUGIN_NOT_FOUND,
            `plugin binary not found in ${pluginDirs.join(", ") || "(no plugin directories)"}`,
            `install the "${type}" CNI plugin there, or fix plugins[${index}].type of the network's CNI configuration`,
          );
        }
        return file;
      }),
    );
  }

  /** Runs one plugin of the list; its stdout on success, a CniError otherwise. */
  private timeoutMs(): number {
    const { timeoutMs } = this.options;
    return typeof timeoutMs === "number" ? timeoutMs : timeoutMs();
  }

  private async exec(
    op: PluginOperation,
    index: number,
    file: string,
    prevResult: JsonObject | undefined,
    withNetns = true,
  ): Promise<string> {
    const { list, runtime, command } = op;
    const plugin = typeOf(list, index);
    const request = pluginRequest(list, index, prevResult, runtime.capabilityArgs);
    const env = pluginEnv(this.options.env ?? process.env, {
      command,
      runtime,
      withNetns,
      pluginDirs: this.options.pluginDirs,
    });
    const context = {
      network: list.name,
      plugin,
      command,
      containerId: runtime.containerId,
      ifName: runtime.ifName,
    };
    const started = performance.now();
    const timeoutMs = this.timeoutMs();
    const outcome = await runPlugin({
      file,
      env,
      stdin: JSON.stringify(request),
      timeoutMs,
      maxStdoutBytes: this.options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      maxStderrBytes: MAX_STDERR_BYTES,
    });
    const durationMs = Math.round(performance.now() - started);
    if ("stderr" in outcome && outcome.stderr.trim() !== "") {
      this.options.logger.debug({ ...context, stderr: outcome.stderr }, "CNI plugin stderr");
    }
    switch (outcome.kind) {
      case "timeout":
        throw this.error(
          op,
          plugin,
          CniErrorCode.TIMEOUT,
          `no answer within ${timeoutMs} ms; the plugin and what it started were killed`,
          "look for what it waits on (host, IPAM) and raise the CNI timeout if the host is just slow",
        );
      case "output-limit":
        throw this.error(
          op,
          plugin,
          CniErrorCode.BAD_OUTPUT,
          `printed more than ${this.options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES} bytes on stdout and was killed`,
        );
      case "spawn-failed":
        throw this.error(
          op,
          plugin,
          CniErrorCode.EXEC_FAILED,
          `cannot run ${file}: ${outcome.reason}`,
          "reinstall the plugin binary",
        );
      case "exited":
        break;
    }
    this.options.logger.debug(
      { ...context, exitCode: outcome.exitCode, durationMs },
      "CNI plugin ran",
    );
    if (outcome.exitCode === 0) return outcome.stdout;
    const failure = pluginFailure(outcome);
    let details = failure.details;
    if (failure.code === CniErrorCode.INCOMPATIBLE_VERSION) {
      const supported = await this.supportedVersions(file, list.cniVersion);
      if (supported !== null) {
        details = `${details ? `${details}; ` : ""}the plugin supports cniVersion ${supported.join(", ")}`;
      }
    }
    const error = this.error(op, plugin, failure.code, failure.msg, details);
    this.options.logger.warn(
      { ...context, code: failure.code, stderr: outcome.stderr },
      error.message,
    );
    throw error;
  }

  /** The plugin's answer to VERSION, for an error message; null when it gives none. */
  private async supportedVersions(file: string, cniVersion: string): Promise<string[] | null> {
    const outcome = await runPlugin({
      file,
      env: pluginEnv(this.options.env ?? process.env, {
        command: "VERSION",
        pluginDirs: this.options.pluginDirs,
      }),
      stdin: JSON.stringify({ cniVersion }),
      timeoutMs: this.timeoutMs(),
      maxStdoutBytes: this.options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      maxStderrBytes: MAX_STDERR_BYTES,
    });
    if (outcome.kind !== "exited" || outcome.exitCode !== 0) return null;
    try {
      const { supportedVersions } = JSON.parse(outcome.stdout) as { supportedVersions?: unknown };
      return Array.isArray(supportedVersions) &&
        supportedVersions.every((version) => typeof version === "string")
        ? (supportedVersions as string[])
        : null;
    } catch {
      return null;
    }
  }

  private error(
    op: Operation,
    plugin: string,
    code: number,
    msg: string,
    details?: string,
  ): CniError {
    return new CniError({
      code,
      plugin,
      command: op.command,
      network: op.list.name,
      msg,
      ...(details === undefined ? {} : { details }),
    });
  }

  private async serialized<T>(
    list: CniConfigList,
    runtime: CniRuntime,
    work: () => Promise<T>,
  ): Promise<T> {
    const key = `${list.name}\0${runtime.containerId}\0${runtime.ifName}`;
    const previous = this.busy.get(key) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.busy.set(key, tail);
    void tail.then(() => {
      if (this.busy.get(key) === tail) this.busy.delete(key);
    });
    return result;
  }
}

function typeOf(list: CniConfigList, index: number): string {
  return list.plugins[index]!["type"] as string;
}
