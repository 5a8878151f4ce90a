import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetnsHolds } from "./netns-holds.js";

describe("NetnsHolds", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "netns-holds-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("refuses a netns path that is a FIFO, a directory or a device, without blocking", () => {
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const holds = new NetnsHolds();
    for (const netns of [fifo, dir, "/dev/null"]) {
      expect(() => holds.hold("sandbox", netns)).toThrow(`${netns} is not a network namespace`);
      expect(holds.pathOf("sandbox")).toBeUndefined();
    }
  });

  it("holds a namespace file and gives it back", () => {
    const netns = path.join(dir, "netns");
    fs.writeFileSync(netns, "");
    const holds = new NetnsHolds();
    holds.hold("sandbox", netns);
    expect(fs.readlinkSync(holds.pathOf("sandbox")!)).toBe(netns);
    holds.release("sandbox");
    expect(holds.pathOf("sandbox")).toBeUndefined();
  });
});
