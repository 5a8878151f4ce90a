import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code, TtrpcError } from "../ttrpc/index.js";
import type { NriPluginHandlers } from "./connection.js";
import type { PodSandbox } from "./pod.js";
import { startNriPlugin, type NriPlugin, type NriPluginOptions } from "./plugin.js";
import { FakeNriRuntime, wirePod } from "./testing/fake-runtime.js";

interface Call {
  event: "synchronize" | "run" | "stop" | "remove";
  pods: string[];
}

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

async function rejection(promise: Promise<unknown>): Promise<TtrpcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TtrpcError) return error;
    throw error;
  }
  throw new Error("the call succeeded");
}

describe("the NRI plugin against a runtime on its socket", () => {
  let dir: string;
  let socketPath: string;
  let runtime: FakeNriRuntime | undefined;
  let plugin: NriPlugin | undefined;
  let calls: Call[];
  let pods: PodSandbox[];
  let logs: LogLine[];
  /** Overrides of the recording handlers, per test. */
  let handlerOverrides: Partial<NriPluginHandlers>;

  const record = (event: Call["event"], received: PodSandbox[]) => {
    calls.push({ event, pods: received.map((pod) => pod.name) });
    pods.push(...received);
  };

  const handlers: NriPluginHandlers = {
    synchronize: async (received) => {
      record("synchronize", received);
      await handlerOverrides.synchronize?.(received);
    },
    runPodSandbox: async (pod) => {
      record("run", [pod]);
      await handlerOverrides.runPodSandbox?.(pod);
    },
    stopPodSandbox: async (pod) => {
      record("stop", [pod]);
      await handlerOverrides.stopPodSandbox?.(pod);
    },
    removePodSandbox: async (pod) => {
      record("remove", [pod]);
      await handlerOverrides.removePodSandbox?.(pod);
    },
  };

  function start(options: Partial<NriPluginOptions> = {}): NriPlugin {
    plugin = startNriPlugin({
      socketPath,
      pluginName: "dra-sriov",
      pluginIndex: "10",
      handlers,
      logger: pino(
        { level: "debug" },
        { write: (line: string) => void logs.push(JSON.parse(line)) },
      ),
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
      ...options,
    });
    return plugin;
  }

  const listen = async () => {
    runtime = await FakeNriRuntime.listen({ socketPath });
    return runtime;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nri-"));
    socketPath = path.join(dir, "nri.sock");
    calls = [];
    pods = [];
    logs = [];
    handlerOverrides = {};
  });

  afterEach(async () => {
    await plugin?.stop();
    await runtime?.close();
    plugin = undefined;
    runtime = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("registers in time and subscribes to pod sandboxes starting, stopping and going away", async () => {
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    expect(await peer.registration).toEqual({
      plugin_name: "dra-sriov",
      plugin_idx: "10",
      NRI_version: "",
    });
    const configured = await peer.configure({ request_timeout: "2500" });
    // RUN_POD_SANDBOX (1), STOP_POD_SANDBOX (2), REMOVE_POD_SANDBOX (3): bits 1 << (event - 1)
    expect(configured.events).toBe(0b111);
    expect(plugin!.requestTimeoutMs()).toBe(2500);
    expect(plugin!.connected()).toBe(false);
  });

  it("joins a split Synchronize, echoing `more` until its last part", async () => {
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.registration;
    await peer.configure();
    const responses = await peer.synchronize([
      [wirePod({ name: "a" }), wirePod({ name: "b" })],
      [wirePod({ name: "c" })],
      [wirePod({ name: "d" })],
    ]);
    expect(responses).toEqual([{ more: true }, { more: true }, { more: false }]);
    expect(calls).toEqual([{ event: "synchronize", pods: ["a", "b", "c", "d"] }]);
    await plugin!.whenSynchronized();
    expect(plugin!.connected()).toBe(true);
  });

  it("takes pod events both as dedicated calls and through StateChange, in order", async () => {
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.handshake([]);
    const a = wirePod({
      name: "a",
      namespace: "tenant",
      uid: "1111",
      labels: { app: "x" },
      annotations: { note: "y" },
      runtime_handler: "kata",
      pid: 42,
      ips: ["10.0.0.5"],
    });
    const b = wirePod({ name: "b" });
    await peer.runPodSandbox(a);
    await peer.stateChange("STOP_POD_SANDBOX", a);
    await peer.removePodSandbox(a);
    await peer.stateChange("RUN_POD_SANDBOX", b);
    await peer.stopPodSandbox(b);
    await peer.stateChange("REMOVE_POD_SANDBOX", b);
    // Not subscribed: answered and ignored.
    await peer.stateChange("CREATE_CONTAINER", b);
    expect(calls.slice(1)).toEqual([
      { event: "run", pods: ["a"] },
      { event: "stop", pods: ["a"] },
      { event: "remove", pods: ["a"] },
      { event: "run", pods: ["b"] },
      { event: "stop", pods: ["b"] },
      { event: "remove", pods: ["b"] },
    ]);
    expect(pods.find((pod) => pod.name === "a")).toEqual({
      id: "sandbox-a",
      name: "a",
      uid: "1111",
      namespace: "tenant",
      labels: { app: "x" },
      annotations: { note: "y" },
      runtimeHandler: "kata",
      pid: 42,
      ips: ["10.0.0.5"],
      namespaces: [{ type: "network", path: "/var/run/netns/cni-a" }],
    });
    const runLog = logs.find(
      (line) => line.msg === "NRI pod event" && line["via"] === "RunPodSandbox",
    );
    expect(runLog).toMatchObject({ event: "RunPodSandbox", pod: "tenant/a", podUid: "1111" });
  });

  it("answers methods it does not serve with UNIMPLEMENTED (12), so the runtime falls back", async () => {
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.handshake();
    for (const method of ["CreateContainer", "UpdatePodSandbox", "ValidateContainerAdjustment"]) {
      const error = await rejection(peer.callRaw(`/nri.pkg.api.v1alpha1.Plugin/${method}`));
      expect(error.code).toBe(12);
    }
    expect((await rejection(peer.callRaw("/nri.pkg.api.v1alpha2.Plugin/Configure"))).code).toBe(
      Code.UNIMPLEMENTED,
    );
  });

  it("answers a failing handler with an error status and logs the pod", async () => {
    handlerOverrides.runPodSandbox = async (pod) => {
      if (pod.name === "bad") throw new Error("no VF left on the node");
    };
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.handshake();
    const error = await rejection(peer.runPodSandbox(wirePod({ name: "bad", namespace: "ns" })));
    expect(error.code).toBe(Code.UNKNOWN);
    expect(error.statusMessage).toBe("RunPodSandbox of pod ns/bad: no VF left on the node");
    expect(logs.find((line) => line.level === 50)).toMatchObject({
      event: "RunPodSandbox",
      pod: "ns/bad",
      podUid: "uid-bad",
    });
    // The connection stays usable for the next pod.
    await peer.runPodSandbox(wirePod({ name: "good" }));
    expect(calls.at(-1)).toEqual({ event: "run", pods: ["good"] });
  });

  it("answers a failing synchronization with an error and is not synchronized", async () => {
    handlerOverrides.synchronize = async () => {
      throw new Error("checkpoint unreadable");
    };
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.registration;
    await peer.configure();
    const error = await rejection(peer.synchronize([[wirePod({ name: "a" })]]));
    expect(error.statusMessage).toBe("synchronizing 1 pods: checkpoint unreadable");
    expect(plugin!.connected()).toBe(false);
  });

  it("keeps one pod's events in order while other pods go ahead", async () => {
    const release = Promise.withResolvers<undefined>();
    handlerOverrides.runPodSandbox = async (pod) => {
      if (pod.name === "slow") await release.promise;
    };
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.handshake();
    const slow = wirePod({ name: "slow" });
    const run = peer.runPodSandbox(slow);
    const stop = peer.stopPodSandbox(slow);
    // Sent after the stop on the same connection: once it is answered, the stop is queued.
    try {
      await peer.runPodSandbox(wirePod({ name: "fast" }));
      expect(calls.slice(1)).toEqual([
        { event: "run", pods: ["slow"] },
        { event: "run", pods: ["fast"] },
      ]);
    } finally {
      release.resolve(undefined);
    }
    await Promise.all([run, stop]);
    expect(calls.at(-1)).toEqual({ event: "stop", pods: ["slow"] });
  });

  it("reconnects when the runtime drops it and synchronizes again", async () => {
    await listen();
    start();
    const first = await runtime!.nextConnection();
    await first.handshake([wirePod({ name: "a" })]);
    await plugin!.whenSynchronized();
    first.close();
    const second = await runtime!.nextConnection();
    await second.handshake([wirePod({ name: "a" }), wirePod({ name: "b" })]);
    await plugin!.whenSynchronized();
    expect(plugin!.connected()).toBe(true);
    expect(calls.filter((call) => call.event === "synchronize")).toEqual([
      { event: "synchronize", pods: ["a"] },
      { event: "synchronize", pods: ["a", "b"] },
    ]);
  });

  it("waits for the socket to appear and comes back after a runtime restart", async () => {
    start();
    await listen();
    const first = await runtime!.nextConnection();
    await first.handshake();
    expect(logs.filter((line) => /does not exist/.test(line.msg))).toHaveLength(1);
    await runtime!.close();
    runtime = await FakeNriRuntime.listen({ socketPath });
    const second = await runtime.nextConnection();
    await second.handshake([wirePod({ name: "after-restart" })]);
    await plugin!.whenSynchronized();
    expect(calls.at(-1)).toEqual({ event: "synchronize", pods: ["after-restart"] });
  });

  it("drops a connection the runtime never configures and tries again", async () => {
    await listen();
    start({ handshakeTimeoutMs: 200 });
    const silent = await runtime!.nextConnection();
    await silent.registration;
    await silent.closed;
    // The next connection that completes its handshake in time stays.
    for (;;) {
      const next = await runtime!.nextConnection();
      const completed = await next.handshake().then(
        () => true,
        () => false,
      );
      if (completed) break;
    }
    await plugin!.whenSynchronized();
    expect(plugin!.connected()).toBe(true);
  });

  it("stops: closes the connection and reconnects no more", async () => {
    await listen();
    start();
    const peer = await runtime!.nextConnection();
    await peer.handshake();
    await plugin!.stop();
    await peer.closed;
    expect(plugin!.connected()).toBe(false);
    await expect(plugin!.whenSynchronized()).rejects.toThrow(/stopped/);
    // stop() resolves only once the reconnect loop has ended: no connection can follow.
    expect(runtime!.connections).toHaveLength(1);
  });

  it("rejects a waiter when stopped before synchronizing", async () => {
    start();
    const waiting = plugin!.whenSynchronized();
    await plugin!.stop();
    await expect(waiting).rejects.toThrow(/stopped before it synchronized/);
  });

  it("refuses names and indices the runtime would refuse", () => {
    expect(() => start({ pluginName: "dra sriov" })).toThrow(/a-z A-Z 0-9/);
    expect(() => start({ pluginIndex: "1" })).toThrow(/two digits/);
    expect(() => start({ reconnect: { initialDelayMs: 0, maxDelayMs: 1 } })).toThrow(/positive/);
    plugin = undefined;
  });
});
