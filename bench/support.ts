/** What the benchmarks that run the daemon against a control plane share. */
import { fileURLToPath } from "node:url";
import { API_VERSION } from "../api/v1alpha1/group.js";
import type { KubeClient } from "../lib/kube/client.js";

export const DRIVER = "sriovnetwork.openshift.io";
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** The daemon to measure: tsc's output, or the single-file bundle the image ships (`make bundle`). */
export const CLI =
  process.env["DRA_SRIOV_BENCH_CLI"] ??
  fileURLToPath(new URL("../cmd/dra-driver-sriov/main.js", import.meta.url));
/**
 * DRA_SRIOV_BENCH_QUICK=1: every curve without its largest point (no 10,000-VF host, no
 * 1,000 publishing nodes, no 5,000-node pass, 100 nodes for the scheduler), in a few minutes.
 */
export const QUICK = process.env["DRA_SRIOV_BENCH_QUICK"] === "1";
/** The sizes of a curve: all of them, or in quick mode all but the largest. */
export const curveSizes = <T>(sizes: readonly T[]): readonly T[] =>
  QUICK ? sizes.slice(0, -1) : sizes;
/**
 * Node flags the container image runs the daemon with (the Dockerfile's ENTRYPOINT);
 * DRA_SRIOV_BENCH_NODE_FLAGS (space-separated) measures others instead.
 */
export const DAEMON_NODE_FLAGS = process.env["DRA_SRIOV_BENCH_NODE_FLAGS"]
  ?.split(" ")
  .filter(Boolean) ?? ["--max-semi-space-size=2", "--max-opt=2", "--optimize-for-size"];
/** The environment the image gives the daemon besides (deployments/container/Dockerfile). */
export const DAEMON_ENV = { ...process.env, MALLOC_ARENA_MAX: "2" };

/** Runs `work` on every item, `inFlight` at a time (creating or deleting many API objects). */
export async function forEachLimited<T>(
  items: readonly T[],
  inFlight: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

export { createNamespace } from "../test/support/namespaces.js";

/** A NetworkAttachmentDefinition `bench-net` with the given CNI configuration. */
export async function createBenchNet(
  client: KubeClient,
  namespace: string,
  config: Record<string, unknown>,
): Promise<void> {
  await client.request({
    method: "POST",
    path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
    body: {
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: "bench-net" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "bench-net", ...config }) },
    },
  });
}

/**
 * A ResourceClaimTemplate `name` of VFs (request "vf", its device request `exactly`),
 * plugged in on `bench-net` as `ifName`, or (null) as the driver names them: net1, net2, ...
 */
export async function createVfClaimTemplate(
  client: KubeClient,
  namespace: string,
  name: string,
  exactly: Record<string, unknown>,
  ifName: string | null = "net1",
): Promise<void> {
  await client.request({
    method: "POST",
    path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates`,
    body: {
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaimTemplate",
      metadata: { name },
      spec: {
        spec: {
          devices: {
            requests: [{ name: "vf", exactly }],
            config: [
              {
                requests: ["vf"],
                opaque: {
                  driver: DRIVER,
                  parameters: {
                    apiVersion: API_VERSION,
                    kind: "VfConfig",
                    ...(ifName === null ? {} : { ifName }),
                    netAttachDefName: "bench-net",
                  },
                },
              },
            ],
          },
        },
      },
    },
  });
}
