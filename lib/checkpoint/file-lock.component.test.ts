import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InterProcessLock } from "./file-lock.js";

describe("InterProcessLock", () => {
  let dir: string;
  let lockPath: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lock-"));
    lockPath = path.join(dir, "plugin", "checkpoint.lock");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("lets one holder in at a time, across instances as across processes", async () => {
    const events: string[] = [];
    const first = new InterProcessLock(lockPath);
    const second = new InterProcessLock(lockPath, {
      onWaiting: () => events.push("second waits"),
    });
    let release!: () => void;
    const held = first.run(async () => {
      events.push("first in");
      await new Promise<void>((resolve) => (release = resolve));
      events.push("first out");
    });
    await waitUntil(() => events.includes("first in"));
    const waiting = second.run(async () => {
      events.push("second in");
    });
    // The second instance found the lock held and polls.
    await waitUntil(() => events.includes("second waits"));
    release();
    await Promise.all([held, waiting]);
    expect(events).toEqual(["first in", "second waits", "first out", "second in"]);
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("queues calls of one instance and releases the lock when work throws", async () => {
    const lock = new InterProcessLock(lockPath);
    const order: number[] = [];
    const failing = lock.run(async () => {
      order.push(1);
      throw new Error("boom");
    });
    const next = lock.run(async () => {
      order.push(2);
      return "done";
    });
    await expect(failing).rejects.toThrow("boom");
    await expect(next).resolves.toBe("done");
    expect(order).toEqual([1, 2]);
  });

  it("takes over a lock whose holder died", async () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    // A holder killed while listening leaves the socket file behind.
    const holder = spawn(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(lockPath)}, () => console.log("listening"))`,
    ]);
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
    expect(fs.existsSync(lockPath)).toBe(true);
    await expect(new InterProcessLock(lockPath).run(async () => "mine")).resolves.toBe("mine");
  });

  it("gives up with a message naming the lock when the holder never lets go", async () => {
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    const holder = new InterProcessLock(lockPath);
    let release!: () => void;
    const held = holder.run(() => new Promise<void>((resolve) => (release = resolve)));
    await waitUntil(() => fs.existsSync(lockPath));
    await expect(
      new InterProcessLock(lockPath, { timeoutMs: 30 }).run(async () => undefined),
    ).rejects.toThrow(`another process has held the lock ${lockPath}`);
    release();
    await held;
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}
