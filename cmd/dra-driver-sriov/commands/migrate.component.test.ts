import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli } from "../cli.js";

const TESTDATA = path.resolve(import.meta.dirname, "../../../pkg/migrate/testdata");

async function migrate(...argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: "", err: "" };
  out.on("data", (chunk: Buffer) => (chunks.out += chunk.toString()));
  err.on("data", (chunk: Buffer) => (chunks.err += chunk.toString()));
  const code = await runCli(["migrate", ...argv], {}, out, err);
  return { code, ...chunks };
}

describe("migrate command", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "migrate-cli-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prints one YAML stream, the report as comments, the filter with the node selector", async () => {
    const result = await migrate(
      "--config-file",
      path.join(TESTDATA, "deployments-configMap.yaml"),
      "--node-selector",
      "sriov.example.com/stack=dra, zone=a",
    );
    expect(result.err).toBe("");
    expect(result.code).toBe(EXIT_OK);
    expect(result.out).toMatch(/^# Migrated from the SR-IOV network device plugin/);
    const objects = parseAllDocuments(result.out).map((document) => document.toJS() as object);
    expect(objects.map((object) => (object as { kind: string }).kind)).toEqual([
      "SriovResourceFilter",
      "DeviceClass",
      "DeviceClass",
      "DeviceClass",
      "DeviceClass",
    ]);
    expect(objects[0]).toMatchObject({
      spec: { nodeSelector: { "sriov.example.com/stack": "dra", zone: "a" } },
    });
  });

  it("writes the filter, the classes and the report into a directory", async () => {
    const out = path.join(dir, "per-node");
    const result = await migrate(
      ...["--config-file", path.join(TESTDATA, "config-file-per-node-configMap.yaml")],
      ...["--config-key", "sriov-node-1", "--filter-name", "sriov-node-1", "-o", out],
    );
    expect(result.code).toBe(EXIT_OK);
    expect(fs.readdirSync(out).sort()).toEqual([
      "device-classes.yaml",
      "report.txt",
      "sriov-resource-filter.yaml",
    ]);
    expect(fs.readFileSync(path.join(out, "report.txt"), "utf8")).toBe(result.out);
    expect(parse(fs.readFileSync(path.join(out, "sriov-resource-filter.yaml"), "utf8"))).toEqual({
      apiVersion: "sriovnetwork.openshift.io/v1alpha1",
      kind: "SriovResourceFilter",
      metadata: { name: "sriov-node-1", namespace: "dra-sriov-driver" },
      spec: {
        configs: [
          {
            resourceName: "intel.com_sriovnics",
            resourceFilters: [{ pfNames: ["ens785f0#0-9", "ens785f1#0-4"] }],
          },
        ],
      },
    });
  });

  it.each([
    [[], "give exactly one of --config-file and --configmap"],
    [["--config-file", "a", "--configmap", "ns/b"], "give exactly one of"],
    [
      ["--configmap", "x/y", "--node-selector", "novalue"],
      '--node-selector: "novalue" is not key=value',
    ],
  ])("refuses %j as a usage error", async (argv, message) => {
    const result = await migrate(...argv);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain(message);
  });

  it("fails naming the file and the bad field", async () => {
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(file, '{"resourceList":[{"resourceName":"a","selectors":{"pfNames":"x"}}]}');
    const result = await migrate("--config-file", file);
    expect(result.code).toBe(EXIT_FAILURE);
    expect(result.err).toBe(
      `error: ${file}: resourceList[0] (a).selectors.pfNames: must be a list of strings\n`,
    );
  });
});
