import type { ChildProcess } from "node:child_process";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { currentDriver } from "../../pkg/host/driver-binding.js";
import type { HostPaths } from "../../pkg/host/paths.js";
import type { KubeClient, KubeObject } from "../../lib/kube/client.js";
import type { EmulatedKernel } from "../../pkg/emulator/index.js";
import type { FakeKubelet } from "../../lib/kubeletplugin/testing/fake-kubelet.js";
import { fromBuildScript } from "../support/build-scripts.js";
import { deviceNetwork } from "../../pkg/prepare/testing/fixtures.js";
import {
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  repoRoot,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";
import { CLI, startKubeletPlugin, stopProcess } from "./daemon.js";
import { startKubeletNode } from "./emulated-node.js";

const DRIVER = "sriovnetwork.openshift.io";
const CHART = path.join(repoRoot, "deployments/helm/dra-driver-sriov");

interface Claim extends KubeObject {
  spec: {
    devices: {
      requests: { name: string; exactly: { deviceClassName: string; count: number } }[];
    };
  };
  status?: {
    allocation?: {
      devices: {
        results: { request: string; device: string }[];
        config?: {
          source: string;
          requests: string[];
          opaque: { driver: string; parameters: Record<string, unknown> };
        }[];
      };
    };
  };
}

interface PodStatus extends KubeObject {
  status?: {
    extendedResourceClaimStatus?: {
      resourceClaimName: string;
      requestMappings: { containerName: string; resourceName: string; requestName: string }[];
    };
  };
}

type Slice = KubeObject & {
  spec: { devices: { name: string; attributes: Record<string, { string?: string }> }[] };
};

/**
 * Pods written for the SR-IOV device plugin (`intel.com/...: "1"` in their resources)
 * against the real scheduler: the chart's `extendedResources` classes, rendered by helm,
 * serve two resource names from two pools of a SriovResourceFilter; the scheduler creates
 * the pod's claim and the node daemon prepares it with the class's VfConfig.
 */
describe("extended resources backed by this driver (DRAExtendedResource)", () => {
  let client: KubeClient;
  let tmp: string;
  let paths: HostPaths;
  let kernel: EmulatedKernel;
  let kubelet: FakeKubelet;
  let nodeName: string;
  let namespace: string;
  let daemon: ChildProcess | undefined;
  const runId = uniqueName("extres");
  // Cluster-scoped: the classes and their resource names belong to this run.
  const domain = `${runId}.example.com`;
  const netdevResource = `${domain}/intel_sriov_netdevice`;
  const dpdkResource = `${domain}/intel_sriov_dpdk`;
  let classNames: string[] = [];

  const cniConfDir = () => path.join(tmp, "cni-conf");
  const draSocket = () => path.join(paths.kubeletPluginsDir, DRIVER, "dra.sock");

  /** A pod as written for the device plugin (requests and limits), pinned to the node. */
  async function createDevicePluginPod(
    name: string,
    resources: Record<string, string>,
    annotations: Record<string, string> = {},
  ): Promise<PodStatus> {
    return client.request<PodStatus>({
      method: "POST",
      path: `/api/v1/namespaces/${namespace}/pods`,
      body: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, annotations },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": nodeName },
          containers: [
            {
              name: "app",
              image: "registry.invalid/never-pulled",
              resources: { requests: { cpu: "10m", ...resources }, limits: resources },
            },
          ],
        },
      },
    });
  }

  /** The claim the scheduler made for the pod's extended resources, once allocated. */
  async function extendedResourceClaimOf(podName: string) {
    const status = await waitFor("the scheduler's extendedResourceClaimStatus", async () => {
      const read = await client.request<PodStatus>({
        method: "GET",
        path: `/api/v1/namespaces/${namespace}/pods/${podName}`,
      });
      return read.status?.extendedResourceClaimStatus;
    });
    const claim = await waitFor("the claim's allocation", async () => {
      const read = await client.request<Claim>({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${status.resourceClaimName}`,
      });
      return read.status?.allocation ? read : undefined;
    });
    return { status, claim };
  }

  beforeAll(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "make build" first`);
    client = testClient();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "extres-"));
    ({ paths, kernel, kubelet, nodeName, namespace } = await startKubeletNode(
      client,
      path.join(tmp, "host"),
      "extres",
    ));
    await client.request({
      method: "POST",
      path: `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${namespace}/sriovresourcefilters`,
      body: {
        apiVersion: "sriovnetwork.openshift.io/v1alpha1",
        kind: "SriovResourceFilter",
        metadata: { name: "device-plugin-pools" },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": nodeName },
          configs: [
            // Kernel-driver VFs only, as device-plugin pools select them (ens1f1's VF 6 is
            // on vfio-pci already, handed to a VM).
            {
              resourceName: `${domain}_netdevice`,
              resourceFilters: [{ pfNames: ["ens1f0"], drivers: ["iavf"] }],
            },
            {
              resourceName: `${domain}_dpdk`,
              resourceFilters: [{ pfNames: ["ens1f1"], drivers: ["iavf"] }],
            },
          ],
        },
      },
    });
    fs.mkdirSync(cniConfDir());
    fs.writeFileSync(
      path.join(cniConfDir(), "10-bridge.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "cbr0", plugins: [{ type: "bridge" }] }),
    );
    // The chart's classes, as `helm install` would create them.
    const values = path.join(tmp, "values.yaml");
    fs.writeFileSync(
      values,
      JSON.stringify({
        extendedResources: [
          { name: netdevResource, resourceName: `${domain}_netdevice` },
          {
            name: dpdkResource,
            resourceName: `${domain}_dpdk`,
            vfConfig: { driver: "vfio-pci" },
          },
        ],
      }),
    );
    const helm = spawnSync(
      fromBuildScript("build-helm.sh", "HELM_BIN"),
      [
        "template",
        "r",
        CHART,
        "--values",
        values,
        "--show-only",
        "templates/extended-resource-classes.yaml",
      ],
      { encoding: "utf8" },
    );
    expect(helm.stderr).toBe("");
    const classes = parseAllDocuments(helm.stdout)
      .map((doc) => doc.toJS() as KubeObject | null)
      .filter((object): object is KubeObject => object !== null);
    classNames = classes.map((c) => c.metadata!.name!);
    for (const deviceClass of classes) {
      await client.request({
        method: "POST",
        path: "/apis/resource.k8s.io/v1/deviceclasses",
        body: deviceClass,
      });
    }
    daemon = await startKubeletPlugin({
      args: [
        ...["--host-root", paths.root, "--node-name", nodeName, "--namespace", namespace],
        ...["--kubeconfig", inject("kubeconfig"), "--health-port", "0"],
        ...["--bind-timeout-ms", "5000"],
        // The hook serves the networks annotation; no Multus in this CNI conf dir.
        ...["--networks-annotation", "--cni-conf-dir", cniConfDir()],
      ],
      logFile: path.join(tmp, "daemon.log"),
      kubelet,
      registrationSocket: path.join(paths.kubeletRegistryDir, `${DRIVER}-reg.sock`),
    });
    await waitFor("both pools published", async () => {
      const names = (await listNodeSlices<Slice>(client, DRIVER, nodeName))
        .flatMap((slice) => slice.spec.devices)
        .map((device) => device.attributes[`${DRIVER}/resourceName`]?.string);
      return names.includes(`${domain}_netdevice`) && names.includes(`${domain}_dpdk`)
        ? true
        : undefined;
    });
  }, 120_000);

  afterAll(async () => {
    kubelet?.close();
    await stopProcess(daemon);
    await kernel?.stop();
    await deleteTestNamespace(client, namespace);
    for (const name of classNames) {
      await deleteIgnoringMissing(client, `/apis/resource.k8s.io/v1/deviceclasses/${name}`);
    }
    await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("gives a pod asking for two resource names one claim, named after the pod, with the class's VfConfig", async () => {
    const podName = "device-plugin-pod";
    // As written for the device plugin: requests and limits, no resourceClaims.
    const requests = { cpu: "10m", [netdevResource]: "1", [dpdkResource]: "2" };
    const pod = await createDevicePluginPod(podName, {
      [netdevResource]: "1",
      [dpdkResource]: "2",
    });
    const { status, claim } = await extendedResourceClaimOf(podName);

    // The claim: generateName "<pod>-extended-resources-", owned by the pod, annotated.
    expect(status.resourceClaimName).toMatch(new RegExp(`^${podName}-extended-resources-\\w+$`));
    expect(claim.metadata?.annotations?.["resource.kubernetes.io/extended-resource-claim"]).toBe(
      "true",
    );
    expect(claim.metadata?.ownerReferences).toMatchObject([
      { kind: "Pod", name: podName, uid: pod.metadata!.uid!, controller: true },
    ]);
    // One request per container and resource: container-<index>-request-<index of the
    // resource among the container's requests, sorted by name>.
    const sortedKeys = Object.keys(requests).sort();
    const requestOf = (resource: string) => `container-0-request-${sortedKeys.indexOf(resource)}`;
    const [netdevClass, dpdkClass] = classNames;
    expect(
      claim.spec.devices.requests.map((r) => [r.name, r.exactly.deviceClassName, r.exactly.count]),
    ).toEqual(
      expect.arrayContaining([
        [requestOf(netdevResource), netdevClass, 1],
        [requestOf(dpdkResource), dpdkClass, 2],
      ]),
    );
    expect(claim.spec.devices.requests).toHaveLength(2);
    expect(status.requestMappings).toEqual(
      expect.arrayContaining([
        {
          containerName: "app",
          resourceName: netdevResource,
          requestName: requestOf(netdevResource),
        },
        { containerName: "app", resourceName: dpdkResource, requestName: requestOf(dpdkResource) },
      ]),
    );

    // Each request from its pool; the class's VfConfig in the allocation, "FromClass".
    const allocation = claim.status!.allocation!.devices;
    const published = new Map(
      (await listNodeSlices<Slice>(client, DRIVER, nodeName))
        .flatMap((slice) => slice.spec.devices)
        .map((device) => [device.name, device.attributes[`${DRIVER}/resourceName`]?.string]),
    );
    const poolsOf = (request: string) =>
      allocation.results.filter((r) => r.request === request).map((r) => published.get(r.device));
    expect(poolsOf(requestOf(netdevResource))).toEqual([`${domain}_netdevice`]);
    expect(poolsOf(requestOf(dpdkResource))).toEqual([`${domain}_dpdk`, `${domain}_dpdk`]);
    expect(allocation.config).toEqual([
      {
        source: "FromClass",
        requests: [requestOf(dpdkResource)],
        opaque: {
          driver: DRIVER,
          parameters: {
            apiVersion: "sriovnetwork.openshift.io/v1alpha1",
            kind: "VfConfig",
            driver: "vfio-pci",
          },
        },
      },
    ]);

    // The kubelet prepares the claim by the name in the pod's status: the class's VfConfig
    // applies to its request's VFs only.
    const wire = { namespace, name: claim.metadata!.name!, uid: claim.metadata!.uid! };
    const prepared = await kubelet.prepare(draSocket(), "v1", [wire]);
    expect(prepared.claims[wire.uid]!.error ?? "").toBe("");
    const pci = (device: string) => device.replace(/^(\w{4})-(\w{2})-(\w{2})-(\w)$/, "$1:$2:$3.$4");
    const driverOf = (request: string) =>
      allocation.results
        .filter((r) => r.request === request)
        .map((r) => currentDriver(paths, pci(r.device)));
    expect(driverOf(requestOf(dpdkResource))).toEqual(["vfio-pci", "vfio-pci"]);
    expect(driverOf(requestOf(netdevResource))).toEqual(["iavf"]);

    const unprepared = await kubelet.unprepare(draSocket(), "v1", [wire]);
    expect(unprepared.claims[wire.uid]!.error ?? "").toBe("");
    expect(driverOf(requestOf(dpdkResource))).toEqual(["iavf", "iavf"]);
  });

  it("with --networks-annotation, gives the VFs the networks the pod's annotation names by resourceName", async () => {
    const nad = (name: string, resourceName: string) =>
      deviceNetwork(name, namespace, resourceName);
    for (const body of [nad("sriov-vlan201", netdevResource), nad("sriov-dpdk", dpdkResource)]) {
      await client.request({
        method: "POST",
        path: `/apis/k8s.cni.cncf.io/v1/namespaces/${namespace}/network-attachment-definitions`,
        body,
      });
    }
    const networks = [
      { name: "sriov-vlan201", ips: ["10.56.217.10/24"], mac: "02:00:00:aa:bb:01" },
      { name: "sriov-vlan201", namespace, interface: "data" },
    ];
    await createDevicePluginPod(
      "annotated-pod",
      { [netdevResource]: "2", [dpdkResource]: "1" },
      { "k8s.v1.cni.cncf.io/networks": JSON.stringify(networks) },
    );
    const { claim } = await extendedResourceClaimOf("annotated-pod");
    const wire = { namespace, name: claim.metadata!.name!, uid: claim.metadata!.uid! };
    const prepared = await kubelet.prepare(draSocket(), "v1", [wire]);
    expect(prepared.claims[wire.uid]!.error ?? "").toBe("");

    type Applied = { device: string; data?: { ifName: string; netAttachDefName?: string } };
    const applied = await waitFor("the claim's status.devices", async () => {
      const read = await client.request<Claim & { status: { devices?: Applied[] } }>({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims/${wire.name}`,
      });
      return read.status.devices?.length === 3 ? read.status.devices : undefined;
    });
    const poolOf = new Map(
      (await listNodeSlices<Slice>(client, DRIVER, nodeName))
        .flatMap((slice) => slice.spec.devices)
        .map((device) => [device.name, device.attributes[`${DRIVER}/resourceName`]?.string]),
    );
    const byPool = (pool: string) =>
      applied
        .filter((entry) => poolOf.get(entry.device) === pool)
        .map((entry) => [entry.data?.ifName, entry.data?.netAttachDefName ?? null]);
    // Both networks on the netdevice VFs, in the annotation's order; the DPDK VF, whose
    // network the pod does not name, has none.
    expect(byPool(`${domain}_netdevice`)).toEqual([
      ["net1", "sriov-vlan201"],
      ["data", "sriov-vlan201"],
    ]);
    expect(byPool(`${domain}_dpdk`)).toEqual([[expect.stringMatching(/^net\d$/), null]]);
    await kubelet.unprepare(draSocket(), "v1", [wire]);
  });

  it("with --networks-annotation, refuses to start beside a Multus in the CNI conf dir", () => {
    const conf = path.join(tmp, "cni-conf-multus");
    fs.mkdirSync(conf);
    fs.writeFileSync(
      path.join(conf, "00-multus.conf"),
      JSON.stringify({ cniVersion: "0.3.1", name: "multus-cni-network", type: "multus-shim" }),
    );
    const started = spawnSync(
      process.execPath,
      [
        CLI,
        "kubelet-plugin",
        ...["--host-root", paths.root, "--node-name", nodeName, "--namespace", namespace],
        ...["--kubeconfig", inject("kubeconfig"), "--health-port", "0", "--nri-socket", ""],
        ...["--networks-annotation", "--cni-conf-dir", conf],
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(started.status).not.toBe(0);
    expect(started.stdout + started.stderr).toContain(
      `Multus is configured on this node (${path.join(conf, "00-multus.conf")})`,
    );
  });
});
