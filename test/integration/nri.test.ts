import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNriPlugin, type NriPlugin, type PodSandbox } from "../../lib/nri/index.js";
import { CriClient, type PodSandboxConfig } from "../support/cri/client.js";
import { processAlive } from "../support/cri/containerd.js";
import {
  newStateDir,
  runtimeDown,
  runtimeRestart,
  runtimeTitle,
  runtimeUp,
  testRuntime,
  type RuntimeEnv,
} from "../support/cri/runtime.js";

interface Seen {
  event: "synchronize" | "run" | "stop" | "remove";
  pods: PodSandbox[];
}

const runtime = testRuntime();

/**
 * Our NRI plugin against a real container runtime: containerd 2.x (hack/containerd.sh) or,
 * with DRA_SRIOV_RUNTIME=crio, CRI-O (hack/crio.sh). Registration, configuration and
 * synchronization by the runtime's own NRI, the pod sandbox events CRI calls cause, a
 * handler's error failing the sandbox, and reconnecting after the runtime restarts. Both
 * call NRI inside the CRI call that causes the event, so an event has reached the handlers
 * by the time that CRI call returns.
 */
describe(`the NRI plugin with ${runtimeTitle(runtime)}`, () => {
  let stateDir: string;
  let env: RuntimeEnv;
  let cri: CriClient;
  let plugin: NriPlugin;
  const seen: Seen[] = [];
  /** Pod names whose RunPodSandbox the handler refuses. */
  const refuse = new Set<string>();

  const record = async (event: Seen["event"], pods: PodSandbox[]) => {
    seen.push({ event, pods });
  };

  /** The events the handlers got for the pod named `name`, in order. */
  const eventsOf = (name: string) =>
    seen
      .filter((entry) => entry.event !== "synchronize")
      .filter((entry) => entry.pods.some((pod) => pod.name === name));

  function podConfig(name: string): PodSandboxConfig {
    return {
      metadata: { name, uid: randomUUID(), namespace: "dra-sriov-nri", attempt: 0 },
      hostname: name,
      labels: { app: name },
      linux: {
        security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    };
  }

  /**
   * Kills the runtime and starts it again on the same state, as a crash and a restart by
   * systemd would: the pods keep running (in containerd's shims, under CRI-O's conmon). The
   * plugin has seen its connection go before the runtime comes back.
   */
  async function restartRuntime(): Promise<void> {
    process.kill(env.pid, "SIGKILL");
    while (processAlive(env.pid) || plugin.connected()) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    env = await runtimeRestart(runtime, stateDir);
  }

  beforeAll(async () => {
    stateDir = newStateDir();
    env = runtimeUp(runtime, stateDir);
    cri = new CriClient(env.criSocket);
    plugin = startNriPlugin({
      socketPath: env.nriSocket,
      pluginName: "dra-sriov-test",
      pluginIndex: "10",
      logger: pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" }),
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      handlers: {
        synchronize: (pods) => record("synchronize", pods),
        runPodSandbox: async (pod) => {
          await record("run", [pod]);
          if (refuse.has(pod.name)) throw new Error(`no VF for ${pod.name}`);
        },
        stopPodSandbox: (pod) => record("stop", [pod]),
        removePodSandbox: (pod) => record("remove", [pod]),
      },
    });
    await plugin.whenSynchronized();
  });

  afterAll(async () => {
    await plugin?.stop();
    cri?.close();
    if (stateDir) runtimeDown(runtime, stateDir);
  });

  it("is registered, configured with the runtime's request timeout and synchronized", () => {
    expect(plugin.connected()).toBe(true);
    expect(plugin.requestTimeoutMs()).toBe(2_000);
    expect(seen).toEqual([{ event: "synchronize", pods: [] }]);
  });

  it("sees a pod sandbox start, stop and go away, with its network namespace", async () => {
    const config = podConfig("events");
    const id = await cri.runPodSandbox(config);
    const [started] = eventsOf("events");
    expect(started?.event).toBe("run");
    const pod = started!.pods[0]!;
    expect(pod).toMatchObject({
      id,
      name: "events",
      namespace: "dra-sriov-nri",
      uid: config.metadata.uid,
      labels: { app: "events" },
    });
    const netns = pod.namespaces.find((namespace) => namespace.type === "network");
    expect(netns?.path.startsWith(`${stateDir}/`)).toBe(true);
    expect(fs.existsSync(netns!.path)).toBe(true);

    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
    expect(eventsOf("events").map((entry) => [entry.event, entry.pods[0]!.id])).toEqual([
      ["run", id],
      ["stop", id],
      ["remove", id],
    ]);
  });

  it("fails the sandbox when the handler refuses it", async () => {
    refuse.add("refused");
    const error = await cri.runPodSandbox(podConfig("refused")).then(
      () => undefined,
      (failure: Error) => failure,
    );
    expect(error?.message).toContain(
      "RunPodSandbox of pod dra-sriov-nri/refused: no VF for refused",
    );
    expect(plugin.connected()).toBe(true);
    const left = await cri.listPodSandbox();
    expect(left.map((pod) => pod.metadata?.name)).not.toContain("refused");
  });

  it("reconnects after the runtime restarts and synchronizes the pods that kept running", async () => {
    const survivor = await cri.runPodSandbox(podConfig("survivor"));
    const synchronizations = seen.filter((entry) => entry.event === "synchronize").length;

    await restartRuntime();
    await plugin.whenSynchronized();

    const resync = seen.filter((entry) => entry.event === "synchronize");
    expect(resync).toHaveLength(synchronizations + 1);
    expect(resync.at(-1)!.pods.map((pod) => [pod.id, pod.name])).toEqual([[survivor, "survivor"]]);

    // containerd keeps what it told NRI plugins about pods in memory only: after its
    // restart it sends no stop or removal for pods from before (only Synchronize has them).
    // CRI-O restores its pods from disk and sends both, as for any other pod.
    await cri.stopPodSandbox(survivor);
    await cri.removePodSandbox(survivor);
    expect(eventsOf("survivor").map((entry) => entry.event)).toEqual(
      runtime === "crio" ? ["run", "stop", "remove"] : ["run"],
    );

    // Pods started after the restart get every event again.
    const fresh = await cri.runPodSandbox(podConfig("fresh"));
    await cri.stopPodSandbox(fresh);
    await cri.removePodSandbox(fresh);
    expect(eventsOf("fresh").map((entry) => entry.event)).toEqual(["run", "stop", "remove"]);
  });
});
