import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  applyScenarioForClaim,
  cdiSpecs,
  clusterEnv,
  deleteScenarioLeavingNothing,
  execIn,
  hostVfs,
  ourDevices,
  pciAddressOf,
  podEnv,
  preparedClaims,
  useScenario,
  waitClaim,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "vfio-driver";
const NS = e2eNamespace("sriov-vfio");
const POD = "dpdk-app";

/**
 * demo/vfio-driver: no CNI is involved, so this works without the runtime's NRI events:
 * allocation, NodePrepareResources (vfio-pci binding, CDI spec) and CDI injection by
 * containerd.
 */
describe("demo/vfio-driver", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("rebinds the VF to vfio-pci and gives the container its VFIO and vhost devices", async () => {
    const env = clusterEnv();
    const allocated = await applyScenarioForClaim(SCENARIO, NS, POD, "vf");
    const results = allocated.status?.allocation?.devices?.results ?? [];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ driver: env.driverName, pool: env.nodeName, request: "vf" });
    const address = pciAddressOf(results[0]!.device);
    expect(vfsBefore().get(address)?.driver).toBe("iavf");

    // Prepared: the VF is on vfio-pci, the claim's CDI spec is written and checkpointed.
    expect((await hostVfs()).get(address)?.driver).toBe("vfio-pci");
    expect(cdiSpecs()).toEqual([`${env.driverName}-vf_${allocated.metadata!.uid}.json`]);
    expect(Object.values(preparedClaims()).map((entry) => entry.state)).toEqual([
      "PrepareCompleted",
    ]);
    const claim = await waitClaim(NS, allocated.metadata!.name!, "the applied config", (c) =>
      ourDevices(c).some((device) => device.data !== undefined),
    );
    expect(ourDevices(claim)).toHaveLength(1);
    expect(ourDevices(claim)[0]!.data).toMatchObject({
      driver: "vfio-pci",
      pciAddress: address,
    });

    // In the container: the VF's IOMMU group, the VFIO container, vhost-net and tun.
    const group = path.basename(
      fs.readlinkSync(path.join(env.hostRoot, "sys/bus/pci/devices", address, "iommu_group")),
    );
    for (const node of [`/dev/vfio/${group}`, "/dev/vfio/vfio", "/dev/vhost-net", "/dev/net/tun"]) {
      const check = await execIn(NS, POD, ["test", "-c", node], { allowFailure: true });
      expect(check.code, `${node} is a character device in the container`).toBe(0);
    }
    const vars = await podEnv(NS, POD);
    expect(vars.get("SRIOVNETWORK_PCI_ADDRESSES")).toBe(address);
    expect(vars.get("SRIOVNETWORK_VF_DEVICE_0")).toBe(address);
    const pciDevice = [...vars].filter(([name]) => name.startsWith("PCIDEVICE_"));
    expect(pciDevice).toHaveLength(1);
    expect(pciDevice[0]![1]).toBe(address);
    // No network: nothing for the pod-network step.
    expect(vars.has("SRIOVNETWORK_NET_ATTACH_DEF_NAME")).toBe(false);
  });

  it("gives the VF back to its kernel driver and removes every trace when the pod goes", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });
});
