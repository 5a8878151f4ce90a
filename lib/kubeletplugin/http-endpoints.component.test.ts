import net, { type AddressInfo } from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ClaimPreparer } from "./claim-preparer.js";
import {
  livenessReport,
  readinessReport,
  startHttpEndpoints,
  type HttpEndpoints,
  type HttpEndpointsOptions,
} from "../observability/http-endpoints.js";
import { startKubeletPlugin, type KubeletPlugin } from "./kubelet-plugin.js";
import { MetricsRegistry } from "../observability/metrics.js";
import { loadKubeletProtos } from "./protos.js";
import { FakeKubelet } from "./testing/fake-kubelet.js";
import { parsePrometheusText, sampleValue } from "../observability/testing/prometheus-text.js";

const logger = pino({ level: "silent" });

describe("readinessReport", () => {
  it("names every check and the failing ones", () => {
    const report = readinessReport([
      { name: "kubelet-registration", isReady: () => true },
      { name: "slices-published", isReady: () => false },
      {
        name: "checkpoint-loaded",
        isReady: () => {
          throw new Error("unreadable");
        },
      },
    ]);
    expect(report).toEqual({
      ok: false,
      body: [
        "[+] kubelet-registration ok",
        "[-] slices-published not ready",
        "[-] checkpoint-loaded not ready: Error: unreadable",
        "not ready: slices-published, checkpoint-loaded",
        "",
      ].join("\n"),
    });
    expect(readinessReport([{ name: "a", isReady: () => true }]).ok).toBe(true);
  });
});

describe("livenessReport", () => {
  it("fails on an event loop stall beyond the limit", () => {
    expect(livenessReport(12, 1000).ok).toBe(true);
    expect(livenessReport(2500, 1000)).toEqual({
      ok: false,
      body: "event loop stalled: longest event loop stall 2500ms since the last check (limit 1000ms)\n",
    });
  });
});

describe("HTTP endpoints", () => {
  let root: string;
  let endpoints: HttpEndpoints | undefined;
  let plugin: KubeletPlugin | undefined;
  let kubelet: FakeKubelet;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "kh-"));
    fs.mkdirSync(path.join(root, "plugins_registry"));
    kubelet = new FakeKubelet(loadKubeletProtos());
  });

  afterEach(async () => {
    kubelet.close();
    await endpoints?.close();
    await plugin?.stop();
    endpoints = plugin = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function serve(options: Partial<HttpEndpointsOptions> = {}) {
    endpoints = await startHttpEndpoints({
      port: 0,
      host: "127.0.0.1",
      logger,
      metrics: new MetricsRegistry(),
      readinessChecks: [],
      ...options,
    });
    return (route: string, init?: RequestInit) =>
      fetch(`http://127.0.0.1:${endpoints!.port}${route}`, init);
  }

  it("answers request targets that are no URL path with 404 and keeps serving", async () => {
    const get = await serve();
    const raw = (target: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(endpoints!.port, "127.0.0.1");
        let reply = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => (reply += chunk));
        socket.on("error", reject);
        socket.on("end", () => resolve(reply));
        socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
    for (const target of ["//", "///", "//[", "//a:b@", "/\\", "//healthz"]) {
      expect(await raw(target), target).toMatch(/^HTTP\/1\.1 404 /);
    }
    expect((await get("/healthz")).status).toBe(200);
  });

  it("is ready only once registered with the kubelet and every injected check passes", async () => {
    const metrics = new MetricsRegistry();
    const preparer: ClaimPreparer = {
      prepare: async (claims) => new Map(claims.map((claim) => [claim.uid, { devices: [] }])),
      unprepare: async (claims) => new Map(claims.map((claim) => [claim.uid, {}])),
    };
    plugin = await startKubeletPlugin({
      driverName: "sriovnetwork.openshift.io",
      registryDir: path.join(root, "plugins_registry"),
      pluginsDir: path.join(root, "plugins"),
      preparer,
      logger,
      metrics,
    });
    let slicesPublished = false;
    const get = await serve({
      metrics,
      readinessChecks: [
        plugin.readinessCheck,
        { name: "slices-published", isReady: () => slicesPublished },
      ],
    });

    let response = await get("/readyz");
    expect(response.status).toBe(503);
    expect(await response.text()).toContain("not ready: kubelet-registration, slices-published");

    await kubelet.register(plugin.registrationSocket);
    response = await get("/readyz");
    expect(response.status).toBe(503);
    const body = await response.text();
    expect(body).toContain("[+] kubelet-registration ok");
    expect(body).toContain("not ready: slices-published\n");

    slicesPublished = true;
    response = await get("/readyz");
    expect(response.status).toBe(200);
    expect((await response.text()).endsWith("\nok\n")).toBe(true);
  });

  it("serves metrics that parse back and count the kubelet's calls", async () => {
    const metrics = new MetricsRegistry();
    plugin = await startKubeletPlugin({
      driverName: "sriovnetwork.openshift.io",
      registryDir: path.join(root, "plugins_registry"),
      pluginsDir: path.join(root, "plugins"),
      preparer: {
        prepare: async (claims) => new Map(claims.map((claim) => [claim.uid, { devices: [] }])),
        unprepare: async () => new Map(),
      },
      logger,
      metrics,
    });
    const published = metrics.gauge({
      name: "dra_sriov_devices_published",
      help: "VFs published per resource name.",
      labelNames: ["resource_name"],
    });
    published.set({ resource_name: "intel_sriov_netdevice" }, 8);
    const get = await serve({ metrics });

    const scrape = async () => {
      const response = await get("/metrics");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      return parsePrometheusText(await response.text());
    };
    const requests = (parsed: ReturnType<typeof parsePrometheusText>, result: string) =>
      sampleValue(parsed, "dra_sriov_node_requests_total", {
        operation: "prepare",
        api_version: "v1",
        result,
      });

    const before = await scrape();
    expect(requests(before, "success")).toBeUndefined();
    expect(sampleValue(before, "dra_sriov_kubelet_registered")).toBe(0);
    expect(
      sampleValue(before, "dra_sriov_devices_published", {
        resource_name: "intel_sriov_netdevice",
      }),
    ).toBe(8);
    expect(before.types.get("dra_sriov_node_request_duration_seconds")).toBe("histogram");

    await kubelet.register(plugin.registrationSocket);
    const claim = { namespace: "ns", name: "c", uid: "u" };
    await kubelet.prepare(plugin.draSocket, "v1", [claim]);
    await kubelet.prepare(plugin.draSocket, "v1", [claim]);
    await kubelet.unprepare(plugin.draSocket, "v1", [claim]);

    const after = await scrape();
    expect(requests(after, "success")).toBe(2);
    expect(
      sampleValue(after, "dra_sriov_node_requests_total", {
        operation: "unprepare",
        api_version: "v1",
        result: "error",
      }),
    ).toBe(1);
    expect(
      sampleValue(after, "dra_sriov_node_claim_errors_total", { operation: "unprepare" }),
    ).toBe(1);
    expect(
      sampleValue(after, "dra_sriov_node_request_duration_seconds_bucket", {
        operation: "prepare",
        le: "+Inf",
      }),
    ).toBe(2);
    expect(sampleValue(after, "dra_sriov_kubelet_registered")).toBe(1);
  });

  it("reports liveness, and a stalled event loop as not live", async () => {
    const get = await serve({ maxEventLoopStallMs: 200 });
    let response = await get("/healthz");
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^ok: longest event loop stall/);

    const until = Date.now() + 600;
    while (Date.now() < until) {
      // Block the event loop the way a synchronous bug would.
    }
    response = await get("/healthz");
    expect(response.status).toBe(503);
    expect(await response.text()).toMatch(/^event loop stalled/);

    // Each probe looks at the time since the previous one.
    response = await get("/healthz");
    expect(response.status).toBe(200);
  });

  it("answers HEAD without a body, other methods with 405 and unknown paths with 404", async () => {
    const get = await serve();
    const head = await get("/healthz", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await get("/metrics", { method: "POST" })).status).toBe(405);
    const missing = await get("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/try \/healthz, \/readyz or \/metrics/);
  });

  it("shares its port with the next instance (rolling update), and says when anything else has it", async () => {
    await serve();
    const next = await startHttpEndpoints({
      port: endpoints!.port,
      host: "127.0.0.1",
      logger,
      metrics: new MetricsRegistry(),
      readinessChecks: [],
    });
    await next.close();
    const other = net.createServer();
    await new Promise<void>((resolve) => other.listen({ port: 0, host: "127.0.0.1" }, resolve));
    try {
      await expect(
        startHttpEndpoints({
          port: (other.address() as AddressInfo).port,
          host: "127.0.0.1",
          logger,
          metrics: new MetricsRegistry(),
          readinessChecks: [],
        }),
      ).rejects.toThrow(
        /cannot serve health and metrics on 127\.0\.0\.1:\d+: .*choose a free port/,
      );
    } finally {
      other.close();
    }
  });
});
