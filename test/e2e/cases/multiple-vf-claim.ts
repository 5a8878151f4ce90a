import { describe, expect, it } from "vitest";
import {
  applyScenarioForClaim,
  deleteScenarioLeavingNothing,
  ourDevices,
  pciAddressOf,
  podEnv,
  podInterface,
  useScenario,
  waitClaim,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "multiple-vf-claim";
const NS = e2eNamespace("sriov-multi-vf");
const POD = "pod0";

/** demo/multiple-vf-claim: count 2 on one PF → net1 and net2. */
describe("demo/multiple-vf-claim", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("plugs two VFs of one PF into the pod as net1 and net2", async () => {
    const before = vfsBefore();
    const allocated = await applyScenarioForClaim(SCENARIO, NS, POD, "vfs");
    const devices = (allocated.status?.allocation?.devices?.results ?? []).map((r) => r.device);
    expect(devices).toHaveLength(2);
    const addresses = devices.map(pciAddressOf);
    const vfs = addresses.map((address) => before.get(address)!);
    expect(vfs[0]!.pf).toBe(vfs[1]!.pf);

    const claim = await waitClaim(
      NS,
      allocated.metadata!.name!,
      "networkData of both",
      (c) => ourDevices(c).filter((device) => device.networkData !== undefined).length === 2,
    );
    const byName = new Map(
      ourDevices(claim).map((device) => [device.networkData!.interfaceName!, device]),
    );
    expect([...byName.keys()].sort()).toEqual(["net1", "net2"]);
    for (const ifName of ["net1", "net2"]) {
      const inPod = await podInterface(NS, POD, ifName);
      const status = byName.get(ifName)!;
      const vf = before.get(pciAddressOf(status.device))!;
      // The interface is the VF the claim says it is.
      expect(inPod.mac).toBe(vf.mac);
      expect(status.networkData).toEqual({
        interfaceName: ifName,
        ips: inPod.ipv4,
        hardwareAddress: vf.mac,
      });
      expect(inPod.ipv4[0]).toMatch(/^10\.56\.218\.1\d\d\/24$/);
    }
    const vars = await podEnv(NS, POD);
    expect(vars.get("SRIOVNETWORK_PCI_ADDRESSES")?.split(",").sort()).toEqual(addresses.sort());
  });

  it("moves both VFs back to the host when the pod goes", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });
});
