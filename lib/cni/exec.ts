import { spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { PluginExit } from "./errors.js";

/** The first executable regular file named `type` in the directories, in order; null when none. */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string | null> {
  for (const dir of dirs) {
    const candidate = path.join(dir, type);
    try {
      const stat = await fsp.stat(candidate);
      if (!stat.isFile()) continue;
      await fsp.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here (or not executable): the next directory.
    }
  }
  return null;
}

export interface PluginRun {
  file: string;
  env: Record<string, string>;
  stdin: string;
  timeoutMs: number;
  /** Most bytes kept of stdout; more kills the plugin. */
  maxStdoutBytes: number;
  /** Most bytes kept of stderr (the start); the rest is dropped, the plugin runs on. */
  maxStderrBytes: number;
}

export type PluginOutcome =
  | ({ kind: "exited" } & PluginExit)
  | { kind: "timeout"; stderr: string }
  | { kind: "output-limit"; stderr: string }
  | { kind: "spawn-failed"; reason: string };

/**
 * Runs one plugin process with its stdin, bounded in time and output. The plugin leads its
 * own process group, so a timeout kills what it started too (an IPAM plugin it delegated to).
 */
export function runPlugin(run: PluginRun): Promise<PluginOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const stderr: Buffer[] = [];
    let stderrBytes = 0;
    const stderrText = () => Buffer.concat(stderr).toString("utf8");

    const child = spawn(run.file, [], {
      env: run.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    const finish = (outcome: PluginOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const abort = (kind: "timeout" | "output-limit") => {
      killGroup();
      // Do not wait for the pipes: a process that left the group could hold them open.
      child.stdout.destroy();
      child.stderr.destroy();
      finish({ kind, stderr: stderrText() });
    };
    const timer = setTimeout(() => abort("timeout"), run.timeoutMs);

    child.on("error", (error) => {
      killGroup();
      finish({ kind: "spawn-failed", reason: error.message });
    });
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > run.maxStdoutBytes) {
        abort("output-limit");
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      const room = run.maxStderrBytes - stderrBytes;
      if (room <= 0) return;
      stderr.push(chunk.subarray(0, room));
      stderrBytes += Math.min(room, chunk.length);
    });
    child.on("close", (exitCode, signal) => {
      finish({
        kind: "exited",
        exitCode,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: stderrText(),
      });
    });
    // A plugin may exit without reading stdin (VERSION, an early error): its exit status tells.
    child.stdin.on("error", () => undefined);
    child.stdin.end(run.stdin);
  });
}
