import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { FilterReportList } from "../../pkg/cluster-inventory/filters.js";
import type { NodeInventory } from "../../pkg/cluster-inventory/nodes.js";
import { FilterStatusController } from "../../pkg/controller/controller.js";
import type { KubeClient } from "../../lib/kube/client.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";
import { installKubectlSriov } from "./kubectl-plugin.js";
import { publishedNodeDevices, startEmulatedNodePublisher } from "./emulated-node.js";

const DRIVER = "sriovnetwork.openshift.io";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

/**
 * The plugin as an operator runs it: the bundle copied once onto the PATH as
 * `kubectl-sriov`, run by the pinned node with the user's KUBECONFIG, against two emulated
 * nodes publishing through the library, one filter, one claim the real scheduler allocated.
 */
describe("kubectl sriov against the real control plane", () => {
  let client: KubeClient;
  let work: string;
  const tag = uniqueName("kctl");
  const namespace = tag;
  const filterName = "fast";
  const resourceName = `${tag}-fast`;
  const nodes = { a: uniqueName("kctl-a"), b: uniqueName("kctl-b") };
  const publishers: NodeDevicePublisher[] = [];
  let controller: FilterStatusController;
  let taintedDevice: string;
  let claim: { namespace: string; name: string; podName: string };
  let allocatedDevice: string;

  let plugin: ReturnType<typeof installKubectlSriov>;

  beforeAll(async () => {
    client = testClient();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "kubectl-sriov-"));
    plugin = installKubectlSriov(work, inject("kubeconfig"));

    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    // Node a is selected by the filter (all its VFs get resourceName); node b is not.
    await createReadyNode(client, nodes.a, { "example.com/kctl": tag });
    await createReadyNode(client, nodes.b);
    await client.request({
      method: "POST",
      path: `/apis/${API_VERSION}/namespaces/${namespace}/sriovresourcefilters`,
      body: {
        apiVersion: API_VERSION,
        kind: "SriovResourceFilter",
        metadata: { name: filterName },
        spec: {
          nodeSelector: { "example.com/kctl": tag },
          configs: [{ resourceName, resourceFilters: [{}] }],
        },
      },
    });
    for (const nodeName of [nodes.a, nodes.b]) {
      publishers.push(
        await startEmulatedNodePublisher(client, {
          dir: work,
          nodeName,
          namespace,
          driverName: DRIVER,
          logger,
        }),
      );
    }
    const devicesOf = (nodeName: string) => publishedNodeDevices(client, DRIVER, nodeName);
    await waitFor("node a's VFs under the filter's resourceName", async () => {
      const devices = await devicesOf(nodes.a);
      return devices.length > 0 &&
        devices.every((d) => d.attributes[`${DRIVER}/resourceName`]?.string === resourceName)
        ? true
        : undefined;
    });
    const bDevices = await waitFor("node b's VFs", async () => {
      const devices = await devicesOf(nodes.b);
      return devices.length > 0 ? devices : undefined;
    });
    // A device health taint on one VF of node b, as the health monitor sets it.
    taintedDevice = bDevices[0]!.name;
    publishers[1]!.setTaints(
      new Map([
        [
          taintedDevice,
          [
            {
              key: `${DRIVER}/unhealthy`,
              value: "LinkDown",
              effect: "NoSchedule",
              timeAdded: "2026-01-01T00:00:00Z",
            },
          ],
        ],
      ]),
    );
    await waitFor("the taint on node b's VF", async () =>
      (await devicesOf(nodes.b)).some((d) => d.name === taintedDevice && d.taints?.length)
        ? true
        : undefined,
    );

    controller = new FilterStatusController(client, {
      namespace,
      driverName: DRIVER,
      identity: "kctl-0",
      logger,
      leaderElection: false,
      leaseDurationSeconds: 3,
      leaseRetryPeriodMs: 200,
      leaseRenewDeadlineMs: 2_000,
    });
    controller.start();

    claim = await allocateForPod(
      client,
      { namespace, nodeName: nodes.a },
      { requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }] },
    );
    const allocated = await client.request<{
      status: { allocation: { devices: { results: { device: string; pool: string }[] } } };
    }>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`,
    });
    allocatedDevice = allocated.status.allocation.devices.results[0]!.device;
    // The scheduler reserves the claim for the pod as it binds it.
    await waitFor("the claim reserved for its pod", async () => {
      const read = await client.request<{ status?: { reservedFor?: { name: string }[] } }>({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${claim.name}`,
      });
      return read.status?.reservedFor?.some((r) => r.name === claim.podName) ? true : undefined;
    });
  });

  afterAll(async () => {
    await controller?.stop();
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    await deleteTestNamespace(client, namespace);
    for (const nodeName of Object.values(nodes)) {
      await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("nodes NODE: the VF the scheduler allocated names the claim and its pod", async () => {
    const { code, stdout, stderr } = await plugin(["nodes", nodes.a]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const lines = stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^NODE ${nodes.a}  ${DRIVER}  \\d+ VFs, 1 allocated$`));
    const vfLine = lines.find((line) => line.includes(`─ ${allocatedDevice} `))!;
    expect(vfLine).toContain(resourceName);
    expect(vfLine).toContain(`${namespace}/${claim.name} (pod ${claim.podName})`);
    // Every other VF of the node is free.
    expect(lines.filter((line) => line.includes(claim.name))).toHaveLength(1);
    expect(stdout).not.toContain(nodes.b);
  });

  it("nodes: every node, with the device health taint on the right VF", async () => {
    const { code, stdout } = await plugin(["nodes"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      new RegExp(`^NODE ${nodes.b}  ${DRIVER}  \\d+ VFs, 0 allocated, 1 tainted$`, "m"),
    );
    const tainted = stdout.split("\n").filter((line) => line.includes("TAINT"));
    expect(tainted.some((line) => line.includes(`─ ${taintedDevice} `))).toBe(true);
    expect(tainted.join("\n")).toContain(`TAINT ${DRIVER}/unhealthy=LinkDown:NoSchedule`);
  });

  it("nodes -o json: the documented structure, with the same facts", async () => {
    const { code, stdout } = await plugin(["nodes", nodes.a, "-o", "json"]);
    expect(code).toBe(0);
    const inventory = JSON.parse(stdout) as NodeInventory;
    expect(inventory).toMatchObject({ kind: "NodeInventory", driver: DRIVER });
    const vfs = inventory.nodes[0]!.pfs.flatMap((pf) => pf.vfs);
    expect(vfs.find((vf) => vf.device === allocatedDevice)!.allocatedTo).toEqual([
      {
        namespace,
        claim: claim.name,
        request: "vf",
        consumers: [{ resource: "pods", name: claim.podName }],
      },
    ]);
    expect(vfs.filter((vf) => vf.allocatedTo.length > 0)).toHaveLength(1);
  });

  it("filters -n: the filter's VFs on the node it selects, beside the status the controller wrote", async () => {
    const report = await waitFor("the filter's status in the plugin's view", async () => {
      const { code, stdout } = await plugin(["filters", "-n", namespace, "-o", "json"]);
      const parsed = code === 0 ? (JSON.parse(stdout) as FilterReportList) : undefined;
      return parsed?.filters[0]?.status?.devicesExposed[0]?.count ? parsed : undefined;
    });
    const [filter] = report.filters;
    const published = (await plugin(["nodes", nodes.a, "-o", "json"])).stdout;
    const nodeVfs = (JSON.parse(published) as NodeInventory).nodes[0]!.pfs.flatMap((pf) =>
      pf.vfs.map((vf) => vf.device),
    );
    expect(filter!.nodes).toEqual([
      { name: nodes.a, vfs: [{ resourceName, devices: [...nodeVfs].sort(), wholePfs: [] }] },
    ]);
    expect(filter!.status!.devicesExposed).toEqual([{ resourceName, count: nodeVfs.length }]);
    expect(filter!.status!.conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Accepted=True",
      "Conflicting=False",
    ]);

    const { code, stdout } = await plugin(["filters", "-n", namespace]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      `FILTER ${namespace}/${filterName}  nodeSelector example.com/kctl=${tag}`,
    );
    expect(stdout).toMatch(
      new RegExp(`^  ${resourceName}\\s+${nodeVfs.length}\\s+${nodeVfs.length}$`, "m"),
    );
    expect(stdout).toContain(`└─ ${nodes.a}  ${resourceName} ${nodeVfs.length}: `);
  });

  it("--context picks a kubeconfig context other than the current one", async () => {
    // The control plane's kubeconfig carries its certificates inline: a copy works anywhere.
    const exported = parseYaml(fs.readFileSync(inject("kubeconfig"), "utf8")) as {
      clusters: { name: string; cluster: { server: string } }[];
      contexts: { name: string; context: { cluster: string; user: string } }[];
      "current-context": string;
    };
    const real = exported["current-context"];
    const user = exported.contexts.find((c) => c.name === real)!.context.user;
    exported.clusters.push({ name: "nowhere", cluster: { server: "https://127.0.0.1:1" } });
    exported.contexts.push({ name: "nowhere", context: { cluster: "nowhere", user } });
    exported["current-context"] = "nowhere";
    const file = path.join(work, "two-contexts.kubeconfig");
    fs.writeFileSync(file, JSON.stringify(exported));

    expect((await plugin(["nodes", nodes.a], file)).code).toBe(1);
    const chosen = await plugin(["nodes", nodes.a, "--context", real], file);
    expect(chosen.code).toBe(0);
    expect(chosen.stdout).toContain(`${namespace}/${claim.name} (pod ${claim.podName})`);
    expect(await plugin(["nodes", "--kubeconfig", file, "--context", "missing"])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('context "missing" is not in the kubeconfig'),
    });
  });
});
