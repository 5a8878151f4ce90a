import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../../pkg/emulator/index.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli } from "../cli.js";

async function emulate(...argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: "", err: "" };
  out.on("data", (chunk: Buffer) => (chunks.out += chunk.toString()));
  err.on("data", (chunk: Buffer) => (chunks.err += chunk.toString()));
  const code = await runCli(["emulate", ...argv, "--log-level", "error"], {}, out, err);
  return { code, ...chunks };
}

describe("emulate: changes to a built host", () => {
  let root: string;
  const sys = (...parts: string[]) => path.join(root, "sys", ...parts);
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "emulate-cli-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("unplugs a cable, sets a netdev down, removes a VF and rebinds one, in that order", async () => {
    const result = await emulate(
      ...["--host-root", root, "--rebind", "0000:3b:02.2=vfio-pci"],
      ...["--set-link", "ens1f0=down", "--set-admin-state", "ens1f1=down"],
      ...["--remove-vf", "0000:3b:02.1"],
    );
    expect(result).toEqual({
      code: EXIT_OK,
      out: [
        "PF ens1f0 (0000:3b:00.0): cable unplugged; carrier 0, operstate down",
        "PF ens1f1 (0000:3b:00.1): netdev set down; carrier unreadable, operstate down",
        "VF 0000:3b:02.1 removed (sriov_numvfs of 0000:3b:00.0 unchanged)",
        "VF 0000:3b:02.2 moved from iavf to vfio-pci",
        "",
      ].join("\n"),
      err: "",
    });
    expect(fs.readFileSync(sys("class/net/ens1f0/carrier"), "utf8")).toBe("0\n");
    expect(fs.existsSync(sys("class/net/ens1f1/carrier"))).toBe(false);
    expect(fs.existsSync(sys("bus/pci/devices/0000:3b:02.1"))).toBe(false);
    expect(path.basename(fs.readlinkSync(sys("bus/pci/devices/0000:3b:02.2/driver")))).toBe(
      "vfio-pci",
    );
  });

  it("refuses malformed lists (exit 2) and changes the host cannot make (exit 1)", async () => {
    expect((await emulate("--host-root", root, "--set-link", "ens1f0")).code).toBe(EXIT_USAGE);
    expect((await emulate("--host-root", root, "--set-link", "ens1f0=up", "--serve")).code).toBe(
      EXIT_USAGE,
    );
    const missing = await emulate("--host-root", root, "--set-link", "eth7=down");
    expect(missing.code).toBe(EXIT_FAILURE);
    expect(missing.err).toMatch(/no PF eth7 on this host/);
  });
});
