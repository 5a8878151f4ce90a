import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import { EmulatedKernel } from "../../pkg/emulator/index.js";
import { currentDriver } from "../../pkg/host/driver-binding.js";
import { HostPaths } from "../../pkg/host/paths.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import {
  allocateForPod,
  deleteIgnoringMissing,
  testClient,
  waitFor,
  listNodeSlices,
  deleteTestNamespace,
} from "./kube.js";
import { CLI, hasExited, startKubeletPlugin, stopProcess } from "./daemon.js";
import { startKubeletNode } from "./emulated-node.js";

const DRIVER = "sriovnetwork.openshift.io";

/**
 * The node daemon as operators run it: the built `kubelet-plugin` command in its own
 * process, talked to over its unix sockets the way the kubelet does, preparing claims the
 * real scheduler allocated on an emulated host whose kernel answers driver binds.
 */
describe("dra-driver-sriov kubelet-plugin", () => {
  let client: KubeClient;
  let tmp: string;
  let root: string;
  let paths: HostPaths;
  let kernel: EmulatedKernel;
  let kubelet: FakeKubelet;
  let nodeName: string;
  let namespace: string;
  let daemon: ChildProcess | undefined;
  let logFile: string;

  const registrationSocket = () => path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`);
  const draSocket = () => path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");
  const cdiFile = (uid: string) => path.join(paths.cdiRoot, `${DRIVER}-vf_${uid}.json`);

  /** Starts the daemon and waits until the kubelet could register it. */
  async function startDaemon(env: Record<string, string> = {}): Promise<void> {
    daemon = await startKubeletPlugin({
      args: [
        ...["--host-root", root, "--node-name", nodeName, "--namespace", namespace],
        ...["--kubeconfig", inject("kubeconfig"), "--health-port", "0"],
        ...["--bind-timeout-ms", "5000", "--rediscovery-interval-seconds", "1"],
        ...["--log-level", "debug"],
      ],
      logFile,
      kubelet,
      registrationSocket: registrationSocket(),
      env,
    });
  }

  const stopDaemon = () => stopProcess(daemon);

  /** How often the daemon's rediscovery found the host changed (a debug line each time). */
  const inventoryChanges = () =>
    fs
      .readFileSync(logFile, "utf8")
      .split("\n")
      .filter((line) => line.includes("the host's SR-IOV inventory changed")).length;

  const vfioClaim = () =>
    allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [
          {
            name: "vf",
            exactly: {
              deviceClassName: DRIVER,
              selectors: [
                { cel: { expression: `device.attributes["${DRIVER}"].driver == "iavf"` } },
              ],
            },
          },
        ],
        config: [
          {
            opaque: {
              driver: DRIVER,
              parameters: { apiVersion: API_VERSION, kind: "VfConfig", driver: "vfio-pci" },
            },
          },
        ],
      },
    );
  const publishedDriver = async (device: string) => {
    type Slice = KubeObject & {
      spec: { devices: { name: string; attributes: Record<string, { string?: string }> }[] };
    };
    const published = (await listNodeSlices<Slice>(client, DRIVER, nodeName))
      .flatMap((slice) => slice.spec.devices)
      .find((d) => d.name === device);
    return published?.attributes[`${DRIVER}/driver`]?.string;
  };
  const pciOf = (device: string) => device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kubelet-plugin-"));
    root = path.join(tmp, "host");
    logFile = path.join(tmp, "daemon.log");
    ({ paths, kernel, kubelet, nodeName, namespace } = await startKubeletNode(
      client,
      root,
      "daemon",
    ));
    await startDaemon();
    await waitFor("the daemon's slices", async () =>
      (await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined,
    );
  }, 120_000);

  afterAll(async () => {
    kubelet?.close();
    await stopDaemon();
    await kernel?.stop();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    if (process.env["KEEP_DAEMON_LOG"]) process.stderr.write(fs.readFileSync(logFile, "utf8"));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("prepares a vfio-pci claim over v1, answers v1beta1 the same, and unprepares it", async () => {
    const claim = await vfioClaim();
    const wire = { namespace: claim.namespace, name: claim.name, uid: claim.uid };
    const changesBeforePrepare = inventoryChanges();
    const v1 = await kubelet.prepare(draSocket(), "v1", [wire]);
    const answer = v1.claims[claim.uid]!;
    expect(answer.error ?? "").toBe("");
    const [device] = answer.devices;
    expect(device!.pool_name).toBe(nodeName);
    const pci = pciOf(device!.device_name);
    expect(device!.cdi_device_ids).toEqual([`${DRIVER}/vf=${pci}`]);
    expect(currentDriver(paths, pci)).toBe("vfio-pci");
    const spec = JSON.parse(fs.readFileSync(cdiFile(claim.uid), "utf8")) as {
      devices: { containerEdits: { deviceNodes?: { path: string }[] } }[];
    };
    const nodes = spec.devices
      .flatMap((d) => d.containerEdits.deviceNodes ?? [])
      .map((n) => n.path);
    expect(nodes).toContain("/dev/vfio/vfio");
    expect(nodes.some((p) => /^\/dev\/vfio\/\d+$/.test(p))).toBe(true);

    // Rediscovery (every second here) sees vfio-pci; the device keeps the attributes it
    // was allocated with, so it stays in its pool while the pod uses it.
    await waitFor("rediscovery to see the VF on vfio-pci", async () =>
      inventoryChanges() > changesBeforePrepare ? true : undefined,
    );
    expect(await publishedDriver(device!.device_name)).toBe("iavf");

    const v1beta1 = await kubelet.prepare(draSocket(), "v1beta1", [wire]);
    expect(v1beta1.claims[claim.uid]).toEqual(answer);

    const unprepared = await kubelet.unprepare(draSocket(), "v1", [wire]);
    expect(unprepared.claims[claim.uid]!.error ?? "").toBe("");
    expect(currentDriver(paths, pci)).toBe("iavf");
    expect(fs.existsSync(cdiFile(claim.uid))).toBe(false);
  });

  it("answers a claim that is not ours with a per-claim error, not a failed call", async () => {
    const response = await kubelet.prepare(draSocket(), "v1", [
      { namespace, name: "no-such-claim", uid: "0000-missing" },
    ]);
    expect(response.claims["0000-missing"]!.error).toMatch(/no-such-claim/);
  });

  it("is killed in the middle of a vfio bind and, restarted, leaves the host as before", async () => {
    const claim = await vfioClaim();
    const wire = { namespace: claim.namespace, name: claim.name, uid: claim.uid };
    expect(await stopDaemon()).toBe(0);
    await startDaemon({ DRA_SRIOV_FAULT: "after-driver-bound" });
    await expect(kubelet.prepare(draSocket(), "v1", [wire])).rejects.toThrow();
    await waitFor("the daemon to die at the fault", async () =>
      hasExited(daemon) ? true : undefined,
    );
    kubelet.close();
    kubelet = new FakeKubelet(loadKubeletProtos());
    await startDaemon();
    // Recovery ran before registration: the half-prepared claim is rolled back.
    expect(fs.existsSync(cdiFile(claim.uid))).toBe(false);
    const allIavf = ["0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:0a.0"].every(
      (pci) => currentDriver(paths, pci) === "iavf",
    );
    expect(allIavf).toBe(true);
    const retried = await kubelet.prepare(draSocket(), "v1", [wire]);
    expect(retried.claims[claim.uid]!.error ?? "").toBe("");
    await kubelet.unprepare(draSocket(), "v1", [wire]);
  });

  it("stops on SIGTERM with exit 0 and removes its sockets", async () => {
    expect(await stopDaemon()).toBe(0);
    expect(fs.existsSync(registrationSocket())).toBe(false);
    expect(fs.existsSync(draSocket())).toBe(false);
  });
});
