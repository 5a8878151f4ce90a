import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type {
  ClaimPreparer,
  ClaimRef,
  PrepareOutcome,
  UnprepareOutcome,
} from "./claim-preparer.js";
import {
  startKubeletPlugin,
  type KubeletPlugin,
  type KubeletPluginOptions,
} from "./kubelet-plugin.js";
import { MetricsRegistry } from "../observability/metrics.js";
import { loadKubeletProtos } from "./protos.js";
import { FakeKubelet } from "./testing/fake-kubelet.js";
import { parsePrometheusText, sampleValue } from "../observability/testing/prometheus-text.js";

const DRIVER = "sriovnetwork.openshift.io";
const POD_UID = "0b7d4c1e-5a7f-4f7e-9d0a-2f1c3e4d5a6b";

type PrepareFn = ClaimPreparer["prepare"];
type UnprepareFn = ClaimPreparer["unprepare"];

/** Prepares every claim with one VF named after it, unless a test swaps the behaviour. */
class FakePreparer implements ClaimPreparer {
  readonly prepared: ClaimRef[][] = [];
  readonly unprepared: ClaimRef[][] = [];
  onPrepare: PrepareFn = async (claims) =>
    new Map<string, PrepareOutcome>(
      claims.map((claim) => [
        claim.uid,
        {
          devices: [
            {
              requestNames: ["vf"],
              poolName: "node-1",
              deviceName: `vf-of-${claim.name}`,
              cdiDeviceIds: [`${DRIVER}/vf=${claim.uid}`],
            },
          ],
        },
      ]),
    );
  onUnprepare: UnprepareFn = async (claims) =>
    new Map<string, UnprepareOutcome>(claims.map((claim) => [claim.uid, {}]));

  prepare(claims: readonly ClaimRef[], signal: AbortSignal) {
    this.prepared.push([...claims]);
    return this.onPrepare(claims, signal);
  }

  unprepare(claims: readonly ClaimRef[], signal: AbortSignal) {
    this.unprepared.push([...claims]);
    return this.onUnprepare(claims, signal);
  }
}

const claimA = { namespace: "default", uid: "uid-a", name: "claim-a" };
const claimB = { namespace: "team-b", uid: "uid-b", name: "claim-b" };

/** A socket file nobody listens on, as a crashed process leaves it. */
async function deadSocket(socketPath: string): Promise<void> {
  const server = net.createServer();
  const bound = `${socketPath}.tmp`;
  await new Promise<void>((resolve) => server.listen(bound, resolve));
  fs.renameSync(bound, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("kubelet plugin", () => {
  let root: string;
  let registryDir: string;
  let pluginsDir: string;
  let kubelet: FakeKubelet;
  let preparer: FakePreparer;
  const running: KubeletPlugin[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeEach(() => {
    // Short paths: unix socket paths are limited to 107 bytes. Under /tmp, not TMPDIR: the per-pod socket names asserted here fit a socket path only
    // below a short root (a longer one makes them hashed; see socket-names.ts).
    root = fs.mkdtempSync("/tmp/kp-");
    registryDir = path.join(root, "plugins_registry");
    pluginsDir = path.join(root, "plugins");
    fs.mkdirSync(registryDir);
    kubelet = new FakeKubelet(loadKubeletProtos());
    preparer = new FakePreparer();
  });

  afterEach(async () => {
    kubelet.close();
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await Promise.all(running.splice(0).map((plugin) => plugin.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(overrides: Partial<KubeletPluginOptions> = {}) {
    const metrics = new MetricsRegistry();
    const plugin = await startKubeletPlugin({
      driverName: DRIVER,
      registryDir,
      pluginsDir,
      preparer,
      logger: pino({ level: "silent" }),
      metrics,
      ...overrides,
    });
    running.push(plugin);
    return { plugin, metrics };
  }

  it("registers the way the kubelet expects", async () => {
    const { plugin } = await start();
    expect(plugin.registrationSocket).toBe(path.join(registryDir, `${DRIVER}-reg.sock`));
    expect(plugin.draSocket).toBe(path.join(pluginsDir, DRIVER, "dra.sock"));
    expect(plugin.registered).toBe(false);

    const { info, chosenService } = await kubelet.register(plugin.registrationSocket);
    expect(info).toEqual({
      type: "DRAPlugin",
      name: DRIVER,
      endpoint: plugin.draSocket,
      supported_versions: ["v1.DRAPlugin", "v1beta1.DRAPlugin"],
    });
    expect(chosenService).toBe("v1.DRAPlugin");
    expect(plugin.registered).toBe(true);
    expect(plugin.readinessCheck.isReady()).toBe(true);
  });

  it.each(["v1", "v1beta1"] as const)("prepares and unprepares claims over %s", async (version) => {
    const { plugin } = await start();
    await kubelet.register(plugin.registrationSocket);

    const prepared = await kubelet.prepare(plugin.draSocket, version, [claimA, claimB]);
    expect(prepared).toEqual({
      claims: {
        "uid-a": {
          devices: [
            {
              request_names: ["vf"],
              pool_name: "node-1",
              device_name: "vf-of-claim-a",
              cdi_device_ids: [`${DRIVER}/vf=uid-a`],
            },
          ],
          error: "",
        },
        "uid-b": {
          devices: [
            {
              request_names: ["vf"],
              pool_name: "node-1",
              device_name: "vf-of-claim-b",
              cdi_device_ids: [`${DRIVER}/vf=uid-b`],
            },
          ],
          error: "",
        },
      },
    });
    expect(preparer.prepared).toEqual([[claimA, claimB]]);

    const unprepared = await kubelet.unprepare(plugin.draSocket, version, [claimA]);
    expect(unprepared).toEqual({ claims: { "uid-a": { error: "" } } });
    expect(preparer.unprepared).toEqual([[claimA]]);
  });

  it("answers every claim, with per-claim errors instead of a failed call", async () => {
    const { plugin } = await start();
    preparer.onPrepare = async () =>
      new Map<string, PrepareOutcome>([["uid-a", { error: "VF 0000:3b:02.1 vanished" }]]);
    preparer.onUnprepare = async () =>
      new Map<string, UnprepareOutcome>([["uid-b", { error: "netns busy" }]]);

    const prepared = await kubelet.prepare(plugin.draSocket, "v1", [claimA, claimB]);
    expect(prepared.claims["uid-a"]).toEqual({ devices: [], error: "VF 0000:3b:02.1 vanished" });
    expect(prepared.claims["uid-b"]!.error).toMatch(/no prepare result for claim team-b\/claim-b/);

    const unprepared = await kubelet.unprepare(plugin.draSocket, "v1beta1", [claimA, claimB]);
    expect(unprepared.claims["uid-b"]).toEqual({ error: "netns busy" });
    expect(unprepared.claims["uid-a"]!.error).toMatch(
      /no unprepare result for claim default\/claim-a/,
    );
  });

  it("refuses claims whose UID, namespace or name could form a path or URL, before the driver sees them", async () => {
    const { plugin } = await start();
    const hostile = [
      { namespace: "default", name: "claim-x", uid: "../../../etc/cdi/other" },
      { namespace: "../../../api/v1/secrets", name: "claim-y", uid: "uid-y" },
      { namespace: "default", name: "a/b", uid: "uid-z" },
      { namespace: "default", name: "claim-w", uid: "" },
    ];
    const prepared = await kubelet.prepare(plugin.draSocket, "v1", [claimA, ...hostile]);
    const unprepared = await kubelet.unprepare(plugin.draSocket, "v1", [claimA, ...hostile]);
    expect(preparer.prepared).toEqual([[claimA]]);
    expect(preparer.unprepared).toEqual([[claimA]]);
    for (const answer of [prepared, unprepared]) {
      expect(answer.claims["uid-a"]!.error).toBe("");
      for (const claim of hostile) {
        expect(answer.claims[claim.uid]!.error).toMatch(
          /^refused: the kubelet named claim .* not a valid/,
        );
      }
    }
  });

  it("turns an exception into an error for each claim, naming it", async () => {
    const { plugin } = await start();
    preparer.onPrepare = () => Promise.reject(new Error("checkpoint is corrupt"));
    preparer.onUnprepare = () => {
      throw new TypeError("bug");
    };

    const prepared = await kubelet.prepare(plugin.draSocket, "v1", [claimA, claimB]);
    expect(prepared.claims).toEqual({
      "uid-a": {
        devices: [],
        error: "prepare of claim default/claim-a (uid-a) failed: checkpoint is corrupt",
      },
      "uid-b": {
        devices: [],
        error: "prepare of claim team-b/claim-b (uid-b) failed: checkpoint is corrupt",
      },
    });
    const unprepared = await kubelet.unprepare(plugin.draSocket, "v1", [claimB]);
    expect(unprepared.claims["uid-b"]!.error).toBe(
      "unprepare of claim team-b/claim-b (uid-b) failed: bug",
    );

    // The plugin keeps serving after an exception.
    preparer.onPrepare = new FakePreparer().onPrepare;
    expect((await kubelet.prepare(plugin.draSocket, "v1", [claimA])).claims["uid-a"]!.error).toBe(
      "",
    );
  });

  it("answers an empty request with no claims", async () => {
    const { plugin } = await start();
    expect(await kubelet.prepare(plugin.draSocket, "v1", [])).toEqual({ claims: {} });
    expect(preparer.prepared).toEqual([[]]);
  });

  it("passes concurrent kubelet calls to the driver concurrently", async () => {
    const { plugin } = await start();
    // Each call waits inside the driver until the other has entered too: calls handled one
    // after the other would never both get in, and the test would time out.
    let entered = 0;
    let bothIn!: () => void;
    const together = new Promise<void>((resolve) => (bothIn = resolve));
    const slow = new FakePreparer().onPrepare;
    preparer.onPrepare = async (claims, signal) => {
      if (++entered === 2) bothIn();
      await together;
      return slow(claims, signal);
    };
    await Promise.all([
      kubelet.prepare(plugin.draSocket, "v1", [claimA]),
      kubelet.prepare(plugin.draSocket, "v1beta1", [claimB]),
    ]);
    expect(entered).toBe(2);
    expect(preparer.prepared).toHaveLength(2);
  });

  it("tells the driver when the kubelet gives up on a call", async () => {
    const { plugin } = await start();
    const aborted = new Promise<unknown>((resolve) => {
      preparer.onPrepare = (_claims, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            resolve(signal.reason);
            reject(signal.reason as Error);
          });
        });
    });
    await expect(kubelet.prepare(plugin.draSocket, "v1", [claimA], 100)).rejects.toMatchObject({
      code: status.DEADLINE_EXCEEDED,
    });
    expect(String(await aborted)).toMatch(/the kubelet cancelled the call/);
  });

  it("makes both sockets accessible to their owner only", async () => {
    const { plugin } = await start();
    expect(fs.statSync(plugin.registrationSocket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(plugin.draSocket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(plugin.draSocket).isSocket()).toBe(true);
  });

  it("removes its own stale sockets at start and leaves live and foreign ones", async () => {
    const pluginDir = path.join(pluginsDir, DRIVER);
    fs.mkdirSync(pluginDir, { recursive: true });
    await deadSocket(path.join(registryDir, `${DRIVER}-reg.sock`));
    await deadSocket(path.join(registryDir, `${DRIVER}-crashed-pod-reg.sock`));
    await deadSocket(path.join(registryDir, "gpu.example.com-reg.sock"));
    await deadSocket(path.join(pluginDir, "dra-crashed-pod.sock"));
    fs.writeFileSync(path.join(registryDir, `${DRIVER}-notes-reg.sock`), "not a socket");
    const otherPod = net.createServer();
    await new Promise<void>((resolve) =>
      otherPod.listen(path.join(registryDir, `${DRIVER}-running-pod-reg.sock`), resolve),
    );
    cleanups.push(() => new Promise<void>((resolve) => otherPod.close(() => resolve())));

    const { plugin } = await start({ podUid: POD_UID });

    expect(fs.readdirSync(registryDir).sort()).toEqual(
      [
        path.basename(plugin.registrationSocket),
        `${DRIVER}-notes-reg.sock`,
        `${DRIVER}-running-pod-reg.sock`,
        "gpu.example.com-reg.sock",
      ].sort(),
    );
    expect(fs.readdirSync(pluginDir)).toEqual([path.basename(plugin.draSocket)]);
  });

  it("takes over its fixed-name sockets left by a crashed instance", async () => {
    await deadSocket(path.join(registryDir, `${DRIVER}-reg.sock`));
    const { plugin } = await start();
    const { info } = await kubelet.register(plugin.registrationSocket);
    expect(info.name).toBe(DRIVER);
  });

  it("uses per-pod socket names so two pods of a rolling update serve side by side", async () => {
    const { plugin: oldPod } = await start({ podUid: "old-pod-uid" });
    const newPreparer = new FakePreparer();
    const { plugin: newPod } = await start({ podUid: POD_UID, preparer: newPreparer });
    expect(oldPod.registrationSocket).toBe(
      path.join(registryDir, `${DRIVER}-old-pod-uid-reg.sock`),
    );
    expect(newPod.registrationSocket).toBe(path.join(registryDir, `${DRIVER}-${POD_UID}-reg.sock`));
    expect(newPod.draSocket).toBe(path.join(pluginsDir, DRIVER, `dra-${POD_UID}.sock`));

    const { info } = await kubelet.register(newPod.registrationSocket);
    expect(info.endpoint).toBe(newPod.draSocket);
    await kubelet.register(oldPod.registrationSocket);
    await kubelet.prepare(newPod.draSocket, "v1", [claimA]);
    await kubelet.prepare(oldPod.draSocket, "v1", [claimB]);
    expect(newPreparer.prepared).toEqual([[claimA]]);
    expect(preparer.prepared).toEqual([[claimB]]);

    await oldPod.stop();
    expect(fs.existsSync(oldPod.registrationSocket)).toBe(false);
    expect(fs.existsSync(oldPod.draSocket)).toBe(false);
    expect(fs.existsSync(newPod.registrationSocket)).toBe(true);
    expect((await kubelet.prepare(newPod.draSocket, "v1", [claimB])).claims["uid-b"]!.error).toBe(
      "",
    );
  });

  it("re-creates the registration socket after the kubelet reports a failure", async () => {
    const { plugin, metrics } = await start({ reRegisterDelay: { initialMs: 20, maxMs: 100 } });
    await kubelet.register(plugin.registrationSocket);
    expect(plugin.registered).toBe(true);
    // A new socket file. The file system may hand out the same inode number again, so
    // compare change times (set when the socket is created and chmod-ed).
    const firstSocket = fs.statSync(plugin.registrationSocket).ctimeMs;

    await expect(
      kubelet.register(plugin.registrationSocket, "plugin name already registered"),
    ).rejects.toThrow(/registration rejected/);
    expect(plugin.registered).toBe(false);

    kubelet.close();
    await vi.waitFor(
      () => {
        const stat = fs.statSync(plugin.registrationSocket, { throwIfNoEntry: false });
        expect(stat?.isSocket() && stat.ctimeMs !== firstSocket).toBe(true);
        expect(stat!.mode & 0o777).toBe(0o600);
      },
      { timeout: 2_000, interval: 10 },
    );

    await kubelet.register(plugin.registrationSocket);
    expect(plugin.registered).toBe(true);
    const parsed = parsePrometheusText(metrics.render());
    expect(sampleValue(parsed, "dra_sriov_kubelet_registered")).toBe(1);
  });

  it("answers gRPC health checks on the DRA socket", async () => {
    const { plugin } = await start();
    expect(await kubelet.checkHealth(plugin.draSocket, "")).toEqual({ status: "SERVING" });
    expect(
      await kubelet.checkHealth(plugin.draSocket, "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin"),
    ).toEqual({ status: "SERVING" });
    expect(
      await kubelet.checkHealth(plugin.draSocket, "k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin"),
    ).toEqual({ status: "SERVING" });
    await expect(kubelet.checkHealth(plugin.draSocket, "no.such.Service")).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });

  it("counts calls and claim errors in its metrics", async () => {
    const { plugin, metrics } = await start();
    await kubelet.prepare(plugin.draSocket, "v1", [claimA]);
    await kubelet.prepare(plugin.draSocket, "v1", [claimB]);
    preparer.onUnprepare = async () => new Map([["uid-a", { error: "busy" }]]);
    await kubelet.unprepare(plugin.draSocket, "v1beta1", [claimA, claimB]);

    const parsed = parsePrometheusText(metrics.render());
    const requests = (operation: string, api_version: string, result: string) =>
      sampleValue(parsed, "dra_sriov_node_requests_total", { operation, api_version, result });
    expect(requests("prepare", "v1", "success")).toBe(2);
    expect(requests("unprepare", "v1beta1", "error")).toBe(1);
    expect(requests("prepare", "v1", "error")).toBeUndefined();
    expect(
      sampleValue(parsed, "dra_sriov_node_claim_errors_total", { operation: "unprepare" }),
    ).toBe(2);
    expect(
      sampleValue(parsed, "dra_sriov_node_request_duration_seconds_count", {
        operation: "prepare",
      }),
    ).toBe(2);
  });

  it("lets a running call finish when stopping, then removes both sockets", async () => {
    const { plugin } = await start();
    await kubelet.register(plugin.registrationSocket);
    let release: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      const answer = new FakePreparer().onPrepare;
      preparer.onPrepare = async (claims, signal) => {
        resolve();
        await new Promise<void>((done) => (release = done));
        return answer(claims, signal);
      };
    });
    const call = kubelet.prepare(plugin.draSocket, "v1", [claimA]);
    await started;
    const stopped = plugin.stop();
    await vi.waitFor(() => expect(fs.existsSync(plugin.registrationSocket)).toBe(false));
    expect(plugin.registered).toBe(false);
    release();
    expect((await call).claims["uid-a"]!.error).toBe("");
    await stopped;
    expect(fs.existsSync(plugin.draSocket)).toBe(false);
  });

  it("cuts off calls that outlast the stop grace period and tells the driver", async () => {
    const { plugin } = await start({ stopGraceMs: 50 });
    let driverSignal: AbortSignal | undefined;
    preparer.onPrepare = (_claims, signal) => {
      driverSignal = signal;
      return new Promise(() => undefined);
    };
    const call = kubelet.prepare(plugin.draSocket, "v1", [claimA]).catch((e: unknown) => e);
    await vi.waitFor(() => expect(driverSignal).toBeDefined());
    await plugin.stop();
    expect(driverSignal!.aborted).toBe(true);
    const error = (await call) as ServiceError;
    expect([status.UNAVAILABLE, status.CANCELLED]).toContain(error.code);
    expect(fs.existsSync(plugin.draSocket)).toBe(false);
  });

  it("tells the operator to mount the registry directory when it is missing", async () => {
    await expect(start({ registryDir: path.join(root, "missing") })).rejects.toThrow(
      /plugin registry directory .*missing does not exist: mount the host's \/var\/lib\/kubelet\/plugins_registry/,
    );
  });
});
