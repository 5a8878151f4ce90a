import { describe, expect, it } from "vitest";
import {
  applyScenarioForClaim,
  attachedSandboxes,
  cdiSpecs,
  clusterEnv,
  cniCacheEntries,
  deleteScenarioLeavingNothing,
  hostVfs,
  ourDevices,
  pciAddressOf,
  podEnv,
  podInterface,
  useScenario,
  waitNetworkData,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "single-vf-claim";
const NS = e2eNamespace("sriov-single-vf");
const POD = "pod0";

/** demo/single-vf-claim: prepare, then CNI ADD over NRI when the sandbox starts. */
describe("demo/single-vf-claim", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("plugs the VF into the pod as net1 with an address, and says so in the claim", async () => {
    const env = clusterEnv();
    const allocated = await applyScenarioForClaim(SCENARIO, NS, POD, "vf");
    const results = allocated.status?.allocation?.devices?.results ?? [];
    expect(results).toHaveLength(1);
    const address = pciAddressOf(results[0]!.device);
    const vf = vfsBefore().get(address)!;
    expect(vf.inHostNamespace).toBe(true);

    // In the pod: net1 is the VF (its MAC), with an address of the network's range.
    const net1 = await podInterface(NS, POD, "net1");
    expect(net1.mac).toBe(vf.mac);
    expect(net1.ipv4).toHaveLength(1);
    expect(net1.ipv4[0]).toMatch(/^10\.56\.217\.1\d\d\/24$/);
    // ... and no longer on the host.
    expect((await hostVfs()).get(address)?.inHostNamespace).toBe(false);

    const vars = await podEnv(NS, POD);
    expect(vars.get("SRIOVNETWORK_PCI_ADDRESSES")).toBe(address);
    expect(vars.get("SRIOVNETWORK_NET_ATTACH_DEF_NAME")).toBe(`${NS}/vf-test1`);

    // The claim: the applied configuration, the network's outcome, Ready conditions.
    const claim = await waitNetworkData(NS, allocated);
    const [device] = ourDevices(claim);
    expect(device).toMatchObject({
      driver: env.driverName,
      pool: env.nodeName,
      device: results[0]!.device,
      data: {
        driver: "iavf",
        ifName: "net1",
        netAttachDefName: "vf-test1",
        netAttachDefNamespace: NS,
        pciAddress: address,
      },
      networkData: { interfaceName: "net1", ips: net1.ipv4, hardwareAddress: vf.mac },
    });
    for (const type of ["Ready", "NetworkReady"]) {
      expect(device!.conditions).toContainEqual(
        expect.objectContaining({ type, status: "True", reason: "NetworkAttached" }),
      );
    }

    // On the node: one CDI spec, one attached sandbox, its CNI result kept for DEL.
    expect(cdiSpecs()).toHaveLength(1);
    const attached = Object.values(attachedSandboxes());
    expect(attached).toHaveLength(1);
    expect(cniCacheEntries().length).toBeGreaterThan(0);
  });

  it("moves the VF back to the host and removes every trace when the pod goes", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });
});
