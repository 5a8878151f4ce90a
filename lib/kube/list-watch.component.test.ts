import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KubeClient } from "./client.js";
import { ListWatch } from "./list-watch.js";

const PATH = "/apis/example.com/v1/namespaces/n/things";
const logger = pino({ level: "silent" });

/**
 * An API server on loopback that does not serve the collection (404, as for a CRD not
 * installed) until `serve()`; then lists one object and holds watches open.
 */
async function startServer() {
  let served = false;
  let lists = 0;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname !== PATH) {
      response.writeHead(404).end();
      return;
    }
    if (url.searchParams.get("watch") === "true") {
      response.writeHead(200, { "content-type": "application/json" });
      return; // held open until the client stops
    }
    lists += 1;
    if (!served) {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ kind: "Status", code: 404, reason: "NotFound" }));
      return;
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        items: [{ metadata: { name: "a", namespace: "n" } }],
        metadata: { resourceVersion: "5" },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    client: new KubeClient({
      server: `http://127.0.0.1:${port}`,
      namespace: "default",
      tls: { insecureSkipVerify: true },
      auth: { kind: "none" },
    }),
    serve: () => {
      served = true;
    },
    lists: () => lists,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Waits, bounded, until `check` holds (vitest's poll; no fixed sleep of ours). */
async function until(what: string, check: () => boolean): Promise<void> {
  await vi.waitFor(
    () => {
      if (!check()) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: 10_000, interval: 20 },
  );
}

describe("ListWatch of a collection the server may not serve", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("optional: a 404 is synced and empty, and the objects come once it is served", async () => {
    const server = await startServer();
    cleanups.push(server.close);
    let changes = 0;
    const watch = new ListWatch(server.client, {
      path: PATH,
      logger,
      optional: true,
      maxBackoffMs: 100,
      onChange: () => {
        changes += 1;
      },
    });
    watch.start();
    cleanups.push(() => watch.stop());
    await until("the first 404 to count as synced", () => watch.hasSynced);
    expect(watch.items.size).toBe(0);
    expect(changes).toBe(1);
    server.serve();
    await until("the object once served", () => watch.items.size === 1);
    expect([...watch.items.keys()]).toEqual(["n/a"]);
  });

  it("not optional: a 404 is retried and never counts as synced", async () => {
    const server = await startServer();
    cleanups.push(server.close);
    const watch = new ListWatch(server.client, {
      path: PATH,
      logger,
      maxBackoffMs: 50,
      onChange: () => undefined,
    });
    watch.start();
    cleanups.push(() => watch.stop());
    await until("three lists", () => server.lists() >= 3);
    expect(watch.hasSynced).toBe(false);
  });
});
