import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { repoRoot } from "./kube.js";

const BUNDLE = path.join(repoRoot, "dist/bundle/dra-driver-sriov.mjs");

/** The single-file bundle the container image runs (`make bundle`) must work on its own. */
describe("the bundled CLI", () => {
  let root: string;
  beforeAll(async () => {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run "make bundle" first`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync(process.execPath, [BUNDLE, ...args], { encoding: "utf8", cwd: os.tmpdir() });

  it("starts and lists every command", () => {
    const result = run("--help");
    expect(result.status).toBe(0);
    for (const command of ["kubelet-plugin", "controller", "discover", "emulate"]) {
      expect(result.stdout).toContain(command);
    }
  });

  it("discovers an emulated host and prints its ResourceSlices", () => {
    const result = run(
      "discover",
      "--host-root",
      root,
      "--node-name",
      "bundled",
      "-o",
      "json",
      "--log-level",
      "error",
    );
    expect(result.status).toBe(0);
    const list = JSON.parse(result.stdout) as {
      items: { spec: { nodeName: string; devices: unknown[] } }[];
    };
    expect(list.items[0]!.spec.nodeName).toBe("bundled");
    expect(list.items.flatMap((slice) => slice.spec.devices)).toHaveLength(15);
  });

  it("writes its whole output to a pipe before it exits", async () => {
    const scale = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-scale-"));
    try {
      await buildEmulatedHost({ root: scale, profile: builtinProfiles.scale });
      const args = [BUNDLE, "discover", "--host-root", scale, "--node-name", "n", "-o", "json"];
      // Into a file (written synchronously): the whole output.
      const file = path.join(scale, "out.json");
      const fd = fs.openSync(file, "w");
      expect(spawnSync(process.execPath, args, { stdio: ["ignore", fd, "ignore"] }).status).toBe(0);
      fs.closeSync(fd);
      const expected = fs.statSync(file).size;
      expect(expected).toBeGreaterThan(1024 * 1024);
      // Into a pipe (written asynchronously, far more than the pipe holds).
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "ignore"] });
      let received = 0;
      child.stdout.on("data", (chunk: Buffer) => (received += chunk.length));
      const [code] = await Promise.all([
        new Promise<number | null>((resolve) => child.on("exit", resolve)),
        new Promise((resolve) => child.stdout.on("end", resolve)),
      ]);
      expect(code).toBe(0);
      expect(received).toBe(expected);
    } finally {
      fs.rmSync(scale, { recursive: true, force: true });
    }
  });
});
