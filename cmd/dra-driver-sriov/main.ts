#!/usr/bin/env node
// tsyringe needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { runCli } from "./cli.js";

process.exitCode = await runCli(process.argv.slice(2), process.env, process.stdout, process.stderr);
