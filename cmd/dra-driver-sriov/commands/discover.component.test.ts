import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../../pkg/emulator/index.js";
import { EXIT_OK, runCli } from "../cli.js";

interface SliceList {
  items: { spec: { devices: { attributes: Record<string, { string?: string }> }[] } }[];
}

/*
 * `discover` asks the kernel's devlink for each PF's e-switch mode (iproute2's `devlink`,
 * found on PATH). The emulated x710 host has no devlink instance anywhere, so a stand-in
 * `devlink` on PATH plays the kernel's answers, as iproute2 prints them (pkg/host/devlink.ts).
 */
describe("discover: e-switch modes from devlink", () => {
  let root: string;
  let bin: string;
  const savedPath = process.env["PATH"];

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "discover-devlink-"));
    await buildEmulatedHost({ root: path.join(root, "host"), profile: builtinProfiles.x710 });
    bin = path.join(root, "bin");
    fs.mkdirSync(bin);
    // The first PF has a devlink instance in switchdev; the kernel knows no other.
    fs.writeFileSync(
      path.join(bin, "devlink"),
      [
        "#!/bin/sh",
        `if [ "$*" = "-j dev eswitch show pci/0000:3b:00.0" ]; then`,
        `  echo '{"dev":{"pci/0000:3b:00.0":{"mode":"switchdev"}}}'; exit 0`,
        "fi",
        `echo '{"dev":{}}'; echo 'kernel answers: No such device' >&2; exit 1`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
  });
  afterEach(() => {
    process.env["PATH"] = savedPath;
    vi.restoreAllMocks();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  /** `discover -o json`: each PF's EswitchMode as its VFs publish it, and what it logged. */
  async function discover(): Promise<{ modes: Record<string, string>; logged: string }> {
    let logged = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      logged += chunk.toString();
      return true;
    });
    const out = new PassThrough();
    let printed = "";
    out.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const argv = ["discover", "-o", "json", "--host-root", path.join(root, "host")];
    expect(await runCli([...argv, "--log-level", "warn"], {}, out, new PassThrough())).toBe(
      EXIT_OK,
    );
    const modes: Record<string, string> = {};
    for (const device of (JSON.parse(printed) as SliceList).items.flatMap((s) => s.spec.devices)) {
      const attribute = (name: string) =>
        device.attributes[`sriovnetwork.openshift.io/${name}`]?.string ?? "";
      modes[attribute("pfPciAddress")] = attribute("EswitchMode");
    }
    return { modes, logged };
  }

  it("publishes the mode devlink reports, and legacy where the kernel has no instance", async () => {
    process.env["PATH"] = `${bin}:${savedPath ?? ""}`;
    const { modes, logged } = await discover();
    expect(modes).toEqual({ "0000:3b:00.0": "switchdev", "0000:3b:00.1": "legacy" });
    expect(logged).toBe("");
  });

  it("without devlink: the fallback (legacy for the x710) and one warning naming what to install", async () => {
    process.env["PATH"] = path.join(root, "host");
    const { modes, logged } = await discover();
    expect(modes).toEqual({ "0000:3b:00.0": "legacy", "0000:3b:00.1": "legacy" });
    expect(logged.match(/cannot ask devlink/g)).toHaveLength(1);
    expect(logged).toContain("apt-get install iproute2");
  });
});
