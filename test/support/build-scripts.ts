import { spawnSync } from "node:child_process";
import path from "node:path";

const repoRoot = path.resolve(import.meta.dirname, "../..");

/** `KEY=value` printed by a hack/ build script; the script builds what is missing first. */
export function fromBuildScript(script: string, key: string, args: string[] = []): string {
  const result = spawnSync("bash", [path.join(repoRoot, "hack", script), ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const value = new RegExp(`^${key}=(.*)$`, "m").exec(result.stdout)?.[1];
  if (result.status !== 0 || value === undefined) {
    throw new Error(`hack/${script} ${args.join(" ")} failed (exit ${result.status})`);
  }
  return value;
}
