import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createPinnedPod,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";
import { CLI, startKubeletPlugin, stopProcess } from "./daemon.js";

const DRIVER = "sriovnetwork.openshift.io";
const TAINT_KEY = `${DRIVER}/unhealthy`;
const ON_ENS1F0 = `device.attributes["${DRIVER}"].PFName == "ens1f0"`;

interface Taint {
  key: string;
  value: string;
  effect: string;
  timeAdded?: string;
}
type Slice = KubeObject & { spec: { devices: { name: string; taints?: Taint[] }[] } };
interface Pod extends KubeObject {
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    resourceClaimStatuses?: { resourceClaimName?: string }[];
  };
}

/**
 * Device health as the scheduler sees it: the node daemon (the built CLI, on an emulated
 * X710 host) taints the VFs of a PF whose link went down; the real scheduler keeps claims
 * off them unless a request tolerates the taint, and places them again once it clears.
 */
describe("device health: taints for the scheduler", () => {
  let client: KubeClient;
  let tmp: string;
  let root: string;
  let paths: HostPaths;
  let kubelet: FakeKubelet;
  let nodeName: string;
  let namespace: string;
  let daemon: ChildProcess | undefined;

  const setPfLink = (carrier: string, operstate: string) => {
    const netDir = path.join(paths.pciDevice("0000:3b:00.0"), "net", "ens1f0");
    for (const [file, text] of [
      ["carrier", carrier],
      ["operstate", operstate],
    ] as const) {
      fs.rmSync(path.join(netDir, file), { force: true });
      fs.writeFileSync(path.join(netDir, file), `${text}\n`);
    }
  };
  const taintsByDevice = async () =>
    new Map(
      (await listNodeSlices<Slice>(client, DRIVER, nodeName))
        .flatMap((slice) => slice.spec.devices)
        .map((device) => [device.name, device.taints ?? []]),
    );

  const draSocket = () => path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");
  const claimEvents = async (claimName: string) =>
    (
      await client.request<{
        items: { reason: string; type: string; note: string; reportingController: string }[];
      }>({
        method: "GET",
        path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`regarding.name=${claimName},regarding.kind=ResourceClaim`)}`,
      })
    ).items;

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "device-health-"));
    root = path.join(tmp, "host");
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    paths = new HostPaths({ root });
    fs.mkdirSync(paths.kubeletRegistryDir, { recursive: true }); // the kubelet makes it
    setPfLink("1", "up");
    kubelet = new FakeKubelet(loadKubeletProtos());
    nodeName = uniqueName("health-node");
    namespace = uniqueName("health");
    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    daemon = await startKubeletPlugin({
      args: [
        ...["--host-root", root, "--node-name", nodeName, "--namespace", namespace],
        ...["--kubeconfig", inject("kubeconfig"), "--health-port", "0", "--nri-socket", ""],
        ...["--device-health-interval-ms", "200"],
      ],
      logFile: path.join(tmp, "daemon.log"),
      kubelet,
      registrationSocket: path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`),
    });
    await waitFor("the node's slices", async () =>
      (await taintsByDevice()).size > 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    await stopProcess(daemon);
    kubelet?.close();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("keeps new claims off a PF's VFs while its link is down unless they tolerate the taint, and places them again once it returns", async () => {
    const before = await taintsByDevice();
    expect([...before.values()].every((taints) => taints.length === 0)).toBe(true);
    const ens1f0Vfs = [...before.keys()].filter((name) => name.startsWith("0000-3b-02-"));

    // A pod already holds a VF of ens1f0: its claim is prepared.
    const holder = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [
          {
            name: "vf",
            exactly: { deviceClassName: DRIVER, selectors: [{ cel: { expression: ON_ENS1F0 } }] },
          },
        ],
      },
    );
    const holderWire = { namespace, name: holder.name, uid: holder.uid };
    const prepared = await kubelet.prepare(draSocket(), "v1", [holderWire]);
    expect(prepared.claims[holder.uid]!.error ?? "").toBe("");

    setPfLink("0", "down");
    const tainted = await waitFor("taints on ens1f0's VFs", async () => {
      const now = await taintsByDevice();
      return ens1f0Vfs.every((name) => (now.get(name) ?? []).length > 0) ? now : undefined;
    });
    for (const name of ens1f0Vfs) {
      expect(tainted.get(name)).toEqual([
        {
          key: TAINT_KEY,
          value: "PFLinkDown",
          effect: "NoSchedule",
          timeAdded: expect.any(String),
        },
      ]);
    }
    // The other port's VFs stay as they were.
    for (const [name, taints] of tainted) {
      if (!ens1f0Vfs.includes(name)) expect({ name, taints }).toEqual({ name, taints: [] });
    }

    // Its owner is told, on the claim.
    const warning = await waitFor("the Warning event on the held claim", async () =>
      (await claimEvents(holder.name)).find((event) => event.reason === "DeviceUnhealthy"),
    );
    expect(warning).toMatchObject({ type: "Warning", reportingController: DRIVER });
    expect(warning.note).toMatch(
      /unhealthy \(PFLinkDown\): PF ens1f0 \(0000:3b:00\.0\) has no link/,
    );

    // A claim that wants an ens1f0 VF and does not tolerate the taint waits.
    const pending = uniqueName("pending");
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaimTemplate",
        metadata: { name: pending },
        spec: {
          spec: {
            devices: {
              requests: [
                {
                  name: "vf",
                  exactly: {
                    deviceClassName: DRIVER,
                    selectors: [{ cel: { expression: ON_ENS1F0 } }],
                  },
                },
              ],
            },
          },
        },
      },
    });
    await createPinnedPod(
      client,
      { namespace, nodeName, name: pending },
      { resourceClaimTemplateName: pending },
    );
    const unschedulable = await waitFor("the scheduler to give up on the pod", async () => {
      const pod = await client.request<Pod>({
        method: "GET",
        path: `/api/v1/namespaces/${namespace}/pods/${pending}`,
      });
      return pod.status?.conditions?.find(
        (condition) => condition.type === "PodScheduled" && condition.reason === "Unschedulable",
      );
    });
    process.stderr.write(`scheduler on a tainted VF: ${unschedulable.message ?? ""}\n`);

    // One that tolerates it gets a VF of ens1f0.
    const tolerating = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [
          {
            name: "vf",
            exactly: {
              deviceClassName: DRIVER,
              selectors: [{ cel: { expression: ON_ENS1F0 } }],
              tolerations: [{ key: TAINT_KEY, operator: "Exists", effect: "NoSchedule" }],
            },
          },
        ],
      },
    );
    const claim = await client.request<
      KubeObject & { status: { allocation: { devices: { results: { device: string }[] } } } }
    >({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${tolerating.name}`,
    });
    expect(ens1f0Vfs).toContain(claim.status.allocation.devices.results[0]!.device);

    // The link comes back: the taints go (after 10 s of a steady link), the waiting pod is placed.
    setPfLink("1", "up");
    await waitFor(
      "the taints to clear",
      async () =>
        [...(await taintsByDevice()).values()].every((t) => t.length === 0) ? true : undefined,
      30_000,
    );
    await waitFor("the Normal event on the held claim", async () =>
      (await claimEvents(holder.name)).find((event) => event.reason === "DeviceHealthy"),
    );
    await kubelet.unprepare(draSocket(), "v1", [holderWire]);
    await waitFor(
      "the waiting pod to be scheduled",
      async () => {
        const pod = await client.request<Pod>({
          method: "GET",
          path: `/api/v1/namespaces/${namespace}/pods/${pending}`,
        });
        return pod.status?.conditions?.some(
          (condition) => condition.type === "PodScheduled" && condition.status === "True",
        )
          ? true
          : undefined;
      },
      60_000,
    );
  });
});
