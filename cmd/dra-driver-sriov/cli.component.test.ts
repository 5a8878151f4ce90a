import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli } from "./cli.js";

async function run(argv: string[], env: Record<string, string> = {}) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: "", err: "" };
  out.on("data", (chunk: Buffer) => (chunks.out += chunk.toString()));
  err.on("data", (chunk: Buffer) => (chunks.err += chunk.toString()));
  const code = await runCli(argv, env, out, err);
  return { code, ...chunks };
}

describe("dra-driver-sriov CLI", () => {
  let root: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "cli-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("lists the commands on --help and exits 0; with no command it exits 2", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(EXIT_OK);
    expect(help.out).toMatch(/discover .*\n.*emulate .*\n.*controller/);
    expect((await run([])).code).toBe(EXIT_USAGE);
  });

  it("refuses an unknown command or flag with exit 2 and the usage", async () => {
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(EXIT_USAGE);
    expect(unknown.err).toContain('unknown command "frobnicate"');
    const badFlag = await run(["discover", "--hots-root", root]);
    expect(badFlag.code).toBe(EXIT_USAGE);
    expect(badFlag.err).toContain("hots-root");
    expect(badFlag.err).toContain("Usage: dra-driver-sriov discover");
  });

  it("prints the node's slices as a v1 List, taking flags from the environment", async () => {
    const result = await run(["discover", "-o", "json"], {
      HOST_ROOT: root,
      NODE_NAME: "node-7",
      LOG_LEVEL: "error",
    });
    expect(result.code).toBe(EXIT_OK);
    const list = JSON.parse(result.out) as {
      kind: string;
      items: { spec: { nodeName: string; devices: unknown[] } }[];
    };
    expect(list.kind).toBe("List");
    expect(list.items[0]!.spec.nodeName).toBe("node-7");
    expect(list.items.flatMap((slice) => slice.spec.devices)).toHaveLength(15);
  });

  it("publishes host-used VFs only when told to", async () => {
    const result = await run([
      "discover",
      "-o",
      "json",
      "--host-root",
      root,
      "--publish-host-used-vfs",
      "--log-level",
      "error",
    ]);
    const list = JSON.parse(result.out) as { items: { spec: { devices: unknown[] } }[] };
    expect(list.items.flatMap((slice) => slice.spec.devices)).toHaveLength(16);
  });

  it("prints a PF → VF table marking withheld VFs", async () => {
    const result = await run(["discover", "--host-root", root, "--log-level", "error"]);
    expect(result.out).toMatch(/^PF 0000:3b:00\.0 ens1f0/m);
    expect(result.out).toMatch(/0000-3b-0a-7 .* WITHHELD: used by the host/);
    expect(result.out).toContain("15 VFs published, 1 withheld.");
  });

  it("fails with exit 1 and a message naming the flag when the host root is wrong", async () => {
    const result = await run(["discover", "--host-root", path.join(root, "nope")]);
    expect(result.code).toBe(EXIT_FAILURE);
    expect(result.err).toMatch(/is --host-root .* the host's root/);
  });

  it("refuses to emulate into a directory that is not an emulated host", async () => {
    const foreign = fs.mkdtempSync(path.join(os.tmpdir(), "cli-foreign-"));
    fs.writeFileSync(path.join(foreign, "precious"), "data");
    try {
      const result = await run(["emulate", "--host-root", foreign, "--log-level", "error"]);
      expect(result.code).toBe(EXIT_FAILURE);
      expect(fs.readFileSync(path.join(foreign, "precious"), "utf8")).toBe("data");
    } finally {
      fs.rmSync(foreign, { recursive: true, force: true });
    }
  });
});
