import { spawnSync } from "node:child_process";
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
});
