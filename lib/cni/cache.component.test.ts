import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CACHE_KIND, ResultCache, type CacheEntry } from "./cache.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function cache(): ResultCache {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cni-cache-"));
  dirs.push(dir);
  return new ResultCache(path.join(dir, "cni"));
}

const entry: CacheEntry = {
  kind: CACHE_KIND,
  networkName: "net",
  containerId: "c1",
  ifName: "net1",
  netns: "/var/run/netns/pod",
  cniArgs: { K8S_POD_NAME: "p" },
  config: { cniVersion: "1.0.0", name: "net", plugins: [{ type: "sriov" }] },
  result: { cniVersion: "1.0.0", interfaces: [{ name: "net1" }] },
};

describe("ResultCache", () => {
  it("writes an entry only its owner can read, reads it back, removes it idempotently", async () => {
    const results = cache();
    expect(await results.read("net-c1-net1")).toEqual({ state: "missing" });
    await results.write("net-c1-net1", entry);
    expect(await results.read("net-c1-net1")).toEqual({ state: "found", entry });
    expect(fs.statSync(results.fileOf("net-c1-net1")).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(results.resultsDir)).toEqual(["net-c1-net1"]);
    await results.remove("net-c1-net1");
    await results.remove("net-c1-net1");
    expect(await results.read("net-c1-net1")).toEqual({ state: "missing" });
  });

  it("replaces an entry whole", async () => {
    const results = cache();
    await results.write("k", entry);
    await results.write("k", { ...entry, result: { cniVersion: "1.0.0" } });
    expect(await results.read("k")).toMatchObject({
      state: "found",
      entry: { result: { cniVersion: "1.0.0" } },
    });
    expect(fs.readdirSync(results.resultsDir)).toEqual(["k"]);
  });

  it("reports a file it cannot use with the reason", async () => {
    const results = cache();
    fs.mkdirSync(results.resultsDir, { recursive: true });
    fs.writeFileSync(results.fileOf("a"), "{");
    fs.writeFileSync(results.fileOf("b"), JSON.stringify({ kind: "cniCacheV1", result: {} }));
    fs.writeFileSync(results.fileOf("c"), JSON.stringify({ ...entry, result: [] }));
    expect(await results.read("a")).toMatchObject({ state: "unreadable", reason: /^not JSON/ });
    expect(await results.read("b")).toEqual({
      state: "unreadable",
      reason: `kind is "cniCacheV1", not ${CACHE_KIND}`,
    });
    expect(await results.read("c")).toEqual({
      state: "unreadable",
      reason: "result is not an object",
    });
  });
});
