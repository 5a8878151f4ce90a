import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  allocateForPod,
  createIfMissing,
  createPinnedPod,
  createNamespace,
  createReadyNode,
  deleteIgnoringMissing,
  loadManifest,
  testClient,
  uniqueName,
  waitFor,
  listNodeSlices,
} from "./kube.js";

const DRIVER = "sriovnetwork.openshift.io";
const SLICES = "/apis/resource.k8s.io/v1/resourceslices";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

interface SliceDevice {
  name: string;
  attributes: Record<string, { string?: string; int?: number; bool?: boolean }>;
}
interface Slice extends KubeObject {
  spec: { pool: { generation: number; resourceSliceCount: number }; devices: SliceDevice[] };
}
interface Claim extends KubeObject {
  status?: {
    allocation?: {
      devices: { results: { device: string; driver: string; pool: string; request: string }[] };
    };
  };
}
interface Pod extends KubeObject {
  spec: { nodeName?: string };
  status?: {
    resourceClaimStatuses?: { name: string; resourceClaimName?: string }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

const attr = (device: SliceDevice, name: string) => {
  const value = device.attributes[`${DRIVER}/${name}`];
  return value?.string ?? value?.int ?? value?.bool;
};

describe("publishing an emulated node and allocating with the real scheduler", () => {
  let client: KubeClient;
  let root: string;
  let nodeName: string;
  let namespace: string;
  let publisher: NodeDevicePublisher;

  const nodeSlices = async () => listNodeSlices<Slice>(client, DRIVER, nodeName);
  const publishedDevices = async () => (await nodeSlices()).flatMap((slice) => slice.spec.devices);

  beforeAll(async () => {
    client = testClient();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "publishing-host-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    nodeName = uniqueName("x710-node");
    namespace = uniqueName("publishing");
    await createReadyNode(client, nodeName, { "example.com/nic": "x710" });
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    publisher = new NodeDevicePublisher(client, {
      paths: new HostPaths({ root }),
      driverName: DRIVER,
      nodeName,
      filterNamespace: namespace,
      publishHostUsedVfs: false,
      rediscoveryIntervalMs: 60_000,
      logger,
    });
    publisher.start();
    await waitFor("the node's slices", async () =>
      (await publishedDevices()).length > 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    await publisher?.stop();
    await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}`);
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** A pod pinned to our node with one claim from a template; returns the claim once allocated. */
  async function allocate(
    requestSpec: Record<string, unknown>,
    constraints?: unknown[],
  ): Promise<Claim> {
    const { name } = await allocateForPod(
      client,
      { namespace, nodeName },
      {
        requests: [{ name: "vf", exactly: { deviceClassName: DRIVER, ...requestSpec } }],
        ...(constraints ? { constraints } : {}),
      },
    );
    return client.request<Claim>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${name}`,
    });
  }

  const cel = (expression: string) => ({ selectors: [{ cel: { expression } }] });
  const deviceOf = async (name: string) =>
    (await publishedDevices()).find((device) => device.name === name)!;

  it("publishes every VF but the host-used one, with the documented attributes", async () => {
    const devices = await publishedDevices();
    // x710: 2 PFs × 8 VFs; VF 7 of ens1f1 carries a host address and is withheld.
    expect(devices).toHaveLength(15);
    const slices = await nodeSlices();
    expect(slices.every((slice) => slice.spec.pool.resourceSliceCount === slices.length)).toBe(
      true,
    );
    const vf = await deviceOf("0000-3b-02-0");
    expect(attr(vf, "PFName")).toBe("ens1f0");
    expect(attr(vf, "vendor")).toBe("8086");
    expect(attr(vf, "deviceID")).toBe("154c");
    expect(attr(vf, "pfPciAddress")).toBe("0000:3b:00.0");
    expect(vf.attributes["resource.kubernetes.io/pcieRoot"]?.string).toBe("pci0000:3a");
    expect(
      devices.some((device) => attr(device, "PFName") === "ens1f1" && attr(device, "vfID") === 7),
    ).toBe(false);
  });

  it("allocates exactly a VF of the PF a CEL selector names", async () => {
    const claim = await allocate(cel(`device.attributes["${DRIVER}"].PFName == "ens1f1"`));
    const [result] = claim.status!.allocation!.devices.results;
    expect(result!.pool).toBe(nodeName);
    expect(attr(await deviceOf(result!.device), "PFName")).toBe("ens1f1");
  });

  it("allocates by vendor and NUMA node", async () => {
    const claim = await allocate(
      cel(
        `device.attributes["${DRIVER}"].vendor == "8086" && device.attributes["${DRIVER}"].numaNode == 0`,
      ),
    );
    expect(
      attr(await deviceOf(claim.status!.allocation!.devices.results[0]!.device), "numaNode"),
    ).toBe(0);
  });

  it("puts two VFs of one claim on one PF with a matchAttribute constraint", async () => {
    const claim = await allocate({ count: 2 }, [{ matchAttribute: `${DRIVER}/pfPciAddress` }]);
    const results = claim.status!.allocation!.devices.results;
    expect(results).toHaveLength(2);
    const pfs = await Promise.all(
      results.map(async (result) => attr(await deviceOf(result.device), "pfPciAddress")),
    );
    expect(new Set(pfs).size).toBe(1);
  });

  it("leaves a claim nothing matches unallocated, with the scheduler's reason on the pod", async () => {
    const name = uniqueName("nomatch");
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaim",
        metadata: { name },
        spec: {
          devices: {
            requests: [
              {
                name: "vf",
                exactly: {
                  deviceClassName: DRIVER,
                  ...cel(`device.attributes["${DRIVER}"].vendor == "15b3"`),
                },
              },
            ],
          },
        },
      },
    });
    await createPinnedPod(client, { namespace, nodeName, name }, { resourceClaimName: name });
    const condition = await waitFor("the pod's PodScheduled=False", async () => {
      const pod = await client.request<Pod>({
        method: "GET",
        path: `/api/v1/namespaces/${namespace}/pods/${name}`,
      });
      return pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
    });
    expect(condition.reason).toBe("Unschedulable");
    expect(condition.message).toMatch(/resourceclaim|claim/i);
    const claim = await client.request<Claim>({
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${name}`,
    });
    expect(claim.status?.allocation).toBeUndefined();
  });

  it("re-creates a slice someone deleted", async () => {
    const [slice] = await nodeSlices();
    await client.request({ method: "DELETE", path: `${SLICES}/${slice!.metadata!.name}` });
    await waitFor("the slice to come back", async () => {
      const slices = await nodeSlices();
      return slices.some(
        (s) =>
          s.metadata?.name === slice!.metadata!.name && s.metadata?.uid !== slice!.metadata!.uid,
      )
        ? true
        : undefined;
    });
    expect(await publishedDevices()).toHaveLength(15);
  });

  it("publishes each PF's e-switch mode as the kernel's devlink reports it (the daemon's default reader)", async () => {
    // The emulated host has no devlink instance: a stand-in `devlink` on PATH answers as
    // iproute2 does on a kernel where the first PF is in switchdev and the second has none.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "publishing-devlink-"));
    fs.writeFileSync(
      path.join(bin, "devlink"),
      [
        "#!/bin/sh",
        `if [ "$*" = "-j dev eswitch show pci/0000:3b:00.0" ]; then`,
        `  echo '{"dev":{"pci/0000:3b:00.0":{"mode":"switchdev"}}}'; exit 0`,
        "fi",
        `echo '{"dev":{}}'; echo 'kernel answers: No such device' >&2; exit 1`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const savedPath = process.env["PATH"];
    process.env["PATH"] = `${bin}:${savedPath ?? ""}`;
    const otherNode = uniqueName("x710-devlink");
    await createReadyNode(client, otherNode);
    const other = new NodeDevicePublisher(client, {
      paths: new HostPaths({ root }),
      driverName: DRIVER,
      nodeName: otherNode,
      filterNamespace: namespace,
      publishHostUsedVfs: false,
      rediscoveryIntervalMs: 60_000,
      logger,
    });
    try {
      other.start();
      const modes = await waitFor("the other node's slices", async () => {
        const devices = (await listNodeSlices<Slice>(client, DRIVER, otherNode)).flatMap(
          (slice) => slice.spec.devices,
        );
        if (devices.length === 0) return undefined;
        return Object.fromEntries(
          devices.map((device) => [attr(device, "pfPciAddress"), attr(device, "EswitchMode")]),
        );
      });
      expect(modes).toEqual({ "0000:3b:00.0": "switchdev", "0000:3b:00.1": "legacy" });
    } finally {
      process.env["PATH"] = savedPath;
      await other.stop();
      await deleteIgnoringMissing(client, `/api/v1/nodes/${otherNode}`);
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  describe("with SriovResourceFilters", () => {
    const FILTERS = () =>
      `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${namespace}/sriovresourcefilters`;
    const filter = (
      name: string,
      configs: unknown[],
      nodeSelector: Record<string, string> = { "example.com/nic": "x710" },
    ) => ({
      apiVersion: "sriovnetwork.openshift.io/v1alpha1",
      kind: "SriovResourceFilter",
      metadata: { name },
      spec: { nodeSelector, configs },
    });
    const resourceNames = async () => {
      const devices = await publishedDevices();
      return Object.fromEntries(
        devices.map((device) => [device.name, attr(device, "resourceName")]),
      );
    };

    it("splits the node into two pools of resourceName, and claims select them", async () => {
      await client.request({
        method: "POST",
        path: FILTERS(),
        body: filter("pools", [
          { resourceName: "eth0_resource", resourceFilters: [{ pfNames: ["ens1f0"] }] },
          { resourceName: "eth1_resource", resourceFilters: [{ rootDevices: ["0000:3b:00.1"] }] },
        ]),
      });
      await waitFor(
        "resourceName on every published VF",
        async () => {
          const names = Object.values(await resourceNames());
          return names.length > 0 && names.every((name) => name !== undefined) ? true : undefined;
        },
        10_000,
      );
      const names = await resourceNames();
      expect(names["0000-3b-02-0"]).toBe("eth0_resource");
      expect(names["0000-3b-0a-0"]).toBe("eth1_resource");
      const claim = await allocate(
        cel(`device.attributes["${DRIVER}"].resourceName == "eth1_resource"`),
      );
      expect(
        attr(await deviceOf(claim.status!.allocation!.devices.results[0]!.device), "PFName"),
      ).toBe("ens1f1");
    });

    it("gives a VF two filters want to the first by name, and moves devices when filters change", async () => {
      await client.request({
        method: "POST",
        path: FILTERS(),
        body: filter("aaa-first", [
          { resourceName: "fast", resourceFilters: [{ pfNames: ["ens1f0#0-1"] }] },
        ]),
      });
      await waitFor("VFs 0-1 of ens1f0 to move to the winner", async () => {
        const names = await resourceNames();
        return names["0000-3b-02-0"] === "fast" &&
          names["0000-3b-02-1"] === "fast" &&
          names["0000-3b-02-2"] === "eth0_resource"
          ? true
          : undefined;
      });
      await client.request({ method: "DELETE", path: `${FILTERS()}/aaa-first` });
      await waitFor("VFs back to the remaining filter", async () =>
        (await resourceNames())["0000-3b-02-0"] === "eth0_resource" ? true : undefined,
      );
      await client.request({ method: "DELETE", path: `${FILTERS()}/pools` });
      await waitFor("no resourceName once no filter selects the node", async () => {
        const names = Object.values(await resourceNames());
        return names.length === 15 && names.every((name) => name === undefined) ? true : undefined;
      });
    });

    it("follows node labels: a filter stops applying when its label goes away", async () => {
      await client.request({
        method: "POST",
        path: FILTERS(),
        body: filter("labelled", [{ resourceName: "labelled", resourceFilters: [{}] }], {
          "example.com/pool": "blue",
        }),
      });
      await client.request({
        method: "PATCH",
        path: `/api/v1/nodes/${nodeName}`,
        contentType: "application/merge-patch+json",
        body: { metadata: { labels: { "example.com/pool": "blue" } } },
      });
      await waitFor(
        "the labelled pool",
        async () => ((await resourceNames())["0000-3b-02-0"] === "labelled" ? true : undefined),
        10_000,
      );
      await client.request({
        method: "PATCH",
        path: `/api/v1/nodes/${nodeName}`,
        contentType: "application/merge-patch+json",
        body: { metadata: { labels: { "example.com/pool": null } } },
      });
      await waitFor(
        "the pool to go with the label",
        async () => ((await resourceNames())["0000-3b-02-0"] === undefined ? true : undefined),
        10_000,
      );
      await client.request({ method: "DELETE", path: `${FILTERS()}/labelled` });
    });
  });
});
