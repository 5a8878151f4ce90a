import fs from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { status } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DeviceHealth, HealthSource } from "./device-health.js";
import type { ClaimPreparer } from "./claim-preparer.js";
import { MAX_HEALTH_STREAMS } from "./device-health-service.js";
import {
  startKubeletPlugin,
  type KubeletDeviceHealthOptions,
  type KubeletPlugin,
} from "./kubelet-plugin.js";
import { MetricsRegistry } from "../observability/metrics.js";
import { loadKubeletProtos, type NodeWatchResourcesResponse } from "./protos.js";
import { FakeKubelet, type HealthWatch } from "./testing/fake-kubelet.js";

const DRIVER = "sriovnetwork.openshift.io";
const POOL = "node-1";

/** Our HealthSource in memory: what the health monitor would hand the plugin. */
class MemoryHealthSource implements HealthSource {
  private readonly devices = new Map<string, DeviceHealth>();
  private readonly listeners = new Set<(changed: readonly DeviceHealth[]) => void>();
  /** How often a consumer read the whole picture. */
  reads = 0;

  constructor(devices: readonly DeviceHealth[] = []) {
    for (const device of devices) this.devices.set(device.device, device);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  set(...changed: DeviceHealth[]): void {
    for (const device of changed) this.devices.set(device.device, device);
    for (const listener of [...this.listeners]) listener(changed);
  }

  current(): readonly DeviceHealth[] {
    this.reads++;
    return [...this.devices.values()];
  }

  subscribe(listener: (changed: readonly DeviceHealth[]) => void): () => void {
    // A fresh function per subscription, so each unsubscribe is counted on its own.
    const own = (changed: readonly DeviceHealth[]) => listener(changed);
    this.listeners.add(own);
    return () => this.listeners.delete(own);
  }
}

const healthy = (device: string): DeviceHealth => ({
  device,
  state: "Healthy",
  message: "",
  sinceMs: 1,
});
const linkDown = (device: string, message = "PF enp59s0f0 has no carrier"): DeviceHealth => ({
  device,
  state: "Unhealthy",
  reason: "PFLinkDown",
  message,
  sinceMs: 2,
});

/** The devices of a message as "name=HEALTH", in order. */
function states(message: NodeWatchResourcesResponse): string[] {
  return message.devices.map((device) => `${device.device.device_name}=${device.health}`);
}

/**
 * NodeWatchResources over a bare HTTP/2 connection: a client that does only what it wants,
 * and whose connection a test can cut.
 */
function rawWatch(socketPath: string, version: "v1" | "v1alpha1") {
  const socket = net.connect(socketPath);
  const session = http2.connect("http://localhost", { createConnection: () => socket });
  session.on("error", () => {});
  const request = session.request({
    ":method": "POST",
    ":path": `/${version}.DRAResourceHealth/NodeWatchResources`,
    "content-type": "application/grpc",
    te: "trailers",
  });
  request.on("error", () => {});
  // One empty request message: not compressed, length 0.
  request.end(Buffer.alloc(5));
  return { socket, session, request };
}

const noPreparer: ClaimPreparer = {
  prepare: () => Promise.reject(new Error("not in these tests")),
  unprepare: () => Promise.reject(new Error("not in these tests")),
};

describe("device health for the kubelet", () => {
  let root: string;
  let registryDir: string;
  let kubelet: FakeKubelet;
  let source: MemoryHealthSource;
  const running: KubeletPlugin[] = [];

  beforeEach(() => {
    // Short paths: unix socket paths are limited to 107 bytes.
    root = fs.mkdtempSync(path.join(os.tmpdir(), "kh-"));
    registryDir = path.join(root, "reg");
    fs.mkdirSync(registryDir);
    kubelet = new FakeKubelet(loadKubeletProtos());
    source = new MemoryHealthSource([healthy("0000-3b-02-0"), healthy("0000-3b-02-1")]);
  });

  afterEach(async () => {
    kubelet.close();
    await Promise.all(running.splice(0).map((plugin) => plugin.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(deviceHealth: Partial<KubeletDeviceHealthOptions> | false = {}) {
    const plugin = await startKubeletPlugin({
      driverName: DRIVER,
      registryDir,
      pluginsDir: path.join(root, "plugins"),
      preparer: noPreparer,
      logger: pino({ level: "silent" }),
      metrics: new MetricsRegistry(),
      ...(deviceHealth === false
        ? {}
        : { deviceHealth: { source, poolName: POOL, resendEveryMs: 60_000, ...deviceHealth } }),
    });
    running.push(plugin);
    return plugin;
  }

  it("advertises both health services after the DRAPlugin versions, and the kubelet picks v1", async () => {
    const plugin = await start();
    const { info, chosenService, chosenHealthService } = await kubelet.register(
      plugin.registrationSocket,
    );
    expect(info.supported_versions).toEqual([
      "v1.DRAPlugin",
      "v1beta1.DRAPlugin",
      "v1.DRAResourceHealth",
      "v1alpha1.DRAResourceHealth",
    ]);
    expect(chosenService).toBe("v1.DRAPlugin");
    expect(chosenHealthService).toBe("v1.DRAResourceHealth");
    for (const service of ["v1.DRAResourceHealth", "v1alpha1.DRAResourceHealth"]) {
      expect(await kubelet.checkHealth(plugin.draSocket, service)).toEqual({ status: "SERVING" });
    }
  });

  it("neither advertises nor serves device health without a source", async () => {
    const plugin = await start(false);
    const { info, chosenHealthService } = await kubelet.register(plugin.registrationSocket);
    expect(info.supported_versions).toEqual(["v1.DRAPlugin", "v1beta1.DRAPlugin"]);
    expect(chosenHealthService).toBeUndefined();
    await expect(
      kubelet.checkHealth(plugin.draSocket, "v1.DRAResourceHealth"),
    ).rejects.toMatchObject({ code: status.NOT_FOUND });
    const watch = kubelet.watchHealth(plugin.draSocket, "v1");
    expect(await watch.ended()).toMatchObject({ code: status.UNIMPLEMENTED });
  });

  it.each(["v1", "v1alpha1"] as const)(
    "streams the whole picture first, then again on every change, over %s",
    async (version) => {
      const plugin = await start();
      const before = Math.floor(Date.now() / 1000);
      const watch = kubelet.watchHealth(plugin.draSocket, version);

      const first = await watch.next();
      expect(first.devices).toEqual([
        expect.objectContaining({
          device: { pool_name: POOL, device_name: "0000-3b-02-0" },
          health: "HEALTHY",
          health_check_timeout_seconds: "30",
          message: "",
        }),
        expect.objectContaining({ device: { pool_name: POOL, device_name: "0000-3b-02-1" } }),
      ]);
      const stated = Number(first.devices[0]!.last_updated_time);
      expect(stated).toBeGreaterThanOrEqual(before);
      expect(stated).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      expect(watch.deviceHealth(POOL, "0000-3b-02-1")).toEqual({ health: "HEALTHY", message: "" });

      source.set(linkDown("0000-3b-02-1"));
      // The whole list again, not only the device that changed: the kubelet takes each
      // message as complete.
      expect(states(await watch.next())).toEqual([
        "0000-3b-02-0=HEALTHY",
        "0000-3b-02-1=UNHEALTHY",
      ]);
      expect(watch.deviceHealth(POOL, "0000-3b-02-1")).toEqual({
        health: "UNHEALTHY",
        message: "PF enp59s0f0 has no carrier",
      });

      source.set(healthy("0000-3b-02-1"), {
        ...linkDown("0000-3b-02-2"),
        message: "é".repeat(900),
      });
      const third = await watch.next();
      expect(states(third)).toEqual([
        "0000-3b-02-0=HEALTHY",
        "0000-3b-02-1=HEALTHY",
        "0000-3b-02-2=UNHEALTHY",
      ]);
      expect(Buffer.byteLength(third.devices[2]!.message)).toBeLessThanOrEqual(1024);
      expect(third.devices[2]!.message.endsWith("…")).toBe(true);
    },
  );

  it("repeats the picture without changes, so the kubelet's reports do not expire", async () => {
    const plugin = await start({ resendEveryMs: 10 });
    const watch = kubelet.watchHealth(plugin.draSocket, "v1");
    const messages = [await watch.next(), await watch.next(), await watch.next()];
    expect(messages.map(states)).toEqual(
      Array(3).fill(["0000-3b-02-0=HEALTHY", "0000-3b-02-1=HEALTHY"]),
    );
  });

  it("drops its listener when the kubelet cancels or goes, however often it reconnects", async () => {
    const plugin = await start({ resendEveryMs: 5 });
    for (let round = 0; round < 20; round++) {
      const version = round % 2 ? "v1" : "v1alpha1";
      if (round % 4 === 3) {
        // The connection goes without a word, as when the kubelet dies.
        const { socket } = rawWatch(plugin.draSocket, version);
        await vi.waitFor(() => expect(source.listenerCount).toBe(1));
        socket.destroy();
      } else {
        const watch = kubelet.watchHealth(plugin.draSocket, version);
        await watch.next();
        expect(source.listenerCount).toBe(1);
        watch.cancel();
      }
      await vi.waitFor(() => expect(source.listenerCount).toBe(0), { interval: 5 });
    }
  });

  it("ends open streams with OK when it stops, without waiting out the drain", async () => {
    const plugin = await start();
    const watch = kubelet.watchHealth(plugin.draSocket, "v1");
    await watch.next();
    // The default drain is 20 s, beyond this test's timeout: an open stream would hold it.
    await plugin.stop();
    expect(await watch.ended()).toBe("end");
    expect(source.listenerCount).toBe(0);
    // The kubelet forgets the driver's health when the stream ends.
    expect(watch.deviceHealth(POOL, "0000-3b-02-0")).toEqual({ health: "UNKNOWN", message: "" });
  });

  it(`refuses more than ${MAX_HEALTH_STREAMS} streams at once`, async () => {
    const plugin = await start();
    const watches: HealthWatch[] = [];
    for (let index = 0; index < MAX_HEALTH_STREAMS; index++) {
      watches.push(kubelet.watchHealth(plugin.draSocket, "v1"));
      await watches.at(-1)!.next();
    }
    const refused = kubelet.watchHealth(plugin.draSocket, "v1");
    expect(await refused.ended()).toMatchObject({ code: status.RESOURCE_EXHAUSTED });

    watches[0]!.cancel();
    await vi.waitFor(() => expect(source.listenerCount).toBe(MAX_HEALTH_STREAMS - 1));
    await kubelet.watchHealth(plugin.draSocket, "v1").next();
  });

  describe("a reader that falls behind", () => {
    /** Many devices with long messages: a picture of about 200 kB. */
    function bigSource(): MemoryHealthSource {
      return new MemoryHealthSource(
        Array.from({ length: 200 }, (_, index) =>
          linkDown(`0000-3b-${String(index).padStart(4, "0")}`, "x".repeat(1000)),
        ),
      );
    }

    /** Changes one device per turn of the event loop, so every write could complete. */
    async function flap(times: number): Promise<void> {
      for (let index = 0; index < times; index++) {
        source.set(index % 2 ? linkDown("0000-3b-0000") : healthy("0000-3b-0000"));
        await new Promise((resolve) => setImmediate(resolve));
      }
    }

    it("costs one picture per stream, however many changes it misses, and then gets the latest", async () => {
      source = bigSource();
      const plugin = await start();
      const watch = kubelet.watchHealth(plugin.draSocket, "v1");
      await watch.next();
      watch.pause();
      const readsBefore = source.reads;

      await flap(300);
      // gRPC's client buffers a few messages before it stops reading; past that, the
      // server builds no new picture until one is written out.
      const readsWhilePaused = source.reads - readsBefore;
      expect(readsWhilePaused).toBeLessThan(40);

      source.set(linkDown("0000-3b-0000", "the last word"));
      watch.resume();
      const last = await watch.until((message) => message.devices[0]!.message === "the last word");
      expect(last.devices[0]!.health).toBe("UNHEALTHY");
      expect(watch.received.length).toBeLessThan(45);
    });

    it("holds no more for a client that never reads a byte", async () => {
      source = bigSource();
      const plugin = await start();
      const { session, request } = rawWatch(plugin.draSocket, "v1");
      request.pause();
      await vi.waitFor(() => expect(source.listenerCount).toBe(1));
      const readsBefore = source.reads;

      await flap(300);
      expect(source.reads - readsBefore).toBeLessThan(5);

      request.close();
      session.destroy();
      await vi.waitFor(() => expect(source.listenerCount).toBe(0));
    });
  });
});
