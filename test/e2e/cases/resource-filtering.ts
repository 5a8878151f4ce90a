import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../../lib/kube/client.js";
import {
  apiClient,
  applyScenario,
  claimOfPod,
  clusterEnv,
  deleteScenarioLeavingNothing,
  pciAddressOf,
  podEnv,
  useScenario,
  waitFor,
  waitPodReady,
  type Condition,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "resource-filtering";
const NS = e2eNamespace("sriov-filtering");
const PF = { eth0_resource: "0000:3b:00.0", eth1_resource: "0000:3b:00.1" }; // ens1f0, ens1f1

interface Filter extends KubeObject {
  status?: {
    conditions?: Condition[];
    devicesExposed?: { resourceName: string; count: number }[];
  };
}

interface Slice extends KubeObject {
  spec: { devices?: { name: string; attributes?: Record<string, { string?: string }> }[] };
}

/** Published devices of the node: device name → resourceName ("" without one). */
async function publishedResourceNames(): Promise<Map<string, string>> {
  const env = clusterEnv();
  const slices = await apiClient().request<{ items: Slice[] }>({
    method: "GET",
    path: "/apis/resource.k8s.io/v1/resourceslices",
    query: { fieldSelector: `spec.driver=${env.driverName},spec.nodeName=${env.nodeName}` },
  });
  return new Map(
    slices.items
      .flatMap((slice) => slice.spec.devices ?? [])
      .map((device) => [
        device.name,
        device.attributes?.[`${env.driverName}/resourceName`]?.string ?? "",
      ]),
  );
}

/** demo/resource-filtering: a SriovResourceFilter makes two pools; claims pick one each. */
describe("demo/resource-filtering", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("publishes the two pools, and the controller accepts the filter", async () => {
    await applyScenario(SCENARIO);
    const env = clusterEnv();
    const filter = await waitFor("the filter's status", async () => {
      const read = await apiClient().request<Filter>({
        method: "GET",
        path: `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${env.driverNamespace}/sriovresourcefilters/demo-pools`,
      });
      const accepted = read.status?.conditions?.find((c) => c.type === "Accepted");
      return accepted?.status === "True" && read.status?.devicesExposed?.length === 2
        ? read
        : undefined;
    });
    expect(filter.status?.devicesExposed).toEqual(
      expect.arrayContaining([
        { resourceName: "eth0_resource", count: 8 },
        { resourceName: "eth1_resource", count: 7 },
      ]),
    );
    const names = await waitFor("the node's slices to carry the pools", async () => {
      const published = await publishedResourceNames();
      return [...published.values()].every((name) => name !== "") ? published : undefined;
    });
    for (const [device, resourceName] of names) {
      const vf = vfsBefore().get(pciAddressOf(device))!;
      expect(vf.pf, `${device} in ${resourceName}`).toBe(PF[resourceName as keyof typeof PF]);
    }
  });

  it("gives each pod a VF of the pool its claim selects", async () => {
    for (const [pod, resourceName] of [
      ["pod-eth0", "eth0_resource"],
      ["pod-eth1", "eth1_resource"],
    ] as const) {
      await waitPodReady(NS, pod);
      const claim = await claimOfPod(NS, pod, "vf");
      const results = claim.status?.allocation?.devices?.results ?? [];
      expect(results).toHaveLength(1);
      const address = pciAddressOf(results[0]!.device);
      expect(vfsBefore().get(address)?.pf).toBe(PF[resourceName]);
      const vars = await podEnv(NS, pod);
      expect(vars.get(`PCIDEVICE_${resourceName.toUpperCase()}`)).toBe(address);
    }
  });

  it("publishes every VF without a pool again once the filter is gone", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
    const published = await waitFor("the node's slices without pools", async () => {
      const names = await publishedResourceNames();
      return names.size === 15 && [...names.values()].every((name) => name === "")
        ? names
        : undefined;
    });
    expect(published.size).toBe(15);
  });
});
