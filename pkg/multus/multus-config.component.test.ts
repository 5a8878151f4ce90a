import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findMultusConfig } from "./multus-config.js";

describe("findMultusConfig (a node's CNI conf dir)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cni-conf-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("finds nothing beside the cluster network, nor in a missing directory", () => {
    fs.writeFileSync(
      path.join(dir, "10-bridge.conflist"),
      '{"name":"cbr0","plugins":[{"type":"bridge"}]}',
    );
    fs.writeFileSync(path.join(dir, "README"), "multus");
    expect(findMultusConfig(dir)).toBeUndefined();
    expect(findMultusConfig(path.join(dir, "absent"))).toBeUndefined();
  });

  it("finds Multus by file name, or by plugin type under another name", () => {
    fs.writeFileSync(
      path.join(dir, "10-bridge.conflist"),
      '{"name":"cbr0","plugins":[{"type":"bridge"}]}',
    );
    fs.writeFileSync(path.join(dir, "05-cluster.conf"), '{"name":"m","type":"multus-shim"}');
    expect(findMultusConfig(dir)).toBe(path.join(dir, "05-cluster.conf"));
    fs.writeFileSync(path.join(dir, "00-multus.conf"), "{}");
    expect(findMultusConfig(dir)).toBe(path.join(dir, "00-multus.conf"));
  });

  it("passes over a directory named like a configuration", () => {
    fs.mkdirSync(path.join(dir, "dir.conf"));
    expect(findMultusConfig(dir)).toBeUndefined();
  });
});
