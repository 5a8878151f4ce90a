import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { devlinkEswitchReader, readEswitchMode, runDevlink } from "./devlink.js";

/*
 * The devlink tool's edge: a stand-in `devlink` script (what the real one prints is in
 * devlink.test.ts and the real-kernel tier) run as the reader runs the real one.
 */
describe("readEswitchMode through a devlink executable", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "devlink-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A `devlink` that records its argv and locale, then runs `body`. */
  const fakeDevlink = (body: string) => {
    const file = path.join(dir, "devlink");
    fs.writeFileSync(
      file,
      `#!/bin/sh\nprintf '%s\\n' "$@" "LC_ALL=$LC_ALL" > ${JSON.stringify(path.join(dir, "argv"))}\n${body}\n`,
      { mode: 0o755 },
    );
    return file;
  };
  const argv = () => fs.readFileSync(path.join(dir, "argv"), "utf8").trim().split("\n");

  it("runs devlink -j dev eswitch show <handle> in the C locale and reads its answer", async () => {
    const binary = fakeDevlink(`echo '{"dev":{"pci/0000:3b:00.0":{"mode":"switchdev"}}}'`);
    expect(await readEswitchMode("pci/0000:3b:00.0", { binary })).toEqual({
      kind: "mode",
      mode: "switchdev",
    });
    expect(argv()).toEqual(["-j", "dev", "eswitch", "show", "pci/0000:3b:00.0", "LC_ALL=C"]);
  });

  it("passes the exit status and both outputs on", async () => {
    const binary = fakeDevlink(
      `echo '{"dev":{}}'; echo 'kernel answers: No such device' >&2; exit 1`,
    );
    expect(await runDevlink(["-j", "dev", "show"], { binary })).toEqual({
      kind: "exited",
      code: 1,
      stdout: '{"dev":{}}\n',
      stderr: "kernel answers: No such device\n",
    });
    expect(await readEswitchMode("pci/0000:3b:00.0", { binary })).toEqual({ kind: "no-eswitch" });
  });

  it("tells a missing devlink, a hung one and one that floods its output apart", async () => {
    expect(await runDevlink(["-V"], { binary: path.join(dir, "absent") })).toEqual({
      kind: "not-installed",
    });
    const hung = fakeDevlink("exec sleep 30");
    expect(await runDevlink(["-V"], { binary: hung, timeoutMs: 200 })).toEqual({
      kind: "failed",
      reason: "devlink did not answer in time: killed",
    });
    const flood = fakeDevlink("exec yes");
    expect(await runDevlink(["-V"], { binary: flood })).toEqual({
      kind: "failed",
      reason: "devlink printed more than 65536 bytes",
    });
  });

  it("never runs devlink for what is not a handle", async () => {
    const binary = fakeDevlink("echo ran");
    await expect(readEswitchMode("-p", { binary })).rejects.toThrow(/not a devlink handle/);
    expect(fs.existsSync(path.join(dir, "argv"))).toBe(false);
  });

  it("warns once, with what to install, when devlink is missing", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const binary = path.join(dir, "absent");
    const read = devlinkEswitchReader(logger, (handle) => readEswitchMode(handle, { binary }));
    for (const handle of ["pci/0000:3b:00.0", "pci/0000:3b:00.1"]) {
      expect((await read(handle)).kind).toBe("unavailable");
    }
    expect(lines).toHaveLength(1);
    const warning = JSON.parse(lines[0]!) as { msg: string; reason: string };
    expect(warning.msg).toMatch(/compat\/devlink\/mode .* else legacy/);
    expect(warning.reason).toMatch(/apt-get install iproute2/);
  });
});
