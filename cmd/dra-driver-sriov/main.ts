#!/usr/bin/env node
// tsyringe needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { runCli } from "./cli.js";

const code = await runCli(process.argv.slice(2), process.env, process.stdout, process.stderr);
// Exit even when a command failed half-way with servers or timers still open: a daemon that
// cannot start must not linger registered and half-working.
process.exit(code);
