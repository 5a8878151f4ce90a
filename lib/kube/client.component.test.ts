import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeApiError, KubeClient } from "./client.js";

describe("KubeClient over HTTP", () => {
  let server: http.Server;
  let dir: string;
  let seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  let url: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kube-client-"));
    seen = [];
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (req.url!.startsWith("/api/v1/namespaces/missing")) {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ kind: "Status", reason: "NotFound", message: "gone" }));
        } else if (req.url!.includes("watch=true")) {
          res.writeHead(200, { "content-type": "application/json" });
          res.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n`);
          res.end(`${JSON.stringify({ type: "DELETED", object: { metadata: { name: "a" } } })}\n`);
        } else {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ echo: body === "" ? null : JSON.parse(body) }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const kubeconfig = (user: string) => {
    const file = path.join(dir, "kubeconfig");
    fs.writeFileSync(
      file,
      `current-context: c
clusters: [{ name: k, cluster: { server: "${url}" } }]
users: [{ name: u, user: ${user} }]
contexts: [{ name: c, context: { cluster: k, user: u, namespace: ns } }]
`,
    );
    return file;
  };

  it("sends JSON with the token, the query and the content type, and reads JSON back", async () => {
    const client = KubeClient.load(kubeconfig(`{ token: secret }`));
    expect(client.namespace).toBe("ns");
    const answer = await client.request({
      method: "PATCH",
      path: "/api/v1/nodes/n1",
      query: { fieldManager: "x", dryRun: undefined },
      contentType: "application/merge-patch+json",
      body: { metadata: { labels: { a: "ü" } } },
    });
    expect(answer).toEqual({ echo: { metadata: { labels: { a: "ü" } } } });
    expect(seen[0]).toMatchObject({
      method: "PATCH",
      url: "/api/v1/nodes/n1?fieldManager=x",
      headers: { authorization: "Bearer secret", "content-type": "application/merge-patch+json" },
    });
  });

  it("turns a metav1.Status into a KubeApiError", async () => {
    const client = KubeClient.load(kubeconfig(`{}`));
    const error = await client
      .request({ method: "GET", path: "/api/v1/namespaces/missing" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 404, reason: "NotFound" });
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  it("streams watch events line by line", async () => {
    const client = KubeClient.load(kubeconfig(`{}`));
    const events = [];
    for await (const event of client.watch("/api/v1/pods", {}, new AbortController().signal))
      events.push(event.type);
    expect(events).toEqual(["ADDED", "DELETED"]);
    expect(seen[0]!.url).toBe("/api/v1/pods?watch=true");
  });

  it("runs an exec credential plugin with its args and env, once while the credential holds", async () => {
    const plugin = path.join(dir, "plugin.sh");
    const runs = path.join(dir, "runs");
    fs.writeFileSync(
      plugin,
      `#!/bin/sh\necho run >> "${runs}"\necho "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"$1-$REGION\\"}}"\n`,
      { mode: 0o755 },
    );
    const client = KubeClient.load(
      kubeconfig(
        `{ exec: { apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh, args: [tok], env: [{ name: REGION, value: eu }] } }`,
      ),
    );
    await client.request({ method: "GET", path: "/version" });
    await client.request({ method: "GET", path: "/version" });
    expect(seen.map((request) => request.headers.authorization)).toEqual([
      "Bearer tok-eu",
      "Bearer tok-eu",
    ]);
    expect(fs.readFileSync(runs, "utf8")).toBe("run\n");
  });
});
