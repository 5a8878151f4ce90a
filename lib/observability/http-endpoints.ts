import type http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { METRICS_CONTENT_TYPE, type MetricsRegistry } from "./metrics.js";

// Not a value import of node:http: see lib/kube/client.ts (it would load Node's undici).
const { createServer } = process.getBuiltinModule("node:http");

/** One named condition of readiness, e.g. "kubelet-registration" or "slices-published". */
export interface ReadinessCheck {
  name: string;
  isReady(): boolean;
}

export interface HttpEndpointsOptions {
  port: number;
  /**
   * Address to listen on; default all addresses (IPv4 and IPv6). The node plugin runs with
   * host networking, and the kubelet's probes and Prometheus reach it on the node's
   * address, so loopback would not do; the endpoints show no claim or device details.
   */
  host?: string;
  logger: Logger;
  metrics: MetricsRegistry;
  /** All must pass for /readyz; the plugin's registration check is one of them. */
  readinessChecks: readonly ReadinessCheck[];
  /** /healthz fails when the event loop stalled longer than this since the last probe. */
  maxEventLoopStallMs?: number;
}

export interface HttpEndpoints {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

export interface Report {
  ok: boolean;
  body: string;
}

const DEFAULT_MAX_EVENT_LOOP_STALL_MS = 10_000;

/** Readiness like the API server's verbose /readyz: one line per check, failures named. */
export function readinessReport(checks: readonly ReadinessCheck[]): Report {
  const results = checks.map((check) => {
    try {
      return { name: check.name, ready: check.isReady(), detail: "" };
    } catch (error) {
      return { name: check.name, ready: false, detail: `: ${String(error)}` };
    }
  });
  const failing = results.filter((result) => !result.ready).map((result) => result.name);
  const lines = results.map(
    (r) => `[${r.ready ? "+" : "-"}] ${r.name} ${r.ready ? "ok" : `not ready${r.detail}`}`,
  );
  lines.push(failing.length === 0 ? "ok" : `not ready: ${failing.join(", ")}`);
  return { ok: failing.length === 0, body: lines.join("\n") + "\n" };
}

/**
 * Liveness: answering at all shows the process is up; a long stall of the event loop
 * since the previous probe (a busy loop, a blocking call) means it is not keeping up.
 */
export function livenessReport(longestStallMs: number, limitMs: number): Report {
  const stalled = longestStallMs > limitMs;
  const delay = `longest event loop stall ${Math.round(longestStallMs)}ms since the last check (limit ${limitMs}ms)`;
  return { ok: !stalled, body: `${stalled ? "event loop stalled" : "ok"}: ${delay}\n` };
}

/** /healthz, /readyz and /metrics over plain HTTP. */
export async function startHttpEndpoints(options: HttpEndpointsOptions): Promise<HttpEndpoints> {
  const maxStallMs = options.maxEventLoopStallMs ?? DEFAULT_MAX_EVENT_LOOP_STALL_MS;
  const log = options.logger.child({ component: "http-endpoints" });
  const stalls = new StallMonitor();

  const server = createServer((request, response) => {
    try {
      route(request, response);
    } catch (error) {
      // Whatever a request does, the process serving the node stays up.
      log.error({ err: error }, "health and metrics request failed");
      if (!response.headersSent) send(response, request, 500, "internal error\n");
      else response.destroy();
    }
  });

  function route(request: http.IncomingMessage, response: http.ServerResponse): void {
    // The request target as sent: only our three exact paths match, whatever else it is
    // (no URL parsing of untrusted text: `//`, `//[` or `/\\` are no URLs).
    const pathname = (request.url ?? "/").split("?", 1)[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, request, 405, "only GET and HEAD\n", { allow: "GET, HEAD" });
      return;
    }
    switch (pathname) {
      case "/healthz": {
        const report = livenessReport(stalls.takeLongest(), maxStallMs);
        if (!report.ok) log.warn({ report: report.body.trim() }, "liveness check failed");
        send(response, request, report.ok ? 200 : 503, report.body);
        return;
      }
      case "/readyz": {
        const report = readinessReport(options.readinessChecks);
        send(response, request, report.ok ? 200 : 503, report.body);
        return;
      }
      case "/metrics":
        send(response, request, 200, options.metrics.render(), {
          "content-type": METRICS_CONTENT_TYPE,
        });
        return;
      default:
        send(response, request, 404, "not found: try /healthz, /readyz or /metrics\n");
    }
  }

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) =>
      reject(
        new Error(
          `cannot serve health and metrics on ${options.host ?? "*"}:${options.port}: ${error.message}` +
            " (choose a free port)",
        ),
      );
    server.once("error", failed);
    // SO_REUSEPORT: during a rolling update the next pod of the DaemonSet starts on the
    // host network while this one still runs, and must bind the same port for its probes.
    server.listen({ port: options.port, host: options.host, reusePort: true }, () => {
      server.off("error", failed);
      resolve();
    });
  });
  server.on("error", (error) => log.error({ err: error }, "health and metrics server failed"));
  stalls.start();
  const { port } = server.address() as AddressInfo;
  log.info({ host: options.host ?? "*", port }, "serving /healthz, /readyz and /metrics");

  return {
    port,
    close: async () => {
      stalls.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const STALL_TICK_MS = 100;

/**
 * Measures how late a repeating timer fires: a late tick means the event loop was busy.
 * Reading also counts a stall the timer has not caught up with yet, because a probe can be
 * answered before the late tick runs.
 */
class StallMonitor {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = performance.now();
  private longest = 0;

  start(): void {
    this.lastTick = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.longest = Math.max(this.longest, now - this.lastTick - STALL_TICK_MS);
      this.lastTick = now;
    }, STALL_TICK_MS).unref();
  }

  /** The longest stall in ms since the previous call. */
  takeLongest(): number {
    const now = performance.now();
    const ongoing = now - this.lastTick - STALL_TICK_MS;
    const longest = Math.max(this.longest, ongoing, 0);
    this.longest = 0;
    // Counted now; the late tick must not report it again.
    if (ongoing > 0) this.lastTick = now;
    return longest;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function send(
  response: http.ServerResponse,
  request: http.IncomingMessage,
  status: number,
  body: string,
  headers: http.OutgoingHttpHeaders = {},
): void {
  response.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  response.end(request.method === "HEAD" ? undefined : body);
}
