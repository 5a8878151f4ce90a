import { describe, expect, it } from "vitest";
import {
  applyScenario,
  claimOfPod,
  deleteScenarioLeavingNothing,
  execIn,
  ourDevices,
  podInterface,
  useScenario,
  waitNetworkData,
  waitPodReady,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "static-ip-vlan";
const NS = e2eNamespace("sriov-vlan");
const PODS = { "pod-a": "10.56.217.11", "pod-b": "10.56.217.12", "pod-c": "10.56.217.13" };

/** demo/static-ip-vlan: addresses from VfConfig.ips as CNI runtimeConfig; pods talk over VFs. */
describe("demo/static-ip-vlan", () => {
  const vfsBefore = useScenario(SCENARIO);

  it("gives each pod the address its claim asks for", async () => {
    await applyScenario(SCENARIO);
    for (const [pod, ip] of Object.entries(PODS)) {
      await waitPodReady(NS, pod);
      expect((await podInterface(NS, pod, "net1")).ipv4).toEqual([`${ip}/24`]);
      const claim = await waitNetworkData(NS, await claimOfPod(NS, pod, "vf"));
      expect(ourDevices(claim)[0]!.networkData?.ips).toEqual([`${ip}/24`]);
    }
  });

  it("lets the three pods reach each other over their VFs", async () => {
    for (const from of Object.keys(PODS)) {
      for (const [to, ip] of Object.entries(PODS)) {
        if (to === from) continue;
        const ping = await execIn(NS, from, ["ping", "-c", "1", "-W", "5", ip], {
          allowFailure: true,
        });
        expect(ping.code, `${from} → ${to} (${ip}): ${ping.stdout}${ping.stderr}`).toBe(0);
      }
    }
  });

  it("moves the VFs back to the host when the pods go", async () => {
    await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
  });
});
