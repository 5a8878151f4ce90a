import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { parsePluginArgs, PluginUsageError, runPlugin } from "./cli.js";

describe("parsePluginArgs", () => {
  it("reads the command, a NODE, and kubectl's flags", () => {
    const parsed = parsePluginArgs([
      "nodes",
      "worker-1",
      "-o",
      "wide",
      "--context",
      "prod",
      "--kubeconfig",
      "/k",
    ]);
    expect(parsed.command?.name).toBe("nodes");
    expect(parsed.options).toMatchObject({
      output: "wide",
      args: ["worker-1"],
      namespace: undefined,
    });
    expect(parsed).toMatchObject({ context: "prod", kubeconfig: "/k" });
    expect(parsePluginArgs(["filters", "-n", "team"]).options.namespace).toBe("team");
    expect(parsePluginArgs(["explain", "-f", "claim.yaml", "-o", "text"]).options).toMatchObject({
      filename: "claim.yaml",
      output: "text",
      args: [],
    });
    expect(parsePluginArgs(["explain", "pod", "web-0"]).options.args).toEqual(["pod", "web-0"]);
  });

  it.each([
    [["nodes", "a", "b"], /too many arguments/],
    [["filters", "x"], /too many arguments/],
    [["nodes", "-o", "xml"], /must be one of table, wide, text, json, yaml/],
    [["nodes", "-f", "claim.yaml"], /--filename is a flag of explain/],
    [["explode"], /unknown command "explode"/],
    [["filters", "-n", "a", "-A"], /exclude each other/],
    [["nodes", "--bogus"], /bogus/],
  ])("refuses %j", (argv, message) => {
    expect(() => parsePluginArgs(argv)).toThrow(PluginUsageError);
    expect(() => parsePluginArgs(argv)).toThrow(message);
  });
});

describe("runPlugin", () => {
  const run = async (argv: string[]) => {
    const out = new PassThrough();
    const err = new PassThrough();
    const chunks = { out: "", err: "" };
    out.on("data", (chunk: Buffer) => (chunks.out += chunk.toString()));
    err.on("data", (chunk: Buffer) => (chunks.err += chunk.toString()));
    const code = await runPlugin(argv, out, err, () => {
      throw new Error('context "prod" is not in the kubeconfig');
    });
    return { code, ...chunks };
  };

  it("prints usage for --help (0) and for no command (2)", async () => {
    expect(await run(["--help"])).toMatchObject({
      code: 0,
      out: expect.stringContaining("kubectl sriov"),
    });
    expect(await run([])).toMatchObject({ code: 2, err: expect.stringContaining("nodes [NODE]") });
  });

  it("exits 1 with the message when the kubeconfig cannot be used", async () => {
    expect(await run(["nodes", "--context", "prod"])).toEqual({
      code: 1,
      out: "",
      err: 'error: context "prod" is not in the kubeconfig\n',
    });
  });
});
