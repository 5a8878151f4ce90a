import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

// Free of vitest, so the benchmarks (built into dist/) use it too.

const BUILD_SCRIPT = path.join("hack", "build-cni.sh");

let binDir: string | undefined;

/** The repository root: the first directory above this file with hack/build-cni.sh (from test/support/ or dist/test/support/). */
function repoRoot(): string {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, BUILD_SCRIPT))) return dir;
    if (path.dirname(dir) === dir)
      throw new Error(`no ${BUILD_SCRIPT} above ${import.meta.dirname}`);
  }
}

/**
 * The CNI bin dir with our test plugins (`emulated-vf`, the SR-IOV CNI's stand-in on an
 * emulated host), built by hack/build-cni.sh into the cache outside the repo: built first when
 * missing, then a few milliseconds. Put it before the reference plugins on --cni-bin-dir.
 */
export function cniTestBinDir(): string {
  if (binDir !== undefined) return binDir;
  const result = spawnSync("bash", [path.join(repoRoot(), BUILD_SCRIPT)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const dir = /^CNI_TEST_BIN_DIR=(.*)$/m.exec(result.stdout ?? "")?.[1];
  if (result.status !== 0 || dir === undefined) {
    throw new Error(`${BUILD_SCRIPT} failed (exit ${result.status ?? result.signal})`);
  }
  binDir = dir;
  return dir;
}
