import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { resourceClaimsPath } from "../../lib/kube/api-paths.js";
import type { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import { PUBLISH_ORDERS, type PublishOrder } from "../../pkg/slices/order.js";
import { startEmulatedNodePublisher, type PublishedSliceDevice } from "./emulated-node.js";
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

// Which VF the real scheduler gives single-VF claims under each --publish-order, on the
// emulated `scale` host (8 PFs × 256 VFs, 16 slices): the numbers in docs/benchmarks.md;
// and VFs of different PFs in one claim through distinctAttribute (demo/spread-across-pfs).

const DRIVER = "sriovnetwork.openshift.io";
const PODS = 100;
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

interface Slice extends KubeObject {
  spec: { devices?: PublishedSliceDevice[] };
}
interface Claim extends KubeObject {
  status?: { allocation?: { devices: { results: { device: string; pool: string }[] } } };
}

const pfOf = (device: PublishedSliceDevice) => device.attributes[`${DRIVER}/pfPciAddress`]!.string!;

/** The node's devices in the order the scheduler tries them: slices by name, devices as listed. */
async function schedulerOrder(
  client: KubeClient,
  nodeName: string,
): Promise<PublishedSliceDevice[]> {
  const slices = await listNodeSlices<Slice>(client, DRIVER, nodeName);
  return slices
    .sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1))
    .flatMap((slice) => slice.spec.devices ?? []);
}

/** VFs taken per PF (every PF the node publishes, none taken counting as 0). */
function perPf(
  devices: readonly PublishedSliceDevice[],
  taken: ReadonlySet<string>,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const device of devices) {
    const pf = pfOf(device);
    counts.set(pf, (counts.get(pf) ?? 0) + (taken.has(device.name) ? 1 : 0));
  }
  return counts;
}

/** What packing predicts: the PFs filled in PCI order, each up to its VF count. */
function packed(devices: readonly PublishedSliceDevice[], claims: number): Map<string, number> {
  const capacity = perPf(devices, new Set(devices.map((device) => device.name)));
  let left = claims;
  return new Map(
    [...capacity.keys()].sort().map((pf) => {
      const take = Math.min(left, capacity.get(pf)!);
      left -= take;
      return [pf, take];
    }),
  );
}

const imbalance = (counts: ReadonlyMap<string, number>) =>
  Math.max(...counts.values()) - Math.min(...counts.values());

describe("single-VF claims on the scale host under each publish order, with the real scheduler", () => {
  let client: KubeClient;
  let work: string;
  const namespace = uniqueName("spread");
  const template = "one-vf";
  const nodes = new Map(PUBLISH_ORDERS.map((order) => [order, uniqueName(`${order}-node`)]));
  const publishers: NodeDevicePublisher[] = [];

  beforeAll(async () => {
    client = testClient();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "spread-"));
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaimTemplate",
        metadata: { name: template },
        spec: {
          spec: { devices: { requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }] } },
        },
      },
    });
    for (const [publishOrder, nodeName] of nodes) {
      await createReadyNode(client, nodeName);
      publishers.push(
        await startEmulatedNodePublisher(client, {
          dir: work,
          nodeName,
          namespace,
          driverName: DRIVER,
          logger,
          profile: "scale",
          publishOrder,
        }),
      );
    }
    await waitFor(
      "both scale nodes' slices on the API server",
      async () =>
        publishers.every((publisher) => publisher.slices.stats.published) ? true : undefined,
      120_000,
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    await deleteTestNamespace(client, namespace);
    for (const nodeName of nodes.values())
      await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Creates PODS pods on the node, each with a one-VF claim; the VFs the scheduler gave them. */
  async function allocateSingleVfPods(nodeName: string): Promise<Set<string>> {
    const pods = Array.from({ length: PODS }, (_, index) => `${nodeName}-${index}`);
    for (let start = 0; start < pods.length; start += 10) {
      await Promise.all(
        pods
          .slice(start, start + 10)
          .map((name) =>
            createPinnedPod(
              client,
              { namespace, nodeName, name },
              { resourceClaimTemplateName: template },
            ),
          ),
      );
    }
    const results = await waitFor(
      `${PODS} claims allocated on ${nodeName}`,
      async () => {
        const list = await client.request<{ items: Claim[] }>({
          method: "GET",
          path: resourceClaimsPath(namespace),
        });
        const onNode = list.items
          .flatMap((claim) => claim.status?.allocation?.devices.results ?? [])
          .filter((result) => result.pool === nodeName);
        return onNode.length === PODS ? onNode : undefined;
      },
      180_000,
    );
    return new Set(results.map((result) => result.device));
  }

  it.each(PUBLISH_ORDERS)(
    `%s: ${PODS} single-VF pods take the first free VFs in publish order`,
    async (order: PublishOrder) => {
      const nodeName = nodes.get(order)!;
      const devices = await schedulerOrder(client, nodeName);
      const started = Date.now();
      const taken = await allocateSingleVfPods(nodeName);
      const counts = perPf(devices, taken);
      logger.info(
        {
          order,
          pfs: counts.size,
          perPf: Object.fromEntries(counts),
          imbalance: imbalance(counts),
          ms: Date.now() - started,
        },
        "VFs taken per PF",
      );
      // First fit: whatever order the pods were scheduled in, the VFs taken are the first
      // ones the scheduler meets.
      expect([...taken].sort()).toEqual(
        devices
          .slice(0, PODS)
          .map((device) => device.name)
          .sort(),
      );
      expect(counts.size).toBeGreaterThan(1);
      if (order === "spread") {
        expect(imbalance(counts)).toBeLessThanOrEqual(1);
      } else {
        expect(counts).toEqual(packed(devices, PODS));
        expect(imbalance(counts)).toBe(imbalance(packed(devices, PODS)));
      }
    },
    240_000,
  );
});

/**
 * demo/spread-across-pfs: `distinctAttribute` on pfPciAddress (DRAConsumableCapacity, on by
 * default in 1.37) makes the real scheduler take VFs of different PFs, on a node whose
 * publish order (pack) would otherwise give two VFs of one PF.
 */
describe("VFs of different PFs in one claim (distinctAttribute), with the real scheduler", () => {
  let client: KubeClient;
  let work: string;
  let publisher: NodeDevicePublisher | undefined;
  const namespace = uniqueName("distinct");
  const nodeName = uniqueName("distinct-node");
  const distinctPf = (requests: string[]) => ({
    requests,
    distinctAttribute: `${DRIVER}/pfPciAddress`,
  });
  const oneVf = (name: string, count = 1) => ({
    name,
    exactly: { deviceClassName: DRIVER, count },
  });

  beforeAll(async () => {
    client = testClient();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "distinct-"));
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    await createReadyNode(client, nodeName);
    publisher = await startEmulatedNodePublisher(client, {
      dir: work,
      nodeName,
      namespace,
      driverName: DRIVER,
      logger,
      publishOrder: "pack",
    });
    await waitFor("the node's slices on the API server", async () =>
      publisher?.slices.stats.published ? true : undefined,
    );
  });

  afterAll(async () => {
    await publisher?.stop();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** The PFs of the VFs the scheduler allocated to a new pod's claim, and the claim's constraints. */
  async function pfsAllocated(devices: {
    requests: unknown[];
    constraints?: unknown[];
  }): Promise<{ pfs: string[]; constraints: unknown[] }> {
    const { name } = await allocateForPod(client, { namespace, nodeName }, devices);
    const claim = await client.request<Claim & { spec: { devices: { constraints?: unknown[] } } }>({
      method: "GET",
      path: `${resourceClaimsPath(namespace)}/${name}`,
    });
    const published = new Map(
      (await schedulerOrder(client, nodeName)).map((device) => [device.name, pfOf(device)]),
    );
    const pfs = claim.status!.allocation!.devices.results.map((result) =>
      published.get(result.device)!,
    );
    return { pfs, constraints: claim.spec.devices.constraints ?? [] };
  }

  it("without the constraint, pack order gives count: 2 two VFs of one PF", async () => {
    const { pfs } = await pfsAllocated({ requests: [oneVf("vfs", 2)] });
    expect(pfs).toHaveLength(2);
    expect(new Set(pfs).size).toBe(1);
  });

  it("count: 2 with distinctAttribute on pfPciAddress gets VFs of two PFs", async () => {
    const constraints = [distinctPf(["vfs"])];
    const allocated = await pfsAllocated({ requests: [oneVf("vfs", 2)], constraints });
    // Kept by kube-apiserver: it drops the field while DRAConsumableCapacity is off.
    expect(allocated.constraints).toEqual(constraints);
    expect(allocated.pfs).toHaveLength(2);
    expect(new Set(allocated.pfs).size).toBe(2);
  });

  it("two one-VF requests with distinctAttribute over both get VFs of two PFs", async () => {
    const constraints = [distinctPf(["a", "b"])];
    const allocated = await pfsAllocated({ requests: [oneVf("a"), oneVf("b")], constraints });
    expect(allocated.constraints).toEqual(constraints);
    expect(new Set(allocated.pfs).size).toBe(2);
  });
});
