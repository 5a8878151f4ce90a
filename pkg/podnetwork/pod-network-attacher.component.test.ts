import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointStore } from "../../lib/checkpoint/checkpoint.js";
import { CheckpointedMap } from "../../lib/checkpoint/checkpointed-map.js";
import { InterProcessLock } from "../../lib/checkpoint/file-lock.js";
import type { CniConfigList } from "../../lib/cni/config.js";
import type { CniRuntime } from "../../lib/cni/invocation.js";
import type { CniResult } from "../../lib/cni/result.js";
import type { DeviceStatus } from "../claimstatus/claim-status.js";
import { preparedClaim, preparedVf } from "../prepare/testing/fixtures.js";
import type { ClaimOfPod, SandboxAttachment, SandboxRef } from "./attachment.js";
import type { AttachedNetwork, PodRef } from "../multus/network-status.js";
import {
  PodNetworkAttacher,
  type CniRunner,
  type PodNetworkAttacherOptions,
} from "./pod-network-attacher.js";

const DRIVER = "sriovnetwork.openshift.io";
const network = (name: string): CniConfigList => ({
  cniVersion: "1.0.0",
  name,
  plugins: [{ type: "sriov" }],
});

/**
 * A CNI that records what it is asked and answers like a plugin moving the VF in: the
 * orchestration is what is under test here; the real plugins run in test/integration.
 */
class RecordingCni implements CniRunner {
  calls: { command: "ADD" | "DEL"; network: string; runtime: CniRuntime }[] = [];
  failAdd = new Set<string>();
  failDel = new Set<string>();
  add(config: CniConfigList, runtime: CniRuntime): Promise<CniResult> {
    this.calls.push({ command: "ADD", network: config.name, runtime });
    if (this.failAdd.has(runtime.ifName)) {
      return Promise.reject(new Error(`plugin sriov failed: no VF for ${runtime.ifName}`));
    }
    return Promise.resolve({
      cniVersion: "1.0.0",
      interfaces: [{ name: runtime.ifName, mac: "02:00:00:00:00:01", sandbox: runtime.netns }],
      ips: [{ address: `10.0.0.${this.calls.length}/24`, interface: 0 }],
    });
  }
  /** What DEL found at its netns path: the held namespace's content, or null. */
  seenByDel: (string | null)[] = [];
  del(config: CniConfigList, runtime: CniRuntime): Promise<void> {
    this.calls.push({ command: "DEL", network: config.name, runtime });
    this.seenByDel.push(runtime.netns === "" ? null : fs.readFileSync(runtime.netns, "utf8"));
    if (this.failDel.has(runtime.ifName)) return Promise.reject(new Error("DEL failed"));
    return Promise.resolve();
  }
  summary() {
    return this.calls.map(({ command, runtime }) => `${command} ${runtime.ifName}`);
  }
}

describe("PodNetworkAttacher", () => {
  let dir: string;
  let netns: string;
  let cni: RecordingCni;
  let claims: ClaimOfPod[];
  let statusWrites: { uid: string; devices: DeviceStatus[] }[];
  let checkpointFile: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pod-network-"));
    netns = path.join(dir, "netns-1");
    fs.writeFileSync(netns, "");
    checkpointFile = path.join(dir, "attachments.json");
    cni = new RecordingCni();
    statusWrites = [];
    claims = [
      {
        uid: "claim-a",
        claim: preparedClaim({
          name: "a",
          podUids: ["pod-1"],
          devices: [
            preparedVf({ pciAddress: "0000:3b:02.0", ifName: "net1", cniConfig: network("red") }),
            // vfio for DPDK without a network: nothing to plug in.
            preparedVf({ pciAddress: "0000:3b:02.1", ifName: "net2", targetDriver: "vfio-pci" }),
          ],
        }),
      },
      {
        uid: "claim-b",
        claim: preparedClaim({
          name: "b",
          podUids: ["pod-1"],
          devices: [
            preparedVf({
              pciAddress: "0000:3b:02.2",
              ifName: "net3",
              cniConfig: network("blue"),
              runtimeConfig: { ips: ["192.168.1.5/24"] },
            }),
          ],
        }),
      },
    ];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const attachments = () => {
    const map = new CheckpointedMap<SandboxAttachment>(
      new CheckpointStore(checkpointFile, "boot"),
      new InterProcessLock(`${checkpointFile}.lock`),
    );
    map.load();
    return map;
  };
  const newAttacher = (
    hostProblems?: (claims: readonly ClaimOfPod[]) => string[],
    options: Partial<PodNetworkAttacherOptions> = {},
  ) =>
    new PodNetworkAttacher({
      ...(hostProblems ? { hostProblems } : {}),
      claims: {
        preparedClaimsOfPod: (podUid) =>
          claims.filter(({ claim }) => claim.podUids.includes(podUid)),
      },
      cni,
      attachments: attachments(),
      status: { write: (ref, devices) => statusWrites.push({ uid: ref.uid, devices }) },
      driverName: DRIVER,
      logger: pino({ level: "silent" }),
      now: () => new Date("2026-11-23T10:00:00.123Z"),
      ...options,
    });
  const sandbox = (fields: Partial<SandboxRef> = {}): SandboxRef => ({
    id: "sandbox-1",
    uid: "pod-1",
    namespace: "ns",
    name: "pod",
    netns,
    ...fields,
  });
  const stored = () => attachments().all();

  it("reports the pod's networks for its network-status annotation, where asked to", async () => {
    claims[0]!.claim.devices[0]!.netAttachDef = { namespace: "ns", name: "red" };
    claims[1]!.claim.devices[0]!.netAttachDef = { namespace: "other", name: "blue" };
    const written: { pod: PodRef; attached: readonly AttachedNetwork[] }[] = [];
    const attacher = newAttacher(undefined, {
      networkStatus: { write: (pod, attached) => written.push({ pod, attached }) },
    });
    await attacher.attach(sandbox());
    expect(written).toEqual([
      {
        pod: { namespace: "ns", name: "pod", uid: "pod-1" },
        attached: [
          {
            network: "ns/red",
            pciAddress: "0000:3b:02.0",
            podInterface: {
              interfaceName: "net1",
              ips: ["10.0.0.1/24"],
              hardwareAddress: "02:00:00:00:00:01",
            },
          },
          {
            network: "other/blue",
            pciAddress: "0000:3b:02.2",
            podInterface: {
              interfaceName: "net3",
              ips: ["10.0.0.2/24"],
              hardwareAddress: "02:00:00:00:00:01",
            },
          },
        ],
      },
    ]);
    // Attached already: nothing is written again.
    await attacher.attach(sandbox());
    expect(written).toHaveLength(1);
  });

  it("adds every VF with a network into the sandbox, with the pod's CNI args, and reports it on the claims", async () => {
    const report = await newAttacher().attach(sandbox());
    expect(report.interfaces).toBe(2);
    expect(cni.summary()).toEqual(["ADD net1", "ADD net3"]);
    expect(cni.calls[1]!.runtime).toEqual({
      containerId: "sandbox-1",
      netns,
      ifName: "net3",
      args: {
        K8S_POD_NAMESPACE: "ns",
        K8S_POD_NAME: "pod",
        K8S_POD_INFRA_CONTAINER_ID: "sandbox-1",
        K8S_POD_UID: "pod-1",
      },
      capabilityArgs: { ips: ["192.168.1.5/24"] },
    });
    expect(stored().get("sandbox-1")).toMatchObject({ state: "Attached", podUid: "pod-1" });
    expect(statusWrites.map((write) => write.uid)).toEqual(["claim-a", "claim-b"]);
    const [red, vfio] = statusWrites[0]!.devices;
    expect(red).toMatchObject({
      device: "0000-3b-02-0",
      data: { ifName: "net1" },
      networkData: {
        interfaceName: "net1",
        ips: ["10.0.0.1/24"],
        hardwareAddress: "02:00:00:00:00:01",
      },
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "NetworkAttached",
          lastTransitionTime: "2026-11-23T10:00:00Z",
        },
        { type: "NetworkReady", status: "True" },
      ],
    });
    expect(vfio).not.toHaveProperty("networkData");
    expect(vfio).not.toHaveProperty("conditions");
  });

  it("does nothing for a sandbox attached already, or one whose pod has no network to plug in", async () => {
    const attacher = newAttacher();
    await attacher.attach(sandbox());
    await attacher.attach(sandbox());
    expect(cni.summary()).toEqual(["ADD net1", "ADD net3"]);
    await attacher.attach(sandbox({ id: "sandbox-2", uid: "pod-without-claims" }));
    expect(cni.calls).toHaveLength(2);
    expect(stored().has("sandbox-2")).toBe(false);
  });

  it("lets only one of two plugin instances (a rolling update) attach a sandbox", async () => {
    const reports = await Promise.all([
      newAttacher().attach(sandbox()),
      newAttacher().attach(sandbox()),
    ]);
    expect(reports.map((report) => report.interfaces).sort()).toEqual([0, 2]);
    expect(cni.summary()).toEqual(["ADD net1", "ADD net3"]);
    expect(stored().get("sandbox-1")?.state).toBe("Attached");
  });

  it("undoes the VFs it added when one ADD fails, reports why, and fails the sandbox", async () => {
    cni.failAdd.add("net3");
    await expect(newAttacher().attach(sandbox())).rejects.toThrow(
      "cannot attach VF 0000:3b:02.2 of claim ns/b as net3 (network blue): plugin sriov failed: no VF for net3",
    );
    expect(cni.summary()).toEqual(["ADD net1", "ADD net3", "DEL net3", "DEL net1"]);
    expect(stored().size).toBe(0);
    const conditions = statusWrites.flatMap((write) =>
      write.devices.flatMap((device) => (device["conditions"] as { status: string }[]) ?? []),
    );
    expect(conditions.map((condition) => condition.status)).toEqual([
      "False",
      "False",
      "False",
      "False",
    ]);
    expect(
      statusWrites.every((write) => write.devices.every((device) => !("networkData" in device))),
    ).toBe(true);
  });

  it("refuses a sandbox whose claims the host no longer matches (a whole PF's VFs changed), before any ADD", async () => {
    const problem = "whole PF 0000:3b:00.0 had 8 VFs when the claim was prepared and has 4 now";
    const asked: string[][] = [];
    const attacher = newAttacher((pod) => {
      asked.push(pod.map(({ uid }) => uid));
      return [problem];
    });
    await expect(attacher.attach(sandbox())).rejects.toThrow(problem);
    expect(asked).toEqual([["claim-a", "claim-b"]]);
    expect(cni.calls).toEqual([]);
    expect(stored().size).toBe(0);
    const conditions = statusWrites.flatMap((write) =>
      write.devices.flatMap(
        (device) => (device["conditions"] as { type: string; message?: string }[]) ?? [],
      ),
    );
    const networkReady = conditions.filter((condition) => condition.type === "NetworkReady");
    expect(networkReady).toHaveLength(2);
    for (const condition of networkReady) expect(condition.message).toContain(problem);
    // Without a problem the same sandbox goes in.
    expect((await newAttacher(() => []).attach(sandbox())).interfaces).toBe(2);
  });

  it("refuses a host-network pod whose VFs have networks, touching nothing", async () => {
    await expect(newAttacher().attach(sandbox({ netns: "" }))).rejects.toThrow(
      "pod ns/pod runs on the host network",
    );
    expect(cni.calls).toEqual([]);
    expect(stored().size).toBe(0);
  });

  it("deletes in reverse order on detach, keeps the entry while a DEL fails, and retries", async () => {
    const attacher = newAttacher();
    await attacher.attach(sandbox());
    cni.calls = [];
    cni.failDel.add("net3");
    await expect(attacher.detach({ id: "sandbox-1" })).rejects.toThrow(
      "cannot detach net3 (VF 0000:3b:02.2): DEL failed",
    );
    expect(cni.summary()).toEqual(["DEL net3", "DEL net1"]);
    expect(stored().has("sandbox-1")).toBe(true);
    cni.failDel.clear();
    await attacher.detach({ id: "sandbox-1" });
    expect(stored().size).toBe(0);
    await attacher.detach({ id: "sandbox-1" });
    expect(cni.summary()).toEqual(["DEL net3", "DEL net1", "DEL net3", "DEL net1"]);
  });

  it("detaches the sandboxes holding a claim's VFs when the claim is unprepared", async () => {
    const attacher = newAttacher();
    await attacher.attach(sandbox());
    cni.calls = [];
    await attacher.detachClaim("claim-unknown");
    expect(cni.calls).toEqual([]);
    await attacher.detachClaim("claim-b");
    expect(cni.summary()).toEqual(["DEL net3", "DEL net1"]);
    expect(stored().size).toBe(0);
  });

  it("keeps the sandbox's namespace for DEL when the runtime removed it without telling", async () => {
    const attacher = newAttacher();
    await attacher.attach(sandbox());
    fs.writeFileSync(netns, "namespace of sandbox-1");
    fs.rmSync(netns);
    await attacher.detach({ id: "sandbox-1" });
    const paths = cni.calls
      .filter((call) => call.command === "DEL")
      .map((call) => call.runtime.netns);
    expect(paths[0]).toMatch(/^\/proc\/\d+\/fd\/\d+$/);
    expect(cni.seenByDel).toEqual(["namespace of sandbox-1", "namespace of sandbox-1"]);
    // Released once detached.
    expect(fs.existsSync(paths[0]!)).toBe(false);
  });

  it("passes no netns to DEL when neither the runtime's nor a held namespace is left", async () => {
    await newAttacher().attach(sandbox());
    fs.rmSync(netns);
    // A restarted plugin holds nothing.
    await newAttacher().detach({ id: "sandbox-1" });
    expect(
      cni.calls.filter((call) => call.command === "DEL").map((call) => call.runtime.netns),
    ).toEqual(["", ""]);
  });

  describe("synchronize", () => {
    it("detaches sandboxes that are gone and attaches running ones that started while it was away", async () => {
      await newAttacher().attach(sandbox({ id: "gone" }));
      cni.calls = [];
      // A restarted plugin: sandbox-1 started meanwhile; "gone" was removed.
      await newAttacher().synchronize([sandbox()]);
      expect(
        cni.calls.map(
          ({ command, runtime }) => `${command} ${runtime.containerId} ${runtime.ifName}`,
        ),
      ).toEqual(["DEL gone net3", "DEL gone net1", "ADD sandbox-1 net1", "ADD sandbox-1 net3"]);
      expect([...stored().keys()]).toEqual(["sandbox-1"]);
    });

    it("redoes an attach a crash interrupted, and leaves attached and not-yet-started pods alone", async () => {
      const interrupted = attachments();
      await interrupted.update((entries) =>
        entries.set("sandbox-1", {
          podUid: "pod-1",
          namespace: "ns",
          name: "pod",
          netns,
          state: "Attaching",
          interfaces: [],
        }),
      );
      claims.push({
        uid: "claim-c",
        claim: preparedClaim({
          podUids: ["pod-not-started"],
          devices: [preparedVf({ cniConfig: network("green") })],
        }),
      });
      const attacher = newAttacher();
      await attacher.synchronize([sandbox()]);
      expect(cni.summary()).toEqual(["ADD net1", "ADD net3"]);
      expect(stored().get("sandbox-1")?.state).toBe("Attached");
      await attacher.synchronize([sandbox()]);
      expect(cni.calls).toHaveLength(2);
    });

    it("skips a listed sandbox whose network namespace is gone (stopped, not yet removed)", async () => {
      await newAttacher().synchronize([sandbox({ netns: path.join(dir, "no-such-netns") })]);
      expect(cni.calls).toEqual([]);
    });
  });
});
