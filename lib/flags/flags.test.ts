import { describe, expect, it } from "vitest";
import { envName, formatFlagHelp, parseFlags, UsageError } from "./flags.js";

const specs = {
  "host-root": { type: "string", description: "root", default: "/" },
  "node-name": { type: "string", description: "node", required: true },
  output: {
    type: "string",
    short: "o",
    description: "format",
    default: "table",
    choices: ["json", "table"],
  },
  verbose: { type: "boolean", description: "more", default: false },
  port: { type: "integer", description: "port" },
} as const;

describe("flags", () => {
  it("takes the command line over the environment over the default", () => {
    const fromDefault = parseFlags(specs, ["--node-name", "n1"], {});
    expect(fromDefault["host-root"]).toBe("/");
    const fromEnv = parseFlags(specs, ["--node-name", "n1"], { HOST_ROOT: "/env" });
    expect(fromEnv["host-root"]).toBe("/env");
    const fromArgs = parseFlags(specs, ["--node-name", "n1", "--host-root", "/arg"], {
      HOST_ROOT: "/env",
    });
    expect(fromArgs["host-root"]).toBe("/arg");
  });

  it("reads every type from the environment", () => {
    const parsed = parseFlags(specs, [], {
      NODE_NAME: "n2",
      VERBOSE: "true",
      PORT: "8080",
      OUTPUT: "json",
    });
    expect(parsed).toEqual({
      "host-root": "/",
      "node-name": "n2",
      output: "json",
      verbose: true,
      port: 8080,
    });
  });

  it("turns a boolean that defaults to true off with --no-<flag>", () => {
    const withDefaultOn = { watch: { type: "boolean", description: "w", default: true } } as const;
    expect(parseFlags(withDefaultOn, [], {}).watch).toBe(true);
    expect(parseFlags(withDefaultOn, ["--no-watch"], {}).watch).toBe(false);
    expect(formatFlagHelp(withDefaultOn)).toContain("--[no-]watch");
  });

  it("accepts short flags", () => {
    expect(parseFlags(specs, ["-o", "json", "--node-name", "n"], {}).output).toBe("json");
  });

  it.each([
    [["--node-name", "n", "--output", "xml"], {}, /must be one of: json, table/],
    [["--node-name", "n", "--port", "80x"], {}, /--port="80x" is not an integer/],
    [[], {}, /--node-name is required \(or set NODE_NAME\)/],
    [["--node-name", "n", "--bogus"], {}, /bogus/],
    [["--node-name", "n", "extra"], {}, /extra/],
    [["--node-name", "n"], { VERBOSE: "maybe" }, /VERBOSE="maybe" is not a boolean/],
  ])("refuses %j %j with a usage error", (argv, env, message) => {
    expect(() => parseFlags(specs, argv, env)).toThrow(UsageError);
    expect(() => parseFlags(specs, argv, env)).toThrow(message);
  });

  it("documents flags with their environment variables and defaults", () => {
    const help = formatFlagHelp(specs);
    expect(help).toContain("--host-root <string>");
    expect(help).toContain("env HOST_ROOT, default /");
    expect(help).toContain("-o, --output <json|table>");
    expect(help).toContain("env NODE_NAME, required");
    expect(envName("publish-host-used-vfs")).toBe("PUBLISH_HOST_USED_VFS");
  });
});
