import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointStore } from "./checkpoint.js";

interface Entry {
  state: string;
  devices: string[];
}

describe("CheckpointStore", () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "checkpoint-"));
    file = path.join(dir, "plugin", "checkpoint.json");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("starts empty when there is no file", () => {
    expect(new CheckpointStore<Entry>(file, "boot-1").load()).toEqual({
      entries: new Map(),
      fromPreviousBoot: false,
    });
  });

  it("round-trips entries, with a private file mode and no temp file left", async () => {
    const store = new CheckpointStore<Entry>(file, "boot-1");
    const entries = new Map([["uid-1", { state: "PrepareCompleted", devices: ["0000-3b-02-0"] }]]);
    await store.save(entries);
    expect(store.load()).toEqual({ entries, fromPreviousBoot: false });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file))).toEqual(["checkpoint.json"]);
  });

  it("reads a file written by an earlier release (indented JSON, the same checksum)", () => {
    const entries = { u: { state: "PrepareCompleted", devices: ["0000-3b-02-0"] } };
    const body = { version: 1, bootId: "boot-1", entries };
    const checksum = createHash("sha256").update(JSON.stringify(body)).digest("hex");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ ...body, checksum }, null, 1));
    expect(new CheckpointStore<Entry>(file, "boot-1").load()).toEqual({
      entries: new Map(Object.entries(entries)),
      fromPreviousBoot: false,
    });
  });

  it("tells when the entries come from before a reboot", async () => {
    await new CheckpointStore<Entry>(file, "boot-1").save(
      new Map([["u", { state: "PrepareStarted", devices: [] }]]),
    );
    const loaded = new CheckpointStore<Entry>(file, "boot-2").load();
    expect(loaded.fromPreviousBoot).toBe(true);
    expect([...loaded.entries.keys()]).toEqual(["u"]);
  });

  it.each([
    ["not JSON", () => "{half", /not JSON/],
    [
      "an edited entry",
      (text: string) => text.replace("PrepareCompleted", "PrepareStarted"),
      /checksum mismatch/,
    ],
    [
      "a future version",
      (text: string) => text.replace('"version":1', '"version":9'),
      /unknown checkpoint version 9/,
    ],
  ])("sets aside %s and starts empty", async (_name, corrupt, reason) => {
    const store = new CheckpointStore<Entry>(file, "boot-1");
    await store.save(new Map([["u", { state: "PrepareCompleted", devices: [] }]]));
    fs.writeFileSync(file, corrupt(fs.readFileSync(file, "utf8")));
    const loaded = store.load();
    expect(loaded.entries.size).toBe(0);
    expect(loaded.setAside?.reason).toMatch(reason);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(loaded.setAside!.path)).toBe(true);
  });
});
