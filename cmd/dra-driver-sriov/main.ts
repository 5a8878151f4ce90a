#!/usr/bin/env node
// tsyringe needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { runCli } from "./cli.js";

const code = await runCli(process.argv.slice(2), process.env, process.stdout, process.stderr);
// What a command printed may still be queued for a pipe (written asynchronously); exiting
// now would cut it. A reader that went away (EPIPE) ends the wait too.
await Promise.all(
  [process.stdout, process.stderr].map(
    (stream) => new Promise<void>((resolve) => stream.write("", () => resolve())),
  ),
);
// Exit even when a command failed half-way with servers or timers still open: a daemon that
// cannot start must not linger registered and half-working.
process.exit(code);
