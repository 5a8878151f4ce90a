import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  clusterEnv,
  deleteScenarioLeavingNothing,
  applyScenario,
  execIn,
  getPod,
  podEnv,
  podInterface,
  skipBeforeKubernetes,
  upgradeDriver,
  useScenario,
  waitNodePluginArg,
  waitFor,
  waitPodReady,
  e2eNamespace,
} from "../support.js";

const SCENARIO = "device-plugin-pods";
const NS = e2eNamespace("sriov-dp");
const RESOURCE = "intel.com/intel_sriov_netdevice";
const PODS = {
  "pod-a": { ifName: "net1", ip: "10.56.201.11" },
  "pod-b": { ifName: "data", ip: "10.56.201.12" },
};

interface StatusEntry {
  name: string;
  interface: string;
  ips?: string[];
  mac?: string;
  "device-info"?: { type: string; pci?: { "pci-address"?: string } };
}

/**
 * demo/device-plugin-pods: manifests of the device-plugin world, unchanged but for the CNI
 * type. The release gets the extended-resource class and the networks-annotation mode
 * (rolled back after); the real scheduler makes each pod's claim, the real kubelet prepares
 * it, and the NRI hook plugs the VF into the network the annotation names.
 */
describe("demo/device-plugin-pods", () => {
  const vfsBefore = useScenario(SCENARIO);

  it.runIf(clusterEnv().driverMode === "pods")(
    "runs device-plugin pods: a VF of the extended resource on the annotation's network, network-status as Multus writes it",
    async (context) => {
      skipBeforeKubernetes(context, 36, "DRAExtendedResource (DeviceClass extendedResourceName)");
      const env = clusterEnv();
      const rollback = await upgradeDriver([
        `extendedResources[0].name=${RESOURCE}`,
        "extendedResources[0].resourceName=intel.com_intel_sriov_netdevice",
        "driver.networksAnnotation=true",
        // The node's CNI configurations, as containerd reads them (no Multus there).
        `cni.confDir=${path.join(env.stateDir, "containerd/cni/net.d")}`,
      ]);
      try {
        await waitNodePluginArg("--networks-annotation");
        await applyScenario(SCENARIO);
        for (const [pod, { ifName, ip }] of Object.entries(PODS)) {
          const ready = await waitPodReady(NS, pod);
          const claimName = (
            ready.status as { extendedResourceClaimStatus?: { resourceClaimName: string } }
          ).extendedResourceClaimStatus?.resourceClaimName;
          expect(claimName).toMatch(new RegExp(`^${pod}-extended-resources-\\w+$`));
          const iface = await podInterface(NS, pod, ifName);
          expect(iface.ipv4).toEqual([`${ip}/24`]);
          const vars = await podEnv(NS, pod);
          const pci = vars.get("PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE");
          expect(pci).toMatch(/^0000:3b:0a\.\d$/); // a VF of ens1f1, the filter's pool
          // Written in the background once the hook attached the VF.
          const annotation = await waitFor(`${pod}'s network-status`, async () => {
            const read = await getPod(NS, pod);
            return read.metadata?.annotations?.["k8s.v1.cni.cncf.io/network-status"];
          });
          const written = JSON.parse(annotation) as StatusEntry[];
          expect(written).toEqual([
            {
              name: `${NS}/sriov-vlan201`,
              interface: ifName,
              ips: [ip],
              mac: iface.mac,
              dns: {},
              "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": pci } },
            },
          ]);
        }
        const ping = await execIn(NS, "pod-a", ["ping", "-c", "1", "-W", "5", PODS["pod-b"].ip], {
          allowFailure: true,
        });
        expect(ping.code, `${ping.stdout}${ping.stderr}`).toBe(0);
        await deleteScenarioLeavingNothing(SCENARIO, vfsBefore());
      } finally {
        await rollback();
        await waitNodePluginArg("--networks-annotation", false);
      }
    },
  );
});
