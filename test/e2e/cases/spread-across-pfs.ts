import { describe, expect, it } from "vitest";
import {
  applyScenarioForClaim,
  deleteScenarioLeavingNothing,
  e2eNamespace,
  ourDevices,
  pciAddressOf,
  podInterface,
  useScenario,
  waitClaim,
} from "../support.js";

const SCENARIO = "spread-across-pfs";
const NS = e2eNamespace("sriov-spread");
const POD = "pod0";

/** demo/spread-across-pfs: count 2 with distinctAttribute on pfPciAddress → one VF of each PF. */
describe("demo/spread-across-pfs", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("plugs VFs of two different PFs into the pod as net1 and net2", async () => {
    const before = vfsBefore();
    const allocated = await applyScenarioForClaim(SCENARIO, NS, POD, "vfs");
    const devices = (allocated.status?.allocation?.devices?.results ?? []).map((r) => r.device);
    expect(devices).toHaveLength(2);
    const pfs = devices.map((device) => before.get(pciAddressOf(device))!.pf);
    expect(new Set(pfs).size).toBe(2);

    const claim = await waitClaim(
      NS,
      allocated.metadata!.name!,
      "networkData of both",
      (c) => ourDevices(c).filter((device) => device.networkData !== undefined).length === 2,
    );
    for (const status of ourDevices(claim)) {
      const inPod = await podInterface(NS, POD, status.networkData!.interfaceName!);
      // The interface is the VF the claim says it is, with an address of the demo's range.
      expect(inPod.mac).toBe(before.get(pciAddressOf(status.device))!.mac);
      expect(inPod.ipv4[0]).toMatch(/^10\.56\.220\.1\d\d\/24$/);
    }
  });

  it("moves both VFs back to the host when the pod goes", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });
});
