// tsyringe (in pkg/node) needs the Reflect metadata API before it loads; this file is the entry.
import "reflect-metadata";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeClient, type KubeObject, type KubeRequest } from "../../lib/kube/client.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { EmulatedKernel } from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import { startNodeDaemon, type NodeDaemon } from "../../pkg/node/daemon.js";
import {
  allocateForPod,
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  testClient,
  waitFor,
} from "./kube.js";
import { startKubeletNode } from "./emulated-node.js";

const DRIVER = "sriovnetwork.openshift.io";
const ON_IAVF = `device.attributes["${DRIVER}"].driver == "iavf"`;

interface Claim extends KubeObject {
  status?: { devices?: { device: string; data?: { ifName?: string } }[] };
}

/**
 * The node daemon built in this process by the same composition production uses
 * (pkg/node), on an emulated host against the real API server, with one part swapped
 * through its override hook: an API client that records every request the daemon makes.
 */
describe("the node daemon, composed in process", () => {
  let client: KubeClient;
  let tmp: string;
  let paths: HostPaths;
  let kernel: EmulatedKernel;
  let kubelet: FakeKubelet;
  let nodeName: string;
  let namespace: string;
  let daemon: NodeDaemon | undefined;
  const requests: { method: string; path: string }[] = [];

  const draSocket = () => path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");
  const registrationSocket = () => path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`);

  beforeAll(async () => {
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "node-daemon-"));
    const root = path.join(tmp, "host");
    ({ paths, kernel, kubelet, nodeName, namespace } = await startKubeletNode(
      client,
      root,
      "in-process",
    ));
    daemon = await startNodeDaemon({
      driverName: DRIVER,
      nodeName,
      hostRoot: root,
      kubeconfig: inject("kubeconfig"),
      namespace,
      cdiRoot: "/var/run/cdi",
      kubeletDir: "/var/lib/kubelet",
      podUid: undefined,
      interfacePrefix: "net",
      allowCrossNamespaceNetworks: false,
      bindTimeoutMs: 5_000,
      rediscoveryIntervalSeconds: 60,
      publishHostUsedVfs: false,
      nriSocket: "",
      nriPluginIndex: "10",
      cniBinDirs: [],
      cniCacheDir: path.join(tmp, "cni-cache"),
      cniTimeoutMs: 0,
      healthPort: 0,
      deviceHealthIntervalMs: 1_000,
      unhealthyTaintEffect: "NoSchedule",
      logger: pino({ level: "silent" }),
      override: (scope) => {
        const recorded = KubeClient.load(inject("kubeconfig"));
        const send = recorded.request.bind(recorded);
        recorded.request = <T>(request: KubeRequest): Promise<T> => {
          requests.push({ method: request.method, path: request.path });
          return send<T>(request);
        };
        scope.register(KubeClient, { useValue: recorded });
      },
    });
    await waitFor("registration with the kubelet", async () =>
      fs.existsSync(registrationSocket())
        ? kubelet.register(registrationSocket()).then(
            () => true,
            () => undefined,
          )
        : undefined,
    );
    await waitFor("the daemon's slices", async () =>
      (await listNodeSlices(client, DRIVER, nodeName)).length > 0 ? true : undefined,
    );
  }, 120_000);

  afterAll(async () => {
    kubelet?.close();
    await daemon?.stop();
    await kernel?.stop();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("prepares with one read of the claim and no slice listing, and has written the claim's status when it stops", async () => {
    const claim = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [
          {
            name: "vf",
            exactly: { deviceClassName: DRIVER, selectors: [{ cel: { expression: ON_IAVF } }] },
          },
        ],
      },
    );
    const claimPath = `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`;
    const before = requests.length;
    const wire = { namespace: claim.namespace, name: claim.name, uid: claim.uid };
    const answer = (await kubelet.prepare(draSocket(), "v1", [wire])).claims[claim.uid]!;
    expect(answer.error ?? "").toBe("");
    const duringPrepare = requests.slice(before);
    // The resourceName of each device comes from what the publisher holds in memory.
    expect(duringPrepare.filter((r) => r.path.includes("/resourceslices"))).toEqual([]);

    // Stopped right away, it waits for the claim status writes it started (one writer).
    await daemon!.stop();
    daemon = undefined;
    // Prepare reads the claim once; the status writer patches its status on that read (its
    // resourceVersion makes the patch conditional), without reading it again.
    expect(
      requests
        .slice(before)
        .filter((r) => r.path.startsWith(claimPath))
        .map((r) => `${r.method} ${r.path.slice(claimPath.length) || "/"}`),
    ).toEqual(["GET /", "PATCH /status"]);
    const written = await client.request<Claim>({ method: "GET", path: claimPath });
    expect(written.status?.devices?.map((device) => device.data?.ifName)).toEqual(["net1"]);
  });
});
