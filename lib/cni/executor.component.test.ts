import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JsonObject } from "../util/json.js";
import type { CniConfigList } from "./config.js";
import { CniErrorCode } from "./errors.js";
import { CniExecutor, type CniExecutorOptions } from "./executor.js";
import type { CniRuntime } from "./invocation.js";
import { failure } from "./testing/cni-error.js";

// A plugin that hangs, and has started a child that hangs too (as a plugin waiting on its
// IPAM plugin would); sh, so it is running long before any timeout.
const SLEEPER_PLUGIN = `#!/bin/sh
echo $$ > "$FAKE_LOG.pids"
sleep 600 &
echo $! >> "$FAKE_LOG.pids"
wait
`;

// A scripted plugin: logs every call (CNI_* env and stdin) to $FAKE_LOG, then does what the
// `fake` key of its configuration says for the command, else the default: ADD prints the
// previous result (or a fresh one) with its own name appended to dns.search.
const FAKE_PLUGIN = `#!/usr/bin/env python3
import json, os, sys, time
command = os.environ.get("CNI_COMMAND")
me = os.path.basename(sys.argv[0])
raw = sys.stdin.read()
config = json.loads(raw) if raw.strip() else {}
def log(entry):
    with open(os.environ["FAKE_LOG"], "a") as out:
        out.write(json.dumps(entry) + "\\n")
log({"plugin": me, "pid": os.getpid(), "config": config,
     "env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")}})
if command == "VERSION":
    print(json.dumps({"cniVersion": config.get("cniVersion", "1.0.0"),
                      "supportedVersions": ["0.3.1", "0.4.0", "1.0.0"]}))
    sys.exit(0)
action = config.get("fake", {}).get(command, {})
while "gate" in action and not os.path.exists(action["gate"]):
    time.sleep(0.01)
sys.stderr.write(action.get("stderr", ""))
if "print" in action:
    sys.stdout.write(action["print"])
    sys.exit(action.get("exit", 0))
if "spam" in action:
    sys.stdout.write("x" * action["spam"])
    sys.exit(0)
if "error" in action:
    print(json.dumps(action["error"]))
    sys.exit(1)
if "exit" in action:
    sys.exit(action["exit"])
if command == "ADD":
    prev = config.get("prevResult") or {
        "cniVersion": config["cniVersion"],
        "interfaces": [{"name": os.environ["CNI_IFNAME"], "mac": "02:00:00:00:00:01",
                        "sandbox": os.environ.get("CNI_NETNS", "")}],
        "ips": [dict({"address": "10.0.0.5/24", "interface": 0},
                     **({"version": "4"} if config["cniVersion"].startswith("0.") else {}))],
        "dns": {"search": []}}
    prev["dns"] = {"search": prev.get("dns", {}).get("search", []) + [me]}
    print(json.dumps(prev))
`;

interface LoggedCall {
  plugin: string;
  pid: number;
  config: JsonObject;
  env: Record<string, string>;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

interface Fixture {
  executor: CniExecutor;
  dir: string;
  pluginDir: string;
  cacheDir: string;
  netns: string;
  /** Plugin calls so far. */
  calls: () => LoggedCall[];
  /** Process IDs of the sleeper plugin and its child, once it wrote them. */
  sleeperPids: () => number[];
  warnings: string[];
}

function fixture(options: Partial<CniExecutorOptions> = {}): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cni-executor-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pluginDir = path.join(dir, "bin");
  const emptyDir = path.join(dir, "empty");
  fs.mkdirSync(pluginDir);
  fs.mkdirSync(emptyDir);
  fs.writeFileSync(path.join(pluginDir, "fake"), FAKE_PLUGIN, { mode: 0o755 });
  fs.writeFileSync(path.join(pluginDir, "sleeper"), SLEEPER_PLUGIN, { mode: 0o755 });
  for (const name of ["fake-a", "fake-b", "fake-c"]) {
    fs.symlinkSync("fake", path.join(pluginDir, name));
  }
  // Looks like a plugin but cannot be run: the lookup goes on to the next directory.
  fs.writeFileSync(path.join(emptyDir, "fake-a"), "", { mode: 0o644 });
  // Any existing file stands in for the network namespace; the fake plugins never enter it.
  const netns = path.join(dir, "netns");
  fs.writeFileSync(netns, "");
  const log = path.join(dir, "calls.jsonl");
  const warnings: string[] = [];
  const logger = pino(
    { level: "warn" },
    { write: (line: string) => void warnings.push(JSON.parse(line).msg as string) },
  );
  const cacheDir = path.join(dir, "cache");
  const executor = new CniExecutor({
    pluginDirs: [emptyDir, pluginDir],
    cacheDir,
    timeoutMs: 10_000,
    logger,
    env: { PATH: process.env["PATH"], FAKE_LOG: log },
    ...options,
  });
  const lines = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
  return {
    executor,
    dir,
    pluginDir,
    cacheDir,
    netns,
    warnings,
    calls: () => lines(log).map((line) => JSON.parse(line) as LoggedCall),
    sleeperPids: () => lines(`${log}.pids`).map(Number),
  };
}

function runtimeOf(fx: Fixture, overrides: Partial<CniRuntime> = {}): CniRuntime {
  return {
    containerId: "pod-uid-1",
    netns: fx.netns,
    ifName: "net1",
    args: { K8S_POD_NAMESPACE: "ns", K8S_POD_NAME: "pod" },
    ...overrides,
  };
}

function list(plugins: JsonObject[], cniVersion = "1.0.0", extra: JsonObject = {}): CniConfigList {
  return { cniVersion, name: "vf-net", ...extra, plugins };
}

const summary = (calls: LoggedCall[]) =>
  calls.map((call) => `${call.env["CNI_COMMAND"]} ${call.plugin}`);

function alive(pid: number): boolean {
  try {
    // Field 3 of stat is the state; a zombie has finished.
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

describe("CniExecutor with scripted plugins", () => {
  it("ADD runs the list in order, chaining results, and caches the final one", async () => {
    const fx = fixture();
    const config = list([
      { type: "fake-a", deviceID: "0000:3b:02.1" },
      { type: "fake-b", capabilities: { mac: true } },
    ]);
    const runtime = runtimeOf(fx, { capabilityArgs: { mac: "02:00:00:00:00:09", ips: ["x"] } });

    const result = await fx.executor.add(config, runtime);

    expect(result).toEqual({
      cniVersion: "1.0.0",
      interfaces: [{ name: "net1", mac: "02:00:00:00:00:01", sandbox: fx.netns }],
      ips: [{ address: "10.0.0.5/24", interface: 0 }],
      dns: { search: ["fake-a", "fake-b"] },
    });
    const [first, second] = fx.calls();
    expect(summary(fx.calls())).toEqual(["ADD fake-a", "ADD fake-b"]);
    expect(first!.env).toEqual({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "pod-uid-1",
      CNI_NETNS: fx.netns,
      CNI_IFNAME: "net1",
      CNI_ARGS: "IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod",
      CNI_PATH: `${path.join(fx.dir, "empty")}:${fx.pluginDir}`,
    });
    expect(first!.config).toEqual({
      cniVersion: "1.0.0",
      name: "vf-net",
      type: "fake-a",
      deviceID: "0000:3b:02.1",
    });
    expect(second!.config).toEqual({
      cniVersion: "1.0.0",
      name: "vf-net",
      type: "fake-b",
      runtimeConfig: { mac: "02:00:00:00:00:09" },
      prevResult: { ...result, dns: { search: ["fake-a"] } },
    });
    expect(fs.readdirSync(path.join(fx.cacheDir, "results"))).toEqual(["vf-net-pod-uid-1-net1"]);
  });

  it("CHECK runs in order and DEL in reverse order, both with the cached result; DEL again has none", async () => {
    const fx = fixture();
    const config = list([{ type: "fake-a" }, { type: "fake-b" }]);
    const runtime = runtimeOf(fx);
    const result = await fx.executor.add(config, runtime);
    const calls = () => fx.calls().slice(2);

    await fx.executor.check(config, runtime);
    await fx.executor.del(config, runtime);
    expect(summary(calls())).toEqual(["CHECK fake-a", "CHECK fake-b", "DEL fake-b", "DEL fake-a"]);
    for (const call of calls()) expect(call.config["prevResult"]).toEqual(result);
    expect(fs.readdirSync(path.join(fx.cacheDir, "results"))).toEqual([]);

    await fx.executor.del(config, runtime);
    expect(summary(calls().slice(4))).toEqual(["DEL fake-b", "DEL fake-a"]);
    for (const call of calls().slice(4)) expect(call.config).not.toHaveProperty("prevResult");
  });

  it("hands 0.4.0 plugins prevResult with ips[].version and callers a result without", async () => {
    const fx = fixture();
    const config = list([{ type: "fake-a" }, { type: "fake-b" }], "0.4.0");
    const runtime = runtimeOf(fx);
    const result = await fx.executor.add(config, runtime);
    expect(result.ips).toEqual([{ address: "10.0.0.5/24", interface: 0 }]);
    await fx.executor.del(config, runtime);
    const prevResults = fx.calls().flatMap((call) => call.config["prevResult"] ?? []);
    expect(prevResults).toHaveLength(3);
    for (const prev of prevResults) {
      expect(prev).toMatchObject({
        cniVersion: "0.4.0",
        ips: [{ version: "4", address: "10.0.0.5/24", interface: 0 }],
      });
    }
  });

  it("gives 0.3.x plugins no prevResult on DEL and refuses CHECK before running anything", async () => {
    const fx = fixture();
    const config = list([{ type: "fake-a" }], "0.3.1");
    const runtime = runtimeOf(fx);
    await fx.executor.add(config, runtime);
    const check = await failure(fx.executor.check(config, runtime));
    expect(check.code).toBe(CniErrorCode.INCOMPATIBLE_VERSION);
    expect(check.message).toBe(
      'CNI CHECK for network "vf-net" failed (code 1): CHECK needs cniVersion 0.4.0 or later, the configuration has 0.3.1: raise cniVersion in the network\'s CNI configuration, or do not CHECK it',
    );
    await fx.executor.del(config, runtime);
    expect(summary(fx.calls())).toEqual(["ADD fake-a", "DEL fake-a"]);
    expect(fx.calls()[1]!.config).not.toHaveProperty("prevResult");
  });

  it("CHECK does nothing with disableCheck and fails without a previous ADD", async () => {
    const fx = fixture();
    const runtime = runtimeOf(fx);
    await fx.executor.check(list([{ type: "fake-a" }], "1.0.0", { disableCheck: true }), runtime);
    const error = await failure(fx.executor.check(list([{ type: "fake-a" }]), runtime));
    expect(error.code).toBe(CniErrorCode.INVALID_REQUEST);
    expect(error.message).toMatch(/no cached ADD result for container pod-uid-1 interface net1/);
    expect(fx.calls()).toEqual([]);
  });

  it("surfaces a plugin's error with its code, msg and details, and stops the list there", async () => {
    const fx = fixture();
    const config = list([
      {
        type: "fake-a",
        fake: {
          ADD: {
            error: { cniVersion: "1.0.0", code: 7, msg: "Invalid Configuration", details: "no VF" },
            stderr: "plugin log line\n",
          },
        },
      },
      { type: "fake-b" },
    ]);
    const error = await failure(fx.executor.add(config, runtimeOf(fx)));
    expect(error).toMatchObject({
      code: 7,
      plugin: "fake-a",
      command: "ADD",
      network: "vf-net",
      msg: "Invalid Configuration",
      details: "no VF",
    });
    expect(error.message).toBe(
      'CNI plugin "fake-a" ADD for network "vf-net" failed (code 7): Invalid Configuration: no VF',
    );
    expect(summary(fx.calls())).toEqual(["ADD fake-a"]);
    expect(fx.warnings).toEqual([error.message]);
    expect(fs.existsSync(path.join(fx.cacheDir, "results", "vf-net-pod-uid-1-net1"))).toBe(false);
  });

  it("adds the versions a plugin supports to an incompatible-version error", async () => {
    const fx = fixture();
    const config = list([
      { type: "fake-a", fake: { ADD: { error: { code: 1, msg: "incompatible CNI versions" } } } },
    ]);
    const error = await failure(fx.executor.add(config, runtimeOf(fx)));
    expect(error.details).toBe("the plugin supports cniVersion 0.3.1, 0.4.0, 1.0.0");
    expect(fx.calls()[1]!.env).toEqual({ CNI_COMMAND: "VERSION", CNI_PATH: expect.any(String) });
  });

  it("names the plugin type and the directories searched when a binary is missing, before running any", async () => {
    const fx = fixture();
    const error = await failure(
      fx.executor.add(list([{ type: "fake-a" }, { type: "sriov" }]), runtimeOf(fx)),
    );
    expect(error.code).toBe(CniErrorCode.PLUGIN_NOT_FOUND);
    expect(error.plugin).toBe("sriov");
    expect(error.message).toBe(
      `CNI plugin "sriov" ADD for network "vf-net" failed: plugin binary not found in ${path.join(fx.dir, "empty")}, ${fx.pluginDir}: install the "sriov" CNI plugin there, or fix plugins[1].type of the network's CNI configuration`,
    );
    expect(fx.calls()).toEqual([]);
  });

  it("kills a plugin that runs past the timeout, and what it started", async () => {
    const fx = fixture({ timeoutMs: 1000 });
    const error = await failure(fx.executor.add(list([{ type: "sleeper" }]), runtimeOf(fx)));
    expect(error.code).toBe(CniErrorCode.TIMEOUT);
    expect(error.message).toBe(
      'CNI plugin "sleeper" ADD for network "vf-net" failed: no answer within 1000 ms; the plugin and what it started were killed: look for what it waits on (host, IPAM) and raise the CNI timeout if the host is just slow',
    );
    const pids = fx.sleeperPids();
    expect(pids).toHaveLength(2);
    await vi.waitFor(() => expect(pids.filter(alive)).toEqual([]));
  });

  it("refuses output that is too large, not JSON or not a result", async () => {
    const fx = fixture({ maxOutputBytes: 1000 });
    const add = (action: JsonObject) =>
      failure(fx.executor.add(list([{ type: "fake-a", fake: { ADD: action } }]), runtimeOf(fx)));
    const big = await add({ spam: 100_000 });
    expect(big.code).toBe(CniErrorCode.BAD_OUTPUT);
    expect(big.msg).toBe("printed more than 1000 bytes on stdout and was killed");
    expect((await add({ print: "" })).msg).toBe("printed an invalid result: not JSON (empty)");
    expect((await add({ print: "hello" })).msg).toMatch(/^printed an invalid result: not JSON/);
    expect((await add({ print: '{"ips":[{"address":"10.0.0.5"}]}' })).msg).toBe(
      'printed an invalid result: ips[0].address "10.0.0.5" is not an IP address in CIDR',
    );
  });

  it("reports a plugin that dies without a CNI error by how it ended and what it said", async () => {
    const fx = fixture();
    const config = list([
      { type: "fake-a", fake: { ADD: { exit: 3, stderr: "panic: runtime error\n" } } },
    ]);
    const error = await failure(fx.executor.add(config, runtimeOf(fx)));
    expect(error.code).toBe(CniErrorCode.EXEC_FAILED);
    expect(error.msg).toBe(
      "exited with status 3 without a CNI error result; its output ends: panic: runtime error",
    );
  });

  it("leaves a failed ADD's partial work to the caller's DEL, which undoes the whole list", async () => {
    const fx = fixture();
    const config = list([
      { type: "fake-a" },
      { type: "fake-b", fake: { ADD: { error: { code: 100, msg: "bad mac" } } } },
    ]);
    const runtime = runtimeOf(fx);
    const error = await failure(fx.executor.add(config, runtime));
    expect(error).toMatchObject({ command: "ADD", plugin: "fake-b", msg: "bad mac" });
    // Nothing cached: there is no result for a later DEL to hand on.
    expect(fs.existsSync(path.join(fx.cacheDir, "results"))).toBe(false);
    await fx.executor.del(config, runtime);
    expect(summary(fx.calls())).toEqual(["ADD fake-a", "ADD fake-b", "DEL fake-b", "DEL fake-a"]);
  });

  it("DEL leaves CNI_NETNS out once the network namespace is gone", async () => {
    const fx = fixture();
    const config = list([{ type: "fake-a" }]);
    await fx.executor.add(config, runtimeOf(fx));
    fs.rmSync(fx.netns);
    await fx.executor.del(config, runtimeOf(fx));
    const del = fx.calls()[1]!;
    expect(del.env["CNI_COMMAND"]).toBe("DEL");
    expect(del.env).not.toHaveProperty("CNI_NETNS");
    expect(del.config["prevResult"]).toBeDefined();
  });

  it("DEL ignores an unreadable cache entry, with a warning, and removes it", async () => {
    const fx = fixture();
    const file = path.join(fx.cacheDir, "results", "vf-net-pod-uid-1-net1");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "{ half a file");
    await fx.executor.del(list([{ type: "fake-a" }]), runtimeOf(fx));
    expect(fx.calls()[0]!.config).not.toHaveProperty("prevResult");
    expect(fx.warnings[0]).toMatch(/^ignoring unreadable CNI result cache entry: not JSON/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it("refuses a bad request without running anything", async () => {
    const fx = fixture();
    const error = await failure(
      fx.executor.add(list([{ type: "fake-a" }]), runtimeOf(fx, { ifName: "a-very-long-ifname" })),
    );
    expect(error.code).toBe(CniErrorCode.INVALID_REQUEST);
    expect(error.message).toMatch(/the interface name "a-very-long-ifname" is not valid/);
    const old = await failure(fx.executor.del(list([{ type: "fake-a" }], "0.2.0"), runtimeOf(fx)));
    expect(old.code).toBe(CniErrorCode.INCOMPATIBLE_VERSION);
    expect(fx.calls()).toEqual([]);
  });

  it("runs operations on one attachment one after another, others alongside", async () => {
    const fx = fixture();
    const gate = path.join(fx.dir, "gate");
    const held = list([{ type: "fake-a", fake: { ADD: { gate } } }, { type: "fake-b" }]);
    const runtime = runtimeOf(fx);
    const add = fx.executor.add(held, runtime);
    const del = fx.executor.del(held, runtime);
    // Another attachment does not wait for the held ADD.
    await fx.executor.add(list([{ type: "fake-c" }]), { ...runtime, ifName: "net2" });
    fs.writeFileSync(gate, "");
    await Promise.all([add, del]);
    const ours = summary(fx.calls().filter((call) => call.env["CNI_IFNAME"] === "net1"));
    expect(ours).toEqual(["ADD fake-a", "ADD fake-b", "DEL fake-b", "DEL fake-a"]);
  });
});
