import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PROTO_FILES, findProtoDir, requireProtoFiles } from "./index.js";

const repoProtoDir = import.meta.dirname;
const MARKER = PROTO_FILES.registration;

describe("findProtoDir", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "protos-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("finds api/proto from the source tree", () => {
    expect(findProtoDir(path.join(repoProtoDir, "../../lib/kubeletplugin"), MARKER)).toBe(
      repoProtoDir,
    );
  });

  it("skips a compiled api/proto without .proto files and finds the repository's", () => {
    const compiledModuleDir = path.join(dir, "dist", "pkg", "kubeletplugin");
    fs.mkdirSync(compiledModuleDir, { recursive: true });
    fs.mkdirSync(path.join(dir, "dist", "api", "proto"), { recursive: true });
    fs.cpSync(repoProtoDir, path.join(dir, "api", "proto"), { recursive: true });
    expect(findProtoDir(compiledModuleDir, MARKER)).toBe(path.join(dir, "api", "proto"));
  });

  it("finds api/proto shipped beside a bundle", () => {
    fs.cpSync(repoProtoDir, path.join(dir, "api", "proto"), { recursive: true });
    expect(findProtoDir(dir, MARKER)).toBe(path.join(dir, "api", "proto"));
  });

  it("says what to ship when there is none", () => {
    expect(() => findProtoDir(dir, MARKER)).toThrow(/ship api\/proto\//);
  });

  it("names a missing file", () => {
    expect(() => requireProtoFiles(dir, [MARKER])).toThrow(
      `protocol definition ${path.join(dir, MARKER)} is missing`,
    );
    expect(requireProtoFiles(repoProtoDir, [MARKER])).toEqual([path.join(repoProtoDir, MARKER)]);
  });
});
