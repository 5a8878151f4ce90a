import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  deviceAttributesPath,
  sriovResourcePoliciesPath,
  UPSTREAM_GROUP,
} from "../../api/v1alpha1/group.js";
import { deviceClassesPath } from "../../lib/kube/api-paths.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import type { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  publishedNodeDevices,
  startEmulatedNodePublisher,
  type PublishedSliceDevice,
} from "./emulated-node.js";
import {
  createIfMissing,
  createNamespace,
  createPinnedPod,
  createReadyNode,
  deleteIgnoringMissing,
  repoRoot,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";

/**
 * The upstream Go driver's demos, run against this driver with `--driver-name
 * sriovnetwork.k8snetworkplumbingwg.io`: its SriovResourcePolicies, DeviceAttributes,
 * ResourceClaimTemplates and DeviceClasses (testdata/upstream-demos, unedited) on the real
 * API server, published by the node publisher over an emulated X710 (ens1f0, ens1f1, 8 VFs
 * each, VF 7 of ens1f1 used by the host), allocated by the real scheduler. The only changes
 * are made here, when loading: namespaces, the node's hostname, PF names (eth0/eth1 are
 * ens1f0/ens1f1), the PCI addresses the extended-resource demo names, and cluster-wide
 * names made unique. Each demo's claims get the kind of VF upstream's would.
 */

const DRIVER = UPSTREAM_GROUP;
const DEMOS = path.join(repoRoot, "test/integration/testdata/upstream-demos");
const CLAIMS_PATH = (ns: string, name = "") =>
  `/apis/resource.k8s.io/v1/namespaces/${ns}/resourceclaims${name ? `/${name}` : ""}`;
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

interface Claim extends KubeObject {
  status?: { allocation?: { devices: { results: { device: string; pool: string }[] } } };
}
interface Pod extends KubeObject {
  status?: {
    resourceClaimStatuses?: { name: string; resourceClaimName?: string }[];
    extendedResourceClaimStatus?: { resourceClaimName: string };
  };
}

const attribute = (device: PublishedSliceDevice, name: string) =>
  device.attributes[name.includes("/") ? name : `${DRIVER}/${name}`]?.string;

describe("the upstream driver's demos on this driver", () => {
  let client: KubeClient;
  let publisher: NodeDevicePublisher;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "upstream-demos-"));
  const nodeName = uniqueName("upstream-node");
  /** The driver's namespace: where policies and DeviceAttributes apply. */
  const driverNamespace = uniqueName("upstream-driver");
  const claimNamespaces: string[] = [];
  const deviceClasses: string[] = [];
  /** The node's VFs, as published before any policy. */
  let everyVf: PublishedSliceDevice[] = [];
  /** Devices claims of earlier demos hold: not free for later ones. */
  const taken = new Set<string>();

  const published = () => publishedNodeDevices(client, DRIVER, nodeName);
  const deviceNamed = async (name: string) => (await published()).find((d) => d.name === name)!;

  /** Every object of a demo file, adapted to this cluster (see the file comment). */
  function demo(file: string, replace: Record<string, string> = {}): KubeObject[] {
    const text = fs.readFileSync(path.join(DEMOS, file), "utf8");
    const substitutions: Record<string, string> = { eth0: "ens1f0", eth1: "ens1f1", ...replace };
    return parseAllDocuments(text)
      .map((doc) => doc.toJS() as KubeObject | null)
      .filter((object): object is KubeObject => object !== null)
      .map(
        (object) =>
          JSON.parse(JSON.stringify(object), (_key, value: unknown) =>
            typeof value === "string" && Object.hasOwn(substitutions, value)
              ? substitutions[value]
              : value,
          ) as KubeObject,
      );
  }

  /**
   * Creates a demo's policies, DeviceAttributes, DeviceClasses and claim templates (its
   * pods, namespaces and NetworkAttachmentDefinitions have no part in allocation); returns
   * the namespace of its claims.
   */
  async function apply(objects: KubeObject[]): Promise<string> {
    const claimNamespace = uniqueName("upstream-claims");
    await createNamespace(client, claimNamespace);
    claimNamespaces.push(claimNamespace);
    for (const object of objects) {
      const name = object.metadata!.name!;
      switch (object.kind) {
        case "SriovResourcePolicy":
          await post(sriovResourcePoliciesPath(driverNamespace), object);
          break;
        case "DeviceAttributes":
          await post(deviceAttributesPath(driverNamespace), object);
          break;
        case "DeviceClass":
          await deleteIgnoringMissing(client, deviceClassesPath(name));
          await post(deviceClassesPath(), object);
          deviceClasses.push(name);
          break;
        case "ResourceClaimTemplate":
          await post(
            `/apis/resource.k8s.io/v1/namespaces/${claimNamespace}/resourceclaimtemplates`,
            object,
          );
          break;
      }
    }
    return claimNamespace;
  }

  async function post(collection: string, object: KubeObject): Promise<void> {
    // Namespaced objects go to the collection's namespace, whatever the demo says.
    const metadata = { ...object.metadata };
    delete metadata.namespace;
    await client.request({ method: "POST", path: collection, body: { ...object, metadata } });
  }

  async function deletePolicies(): Promise<void> {
    const list = async (p: string) =>
      (await client.request<{ items: KubeObject[] }>({ method: "GET", path: p })).items;
    for (const policy of await list(sriovResourcePoliciesPath(driverNamespace))) {
      await deleteIgnoringMissing(
        client,
        sriovResourcePoliciesPath(driverNamespace, policy.metadata!.name),
      );
    }
    for (const attributes of await list(deviceAttributesPath(driverNamespace))) {
      await deleteIgnoringMissing(
        client,
        deviceAttributesPath(driverNamespace, attributes.metadata!.name),
      );
    }
  }

  /** Waits until what the node publishes passes `check`; returns it. */
  const publishedWhen = (what: string, check: (devices: PublishedSliceDevice[]) => boolean) =>
    waitFor(what, async () => {
      const devices = await published();
      return check(devices) ? devices : undefined;
    });

  /** The devices the scheduler gave a pod's claim, once it is allocated. */
  async function allocatedDevices(namespace: string, podName: string, extended = false) {
    const claimName = await waitFor(`the claim of pod ${podName}`, async () => {
      const pod = await client.request<Pod>({
        method: "GET",
        path: `/api/v1/namespaces/${namespace}/pods/${podName}`,
      });
      return extended
        ? pod.status?.extendedResourceClaimStatus?.resourceClaimName
        : pod.status?.resourceClaimStatuses?.[0]?.resourceClaimName;
    });
    const claim = await waitFor(`allocation of claim ${claimName}`, async () => {
      const read = await client.request<Claim>({
        method: "GET",
        path: CLAIMS_PATH(namespace, claimName),
      });
      return read.status?.allocation ? read : undefined;
    });
    const results = claim.status!.allocation!.devices.results;
    expect(results.every((result) => result.pool === nodeName)).toBe(true);
    for (const result of results) taken.add(result.device);
    return Promise.all(results.map((result) => deviceNamed(result.device)));
  }

  async function podFromTemplate(namespace: string, template: string): Promise<string> {
    const name = uniqueName("pod");
    await createPinnedPod(
      client,
      { namespace, nodeName, name },
      { resourceClaimTemplateName: template },
    );
    return name;
  }

  beforeAll(async () => {
    client = testClient();
    await createReadyNode(client, nodeName);
    await createNamespace(client, driverNamespace);
    // The upstream chart's DeviceClass, named after the driver.
    await createIfMissing(client, deviceClassesPath(), {
      apiVersion: "resource.k8s.io/v1",
      kind: "DeviceClass",
      metadata: { name: DRIVER },
      spec: { selectors: [{ cel: { expression: `device.driver == '${DRIVER}'` } }] },
    } as KubeObject);
    publisher = await startEmulatedNodePublisher(client, {
      dir,
      nodeName,
      namespace: driverNamespace,
      driverName: DRIVER,
      logger,
    });
  });

  afterAll(async () => {
    await publisher?.stop();
    for (const name of deviceClasses) await deleteIgnoringMissing(client, deviceClassesPath(name));
    for (const ns of [...claimNamespaces, driverNamespace]) {
      await deleteIgnoringMissing(client, `/api/v1/namespaces/${ns}`);
    }
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("publishes every VF under the upstream driver name while no policy exists", async () => {
    everyVf = await publishedWhen("15 VFs", (d) => d.length === 15);
    expect(everyVf.every((d) => attribute(d, "deviceType") === "vf")).toBe(true);
  });

  it("single-vf-claim: with the all-devices policy, one VF of the node", async () => {
    const ns = await apply(demo("single-vf.yaml"));
    await publishedWhen("15 VFs", (d) => d.length === 15);
    const devices = await allocatedDevices(ns, await podFromTemplate(ns, "single-vf"));
    expect(devices.map((d) => attribute(d, "deviceType"))).toEqual(["vf"]);
  });

  it("multiple-vf-claim: two VFs in one claim", async () => {
    const ns = await apply(
      demo("multiple-vf-one-claim.yaml").filter((o) => o.kind !== "SriovResourcePolicy"),
    );
    const devices = await allocatedDevices(ns, await podFromTemplate(ns, "multiple-vf"));
    expect(devices).toHaveLength(2);
    expect(new Set(devices.map((d) => d.name)).size).toBe(2);
  });

  it("resource-policies: the claim for eth1_resource gets a VF of the second PF", async () => {
    await deletePolicies();
    const ns = await apply(demo("resource-policy.yaml", { "dra-ctlplane-0.dra.lab": nodeName }));
    const devices = await publishedWhen(
      "VFs named by the policy's DeviceAttributes",
      (all) => all.length === 15 && all.every((d) => attribute(d, "resourceName") !== undefined),
    );
    for (const device of devices) {
      expect(attribute(device, "resourceName")).toBe(
        attribute(device, "PFName") === "ens1f0" ? "eth0_resource" : "eth1_resource",
      );
    }
    const [device] = await allocatedDevices(ns, await podFromTemplate(ns, "single-vf"));
    expect(attribute(device!, "PFName")).toBe("ens1f1");
    expect(attribute(device!, "resourceName")).toBe("eth1_resource");
  });

  it("publishes nothing once the only policy selects other nodes (opt-in, as upstream)", async () => {
    await deletePolicies();
    await apply(demo("resource-policy.yaml").filter((o) => o.kind === "SriovResourcePolicy"));
    await publishedWhen("no devices", (all) => all.length === 0);
  });

  it("extended-resource: a pod asking for one VF of each port gets one of each, 2 + 2 as well", async () => {
    await deletePolicies();
    // The demo names four VFs of each port by PCI address: here four free ones of each PF.
    const freeOf = (pf: string) =>
      everyVf.filter((d) => attribute(d, "PFName") === pf && !taken.has(d.name)).slice(0, 4);
    const [port1, port2] = [freeOf("ens1f0"), freeOf("ens1f1")];
    const addresses: Record<string, string> = {};
    ["0000:08:00.2", "0000:08:00.3", "0000:08:00.4", "0000:08:00.5"].forEach((upstream, i) => {
      addresses[upstream] = attribute(port1[i]!, "pciAddress")!;
    });
    ["0000:08:02.2", "0000:08:02.3", "0000:08:02.4", "0000:08:02.5"].forEach((upstream, i) => {
      addresses[upstream] = attribute(port2[i]!, "pciAddress")!;
    });
    // DeviceClasses and extended resource names are cluster-wide: made unique per run.
    const resource = (port: string) => `${driverNamespace}.example.com/sriov-${port}`;
    const ns = await apply(
      demo("extended-resource-deviceclass.yaml", {
        ...addresses,
        "sriov-port1": `${driverNamespace}-port1`,
        "sriov-port2": `${driverNamespace}-port2`,
        "example.com/sriov-port1": resource("port1"),
        "example.com/sriov-port2": resource("port2"),
      }),
    );
    await publishedWhen("the two ports' pools", (all) => all.length === 8);
    const pools = (devices: PublishedSliceDevice[]) =>
      devices.map((d) => [attribute(d, "resourceName"), attribute(d, "PFName")]).sort();
    for (const [pod, perPort] of demo("pod-extended-resource.yaml").map(
      (p, index) => [p, index + 1] as const,
    )) {
      const requests = (pod as unknown as PodSpecOf).spec.containers[0]!.resources.requests;
      expect(Object.values(requests)).toEqual([String(perPort), String(perPort)]);
      const name = uniqueName("ext");
      await client.request({
        method: "POST",
        path: `/api/v1/namespaces/${ns}/pods`,
        body: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name },
          spec: {
            nodeSelector: { "kubernetes.io/hostname": nodeName },
            containers: [
              {
                name: "app",
                image: "registry.invalid/never-pulled",
                resources: {
                  requests: {
                    [resource("port1")]: `${perPort}`,
                    [resource("port2")]: `${perPort}`,
                  },
                  limits: { [resource("port1")]: `${perPort}`, [resource("port2")]: `${perPort}` },
                },
              },
            ],
          },
        },
      });
      const devices = await allocatedDevices(ns, name, true);
      expect(pools(devices)).toEqual(
        [
          ...Array<string[]>(perPort).fill(["port1-vfs", "ens1f0"]),
          ...Array<string[]>(perPort).fill(["port2-vfs", "ens1f1"]),
        ].sort(),
      );
    }
  });

  it("multus-integration: the device's k8s.cni.cncf.io/resourceName is the NetworkAttachmentDefinition's", async () => {
    await deletePolicies();
    const objects = demo("multus-integration-single-vf.yaml");
    const network = objects.find((o) => o.kind === "NetworkAttachmentDefinition")!;
    const { annotations } = network.metadata as { annotations: Record<string, string> };
    const wanted = annotations["k8s.v1.cni.cncf.io/resourceName"];
    const ns = await apply(objects);
    await publishedWhen(
      "every VF with the Multus resourceName",
      (all) =>
        all.length === 15 &&
        all.every((d) => attribute(d, "k8s.cni.cncf.io/resourceName") === wanted),
    );
    const [device] = await allocatedDevices(ns, await podFromTemplate(ns, "vf-test7"));
    expect(attribute(device!, "k8s.cni.cncf.io/resourceName")).toBe(wanted);
  });
});

interface PodSpecOf {
  spec: { containers: { resources: { requests: Record<string, string> } }[] };
}
