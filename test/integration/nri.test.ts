import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNriPlugin, type NriPlugin, type PodSandbox } from "../../lib/nri/index.js";
import { CriClient, type PodSandboxConfig } from "../support/cri/client.js";
import {
  containerdDown,
  containerdUp,
  newStateDir,
  processAlive,
  type ContainerdEnv,
} from "../support/cri/containerd.js";

interface Seen {
  event: "synchronize" | "run" | "stop" | "remove";
  pods: PodSandbox[];
}

/**
 * Our NRI plugin against a real containerd 2.x (hack/containerd.sh): registration,
 * configuration and synchronization by containerd's own NRI, the pod sandbox events CRI
 * calls cause, a handler's error failing the sandbox, and reconnecting after containerd
 * restarts. containerd calls NRI inside the CRI call that causes the event, so an event
 * has reached the handlers by the time that CRI call returns.
 */
describe("the NRI plugin with containerd", () => {
  let stateDir: string;
  let env: ContainerdEnv;
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
   * Kills containerd and starts it again on the same state, as a crash and a restart by
   * systemd would: the pods keep running in their shims. hack/containerd.sh up would wipe
   * the state, so this starts containerd as the script does, under the script's PID file
   * (`down` finds it there).
   */
  async function restartContainerd(): Promise<void> {
    process.kill(env.pid, "SIGKILL");
    while (processAlive(env.pid) || plugin.connected()) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const log = fs.openSync(env.logFile, "a");
    const child = spawn(
      path.join(env.containerdBinDir, "containerd"),
      ["--config", env.configFile],
      {
        detached: true,
        stdio: ["ignore", log, log],
      },
    );
    child.unref();
    fs.closeSync(log);
    if (child.pid === undefined) throw new Error("containerd did not start again");
    fs.writeFileSync(path.join(env.stateDir, "containerd.pid"), String(child.pid));
    env = { ...env, pid: child.pid };
  }

  beforeAll(async () => {
    stateDir = newStateDir();
    env = containerdUp(stateDir);
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
    if (stateDir) containerdDown(stateDir);
  });

  it("is registered, configured with containerd's request timeout and synchronized", () => {
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

  it("reconnects after containerd restarts and synchronizes the pods that kept running", async () => {
    const survivor = await cri.runPodSandbox(podConfig("survivor"));
    const synchronizations = seen.filter((entry) => entry.event === "synchronize").length;

    await restartContainerd();
    await plugin.whenSynchronized();

    const resync = seen.filter((entry) => entry.event === "synchronize");
    expect(resync).toHaveLength(synchronizations + 1);
    expect(resync.at(-1)!.pods.map((pod) => [pod.id, pod.name])).toEqual([[survivor, "survivor"]]);

    // containerd keeps what it told NRI plugins about pods in memory only: after its
    // restart it sends no stop or removal for pods from before (only Synchronize has them).
    await cri.stopPodSandbox(survivor);
    await cri.removePodSandbox(survivor);
    expect(eventsOf("survivor").map((entry) => entry.event)).toEqual(["run"]);

    // Pods started after the restart get every event again.
    const fresh = await cri.runPodSandbox(podConfig("fresh"));
    await cri.stopPodSandbox(fresh);
    await cri.removePodSandbox(fresh);
    expect(eventsOf("fresh").map((entry) => entry.event)).toEqual(["run", "stop", "remove"]);
  });
});
