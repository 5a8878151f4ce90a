import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { buildEmulatedHost, builtinProfiles } from "../pkg/emulator/index.js";
import { HostPaths } from "../pkg/host/paths.js";
import { KubeClient, type KubeList } from "../lib/kube/client.js";
import { NodeDevicePublisher } from "../pkg/publishing/node-publisher.js";
import { withControlPlane } from "./control-plane.js";
import { median, ms, table } from "./stats.js";

const RUNS = 5;
const DRIVER = "sriovnetwork.openshift.io";
const FILTER_NAMESPACE = "bench-publishing";

interface Run {
  publishMs: number;
  publishWrites: number;
  filterMs: number;
  filterWrites: number;
  slices: number;
}

interface Slice {
  spec: {
    pool: { generation: number };
    /** Absent on the counter slices of a pool with whole PFs. */
    devices?: { attributes: Record<string, { string?: string }> }[];
  };
}

/** The `scale` profile: 8 PFs of 256 VFs each. */
const SCALE = { pfs: 8, vfsPerPf: 256 };

async function until(probe: () => Promise<boolean>): Promise<void> {
  while (!(await probe())) await sleep(20);
}

/**
 * One node: publish the `scale` profile from nothing (a filter names every device "rest"),
 * then change the filter so the VFs of one PF (and the PF, when published whole) get another
 * resourceName. With `publishPfs` the pool also has the 8 PFs and their counters.
 */
async function measureOnce(
  client: KubeClient,
  root: string,
  index: number,
  publishPfs: boolean,
): Promise<Run> {
  const nodeName = `bench-node-${process.pid}-${publishPfs ? "pfs" : "vfs"}-${index}`;
  const wholePfs = publishPfs ? SCALE.pfs : 0;
  const filterPath = `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${FILTER_NAMESPACE}/sriovresourcefilters`;
  const filterName = `bench-${process.pid}-${index}`;
  const filter = (configs: unknown[]) => ({
    apiVersion: "sriovnetwork.openshift.io/v1alpha1",
    kind: "SriovResourceFilter",
    metadata: { name: filterName },
    spec: { nodeSelector: { "kubernetes.io/hostname": nodeName }, configs },
  });
  const rest = { resourceName: "rest", resourceFilters: [{}] };
  await client.request({
    method: "POST",
    path: "/api/v1/nodes",
    body: {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: nodeName, labels: { "kubernetes.io/hostname": nodeName } },
    },
  });
  await client.request({ method: "POST", path: filterPath, body: filter([rest]) });
  const publisher = new NodeDevicePublisher(client, {
    paths: new HostPaths({ root }),
    driverName: DRIVER,
    nodeName,
    filterNamespace: FILTER_NAMESPACE,
    publishHostUsedVfs: false,
    publishPfs,
    rediscoveryIntervalMs: 3_600_000,
    logger: pino({ level: "silent" }),
  });
  const slices = async () =>
    (
      await client.request<KubeList<Slice>>({
        method: "GET",
        path: "/apis/resource.k8s.io/v1/resourceslices",
        query: { fieldSelector: `spec.driver=${DRIVER},spec.nodeName=${nodeName}` },
      })
    ).items;
  const resourceNames = async () =>
    (await slices()).flatMap((slice) =>
      (slice.spec.devices ?? []).map((d) => d.attributes[`${DRIVER}/resourceName`]?.string),
    );

  const started = performance.now();
  publisher.start();
  await until(
    async () =>
      (await resourceNames()).filter((name) => name === "rest").length ===
      SCALE.pfs * SCALE.vfsPerPf + wholePfs,
  );
  const publishMs = performance.now() - started;
  const publishWrites = publisher.slices.stats.writes;

  const current = await client.request<{ metadata: { resourceVersion: string } }>({
    method: "GET",
    path: `${filterPath}/${filterName}`,
  });
  const changed = filter([
    { resourceName: "first_pf", resourceFilters: [{ rootDevices: ["0000:18:00.0"] }] },
    rest,
  ]);
  const before = (await slices())[0]!.spec.pool.generation;
  const filterStarted = performance.now();
  await client.request({
    method: "PUT",
    path: `${filterPath}/${filterName}`,
    body: {
      ...changed,
      metadata: { ...changed.metadata, resourceVersion: current.metadata.resourceVersion },
    },
  });
  // Done when the renamed VFs show and every slice carries one new generation: the whole pool.
  await until(async () => {
    const now = await slices();
    const generations = new Set(now.map((slice) => slice.spec.pool.generation));
    const renamed = now
      .flatMap((slice) => slice.spec.devices ?? [])
      .filter((d) => d.attributes[`${DRIVER}/resourceName`]?.string === "first_pf");
    return (
      renamed.length === SCALE.vfsPerPf + (publishPfs ? 1 : 0) &&
      generations.size === 1 &&
      !generations.has(before)
    );
  });
  const filterMs = performance.now() - filterStarted;
  const filterWrites = publisher.slices.stats.writes - publishWrites;
  const sliceCount = (await slices()).length;
  await publisher.stop();
  await client.request({ method: "DELETE", path: `${filterPath}/${filterName}` });
  await client.request({ method: "DELETE", path: `/api/v1/nodes/${nodeName}` });
  return { publishMs, publishWrites, filterMs, filterWrites, slices: sliceCount };
}

/**
 * Publishing the `scale` profile (2,048 VFs) to a real API server, and a one-PF filter change,
 * without and with whole PFs (--publish-pfs) and their counters.
 */
export async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bench-publishing-"));
  try {
    await buildEmulatedHost({ root, profile: builtinProfiles.scale });
    await withControlPlane(async (kubeconfig) => {
      const client = KubeClient.load(kubeconfig);
      await client
        .request({
          method: "POST",
          path: "/api/v1/namespaces",
          body: { apiVersion: "v1", kind: "Namespace", metadata: { name: FILTER_NAMESPACE } },
        })
        .catch(() => undefined);
      const measure = async (publishPfs: boolean) => {
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await measureOnce(client, root, i, publishPfs));
        return runs;
      };
      const modes = [
        { label: "VFs only", devices: SCALE.pfs * SCALE.vfsPerPf, runs: await measure(false) },
        {
          label: "+ 8 whole PFs, counters",
          devices: SCALE.pfs * (SCALE.vfsPerPf + 1),
          runs: await measure(true),
        },
      ];
      console.log(
        `\nPublishing profile "scale" (2,048 VFs on 8 PFs) to a real kube-apiserver, without and with --publish-pfs, ${RUNS} runs each, medians:\n`,
      );
      console.log(
        table(
          ["step", "devices", "slices", "API writes", "wall ms"],
          modes.flatMap(({ label, devices, runs }) => {
            const slices = median(runs.map((r) => r.slices));
            return [
              [
                `first publish, ${label} → every slice readable`,
                devices,
                slices,
                median(runs.map((r) => r.publishWrites)),
                ms(median(runs.map((r) => r.publishMs))),
              ],
              [
                `filter change on one PF, ${label} → pool rewritten`,
                devices,
                slices,
                median(runs.map((r) => r.filterWrites)),
                ms(median(runs.map((r) => r.filterMs))),
              ],
            ];
          }),
        ),
      );
      console.log(
        "\nWith whole PFs the pool holds counter slices (8 sets each) and at most 64 devices per slice" +
          "\n(the API's limit once devices consume counters), so more slices are written.",
      );
      console.log(
        "\nA filter change rewrites every slice of the pool: the API requires the pool generation to change" +
          "\nin all of its slices whenever any device changes, so consumers never mix old and new slices.",
      );
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
