import fs from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import { describe, expect, it } from "vitest";
import { envName } from "../../lib/flags/flags.js";
import {
  cliCommands,
  FLAGS_REFERENCE_PATH,
  flagsReference,
  listedCommands,
  renderFlagsReference,
} from "./flags-reference.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const REGENERATE =
  "tsc -p tsconfig.build.json && node dist/cmd/dra-driver-sriov/flags-reference.js --write";

describe("docs/reference/flags.md", () => {
  it("is checked in as generated from the flag definitions", () => {
    const checkedIn = fs.readFileSync(`${REPO_ROOT}/${FLAGS_REFERENCE_PATH}`, "utf8");
    expect(checkedIn, `${FLAGS_REFERENCE_PATH} is stale: run ${REGENERATE}`).toBe(flagsReference());
  });

  it("is formatted as Prettier formats it", async () => {
    const contents = flagsReference();
    expect(await format(contents, { parser: "markdown", printWidth: 100 })).toBe(contents);
  });

  it("covers every command the CLI lists, in its order", () => {
    const listed = listedCommands().map((command) => command.name);
    expect(listed).toEqual(["kubelet-plugin", "discover", "emulate", "controller", "migrate"]);
    expect(cliCommands().map((command) => command.name)).toEqual(listed);
  });

  it("has a row per flag with its environment variable", () => {
    const contents = flagsReference();
    for (const command of cliCommands()) {
      const section = contents.split(`## ${command.name}\n`)[1]!.split("\n## ")[0]!;
      for (const name of Object.keys(command.flags)) {
        expect(section).toMatch(new RegExp(`^\\| \`--${name}\`.*\\| \`${envName(name)}\` `, "m"));
      }
    }
  });

  it("does not depend on the machine it is rendered on", () => {
    const contents = flagsReference();
    expect(contents).not.toContain(`\`${os.hostname()}\``);
    expect(contents).toMatch(/^\| `--node-name` .*\| the host name /m);
  });

  it("renders types, choices, required flags and defaults", () => {
    const contents = renderFlagsReference(
      [
        {
          name: "demo",
          summary: "show the rendering",
          flags: {
            root: { type: "string", description: "a directory", required: true },
            output: {
              type: "string",
              short: "o",
              description: "output | format",
              default: "table",
              choices: ["json", "table"],
            },
            count: { type: "integer", description: "how many", default: 3 },
            verbose: { type: "boolean", description: "say more", default: false },
            name: { type: "string", description: "a name" },
            host: { type: "string", description: "where", default: "machine-7" },
          },
        },
      ],
      { machineDefaults: new Map([["machine-7", "the host name"]]) },
    );
    expect(contents).toContain("## demo\n\nShow the rendering.\n");
    const row = (flag: string) =>
      contents.split("\n").find((line) => line.startsWith(`| \`--${flag}\``));
    expect(row("root")).toMatch(/\| `ROOT` +\| string +\| required +\| a directory +\|$/);
    expect(row("output")).toMatch(
      /^\| `--output` \(`-o`\) +\| `OUTPUT` +\| `json`, `table` \| `table` +\| output \\\| format \|$/,
    );
    expect(row("count")).toMatch(/\| integer +\| `3` +\|/);
    expect(row("verbose")).toMatch(/\| boolean +\| `false` +\|/);
    expect(row("name")).toMatch(/\| string +\| none +\|/);
    expect(row("host")).toMatch(/\| string +\| the host name \|/);
  });
});
