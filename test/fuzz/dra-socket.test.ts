import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClaimPreparer, ClaimRef } from "../../lib/kubeletplugin/claim-preparer.js";
import { startKubeletPlugin, type KubeletPlugin } from "../../lib/kubeletplugin/kubelet-plugin.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { MetricsRegistry } from "../../lib/observability/metrics.js";
import { fuzzRuns } from "./runs.js";

/** Sends raw bytes to a unix socket and waits until either side closes it. */
function garbage(socket: string, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const connection = net.connect(socket);
    connection.on("error", () => resolve());
    connection.on("close", () => resolve());
    connection.on("data", () => undefined);
    connection.end(bytes);
  });
}

/**
 * The DRA socket as anyone root on the node could use it: random claim references in
 * well-formed calls get one answer per claim and reach the driver only when they are
 * Kubernetes names; random bytes never take the server down.
 */
describe("fuzz: the DRA gRPC socket", () => {
  let root: string;
  let plugin: KubeletPlugin;
  let kubelet: FakeKubelet;
  const seen: ClaimRef[] = [];
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "fz-"));
    fs.mkdirSync(path.join(root, "reg"));
    const preparer: ClaimPreparer = {
      prepare: async (claims) => {
        seen.push(...claims);
        return new Map(claims.map((claim) => [claim.uid, { devices: [] }]));
      },
      unprepare: async (claims) => {
        seen.push(...claims);
        return new Map(claims.map((claim) => [claim.uid, {}]));
      },
    };
    plugin = await startKubeletPlugin({
      driverName: "sriovnetwork.openshift.io",
      registryDir: path.join(root, "reg"),
      pluginsDir: path.join(root, "plugins"),
      preparer,
      logger: pino({ level: "silent" }),
      metrics: new MetricsRegistry(),
    });
    kubelet = new FakeKubelet(loadKubeletProtos());
  });
  afterAll(async () => {
    kubelet.close();
    await plugin.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("answers every claim reference and passes on only valid ones", async () => {
    const part = fc.oneof(
      fc.constantFrom("default", "claim-a", "uid-1", "..", "../../etc", "a/b", "", "%2e%2e", "\0"),
      fc.string({ maxLength: 70 }),
    );
    const claim = fc.record({ namespace: part, name: part, uid: part });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(claim, { maxLength: 4, selector: (c) => c.uid }),
        async (claims) => {
          seen.length = 0;
          const prepared = await kubelet.prepare(plugin.draSocket, "v1", claims);
          const unprepared = await kubelet.unprepare(plugin.draSocket, "v1beta1", claims);
          for (const c of claims) {
            expect(prepared.claims[c.uid], JSON.stringify(c)).toBeDefined();
            expect(unprepared.claims[c.uid]).toBeDefined();
          }
          for (const ref of seen) {
            expect(ref.namespace).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
            expect(ref.uid).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
            expect(ref.name).not.toContain("/");
          }
        },
      ),
      { numRuns: fuzzRuns(200) },
    );
  });

  it("survives random bytes on the socket, and serves the next call", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        await garbage(plugin.draSocket, bytes);
      }),
      { numRuns: fuzzRuns(100) },
    );
    const answer = await kubelet.prepare(plugin.draSocket, "v1", [
      { namespace: "default", name: "claim-a", uid: "uid-a" },
    ]);
    expect(answer.claims["uid-a"]?.error).toBe("");
  });
});
