import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { loadKubeletProtos } from "../../lib/kubeletplugin/protos.js";
import { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import {
  EmulatedKernel,
  buildEmulatedHost,
  builtinProfiles,
  type BuiltinProfileName,
} from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import type { PublishOrder } from "../../pkg/slices/order.js";
import {
  createIfMissing,
  createNamespace,
  createReadyNode,
  listNodeSlices,
  loadManifest,
  uniqueName,
} from "./kube.js";

/** A device as the node's slices publish it (the fields these tests read). */
export interface PublishedSliceDevice {
  name: string;
  attributes: Record<string, { string?: string }>;
  taints?: unknown[];
}

/**
 * A node's publisher, as the daemon wires it, over an emulated host (x710 unless `profile`
 * says otherwise) built in `<dir>/<nodeName>`; started. The caller stops it.
 */
export async function startEmulatedNodePublisher(
  client: KubeClient,
  options: {
    dir: string;
    nodeName: string;
    namespace: string;
    driverName: string;
    logger: Logger;
    profile?: BuiltinProfileName;
    publishOrder?: PublishOrder;
    /** Whole PFs too (`--publish-pfs`). */
    publishPfs?: boolean;
  },
): Promise<NodeDevicePublisher> {
  const root = path.join(options.dir, options.nodeName);
  fs.mkdirSync(root);
  await buildEmulatedHost({ root, profile: builtinProfiles[options.profile ?? "x710"] });
  const publisher = new NodeDevicePublisher(client, {
    paths: new HostPaths({ root }),
    driverName: options.driverName,
    nodeName: options.nodeName,
    filterNamespace: options.namespace,
    publishHostUsedVfs: false,
    ...(options.publishOrder === undefined ? {} : { publishOrder: options.publishOrder }),
    ...(options.publishPfs === undefined ? {} : { publishPfs: options.publishPfs }),
    rediscoveryIntervalMs: 60_000,
    logger: options.logger,
  });
  publisher.start();
  return publisher;
}

/** Every device the node's slices of `driverName` publish (counter slices hold none). */
export async function publishedNodeDevices(
  client: KubeClient,
  driverName: string,
  nodeName: string,
): Promise<PublishedSliceDevice[]> {
  // The API server drops an empty list: a pool with no devices is one slice without `devices`.
  const slices = await listNodeSlices<KubeObject & { spec: { devices?: PublishedSliceDevice[] } }>(
    client,
    driverName,
    nodeName,
  );
  return slices.flatMap((slice) => slice.spec.devices ?? []);
}

/** A node as a daemon under test sees it: an emulated host, its kernel, a kubelet. */
export interface KubeletNode {
  root: string;
  paths: HostPaths;
  kernel: EmulatedKernel;
  kubelet: FakeKubelet;
  nodeName: string;
  namespace: string;
}

/**
 * An emulated x710 host at `root` whose kernel answers driver binds, a fake kubelet to
 * register and call the daemon, a Ready Node and a namespace named after `prefix`, and the
 * driver's DeviceClass. The caller stops the kernel and closes the kubelet.
 */
export async function startKubeletNode(
  client: KubeClient,
  root: string,
  prefix: string,
): Promise<KubeletNode> {
  await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
  const paths = new HostPaths({ root });
  fs.mkdirSync(paths.kubeletRegistryDir, { recursive: true });
  const kernel = new EmulatedKernel({ root });
  await kernel.start();
  const kubelet = new FakeKubelet(loadKubeletProtos());
  const nodeName = uniqueName(`${prefix}-node`);
  const namespace = uniqueName(prefix);
  await createReadyNode(client, nodeName);
  await createNamespace(client, namespace);
  await createIfMissing(
    client,
    "/apis/resource.k8s.io/v1/deviceclasses",
    loadManifest("deployments/deviceclass.yaml"),
  );
  return { root, paths, kernel, kubelet, nodeName, namespace };
}
