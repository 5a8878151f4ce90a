import net from "node:net";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpEndpoints, type HttpEndpoints } from "../../lib/observability/http-endpoints.js";
import { MetricsRegistry } from "../../lib/observability/metrics.js";
import { fuzzRuns } from "./runs.js";

/** Sends raw bytes and collects what comes back until the server closes the connection. */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (reply += chunk));
    socket.on("error", () => resolve(reply));
    socket.on("close", () => resolve(reply));
    socket.end(bytes);
  });
}

/**
 * The health port listens on every address of the node: garbage request lines, targets
 * and headers get an HTTP error or a closed connection, and the server keeps serving.
 */
describe("fuzz: the health and metrics port", () => {
  let endpoints: HttpEndpoints;
  beforeAll(async () => {
    endpoints = await startHttpEndpoints({
      port: 0,
      host: "127.0.0.1",
      logger: pino({ level: "silent" }),
      metrics: new MetricsRegistry(),
      readinessChecks: [],
    });
  });
  afterAll(() => endpoints.close());

  it("answers or closes on any request, and /healthz still answers after each", async () => {
    const target = fc.oneof(
      fc.constantFrom("//", "///", "//[", "//a:b@", "/\\\\", "*", "http://x/", "/healthz?%"),
      fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n ]/g, "")),
    );
    const request = fc.oneof(
      fc
        .tuple(fc.constantFrom("GET", "HEAD", "POST", "BREW", ""), target)
        .map(([method, path]) =>
          Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, "latin1"),
        ),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    );
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        const reply = await exchange(endpoints.port, bytes);
        if (reply !== "") expect(reply).toMatch(/^HTTP\/1\.1 \d{3} /);
        const health = await exchange(
          endpoints.port,
          Buffer.from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        expect(health).toMatch(/^HTTP\/1\.1 200 /);
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});
