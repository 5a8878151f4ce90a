import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { parse, stringify } from "yaml";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import { KubeClient } from "../../lib/kube/client.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  createNamespace,
  createReadyNode,
  deleteIgnoringMissing,
  testClient,
  uniqueName,
  waitFor,
  listNodeSlices,
} from "./kube.js";

const DRIVER = "sriovnetwork.openshift.io";
const SLICES = "/apis/resource.k8s.io/v1/resourceslices";

/**
 * A TCP relay between the driver and the real API server that can cut every connection:
 * an outage as the driver sees it, with nothing faked behind it. While cut it accepts
 * connections and closes them at once, counting them, so a test sees the driver keep trying.
 */
class Relay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  /** Connections closed unanswered since the last cut. */
  refused = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.cutOff = false;
    if (this.server) return;
    this.server = net.createServer((client) => {
      if (this.cutOff) {
        this.refused++;
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(0, "127.0.0.1", resolve);
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.cutOff = true;
    this.refused = 0;
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe("the slice publisher through an API server outage", () => {
  let client: KubeClient;
  let relay: Relay;
  let publisher: NodeDevicePublisher;
  let root: string;
  let tmp: string;
  let nodeName: string;
  let namespace: string;

  const sliceNames = async () =>
    (await listNodeSlices(client, DRIVER, nodeName)).map((slice) => slice.metadata!.name!);

  beforeAll(async () => {
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "outage-"));
    root = path.join(tmp, "host");
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    nodeName = uniqueName("outage-node");
    namespace = uniqueName("outage");
    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    // The publisher reaches the API server only through the relay.
    const kubeconfig = parse(fs.readFileSync(inject("kubeconfig"), "utf8")) as {
      clusters: { cluster: { server: string } }[];
    };
    const server = new URL(kubeconfig.clusters[0]!.cluster.server);
    relay = new Relay({ host: server.hostname, port: Number(server.port) });
    await relay.open();
    kubeconfig.clusters[0]!.cluster.server = `https://127.0.0.1:${relay.port}`;
    const relayed = path.join(tmp, "kubeconfig");
    fs.writeFileSync(relayed, stringify(kubeconfig));
    publisher = new NodeDevicePublisher(KubeClient.load(relayed), {
      paths: new HostPaths({ root }),
      driverName: DRIVER,
      nodeName,
      filterNamespace: namespace,
      publishHostUsedVfs: false,
      rediscoveryIntervalMs: 60_000,
      logger: pino({ level: "silent" }),
    });
    publisher.start();
    await waitFor("the first slices", async () =>
      (await sliceNames()).length > 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    await publisher?.stop();
    await relay?.close();
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}`);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it("keeps running while the API server is unreachable and converges within seconds of its return", async () => {
    const [slice] = await sliceNames();
    relay.cut();
    // While the driver is cut off, its slices go away behind its back. It keeps trying
    // (several connections refused) and cannot put them back.
    await client.request({ method: "DELETE", path: `${SLICES}/${slice}` });
    await waitFor(
      "the driver to retry while cut off",
      async () => (relay.refused >= 3 ? true : undefined),
      30_000,
    );
    expect(await sliceNames()).not.toContain(slice);
    await relay.open();
    await waitFor(
      "the deleted slice to be re-created",
      async () => ((await sliceNames()).includes(slice!) ? true : undefined),
      30_000,
    );
  });
});
