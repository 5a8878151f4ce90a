#!/usr/bin/env node
import { runPlugin } from "./cli.js";

const code = await runPlugin(process.argv.slice(2), process.stdout, process.stderr);
// Let queued output reach a pipe before exiting (a reader that went away ends the wait too).
await Promise.all(
  [process.stdout, process.stderr].map(
    (stream) => new Promise<void>((resolve) => stream.write("", () => resolve())),
  ),
);
process.exit(code);
