import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ATTRIBUTE_BYTES, readAttribute } from "./sysfs.js";

describe("readAttribute", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sysfs-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads a regular file, trimmed; a missing one is undefined", () => {
    fs.writeFileSync(path.join(dir, "vendor"), "0x8086\n");
    expect(readAttribute(path.join(dir, "vendor"))).toBe("0x8086");
    expect(readAttribute(path.join(dir, "absent"))).toBeUndefined();
  });

  it("refuses what is no regular file, without blocking on it, naming the path", () => {
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const zero = path.join(dir, "zero");
    fs.symlinkSync("/dev/zero", zero);
    const sub = path.join(dir, "sub");
    fs.mkdirSync(sub);
    for (const file of [fifo, zero, sub]) {
      expect(() => readAttribute(file)).toThrow(`${file} is not a regular file`);
    }
  });

  it("refuses a file larger than any attribute, naming the path", () => {
    const big = path.join(dir, "big");
    fs.writeFileSync(big, "x".repeat(MAX_ATTRIBUTE_BYTES + 1));
    expect(() => readAttribute(big)).toThrow(
      `${big} is larger than ${MAX_ATTRIBUTE_BYTES} bytes: not a sysfs attribute`,
    );
    fs.writeFileSync(big, "x".repeat(MAX_ATTRIBUTE_BYTES));
    expect(readAttribute(big)).toHaveLength(MAX_ATTRIBUTE_BYTES);
  });
});
