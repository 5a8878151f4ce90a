import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteNamespace, execIn, podInterface, waitPodReady } from "../../e2e/support.js";
import {
  apply,
  claimOf,
  clusterNodes,
  createNamespace,
  onPf,
  pod,
  profileOf,
  vfClaimTemplate,
  waitUnprepared,
} from "../support.js";
import type { ClusterNode } from "../../e2e/support.js";

const NS = "mn-ping";
const SUBNET = "10.56.230";

/**
 * A network per node: the emulated-vf CNI plugin finds the VF under the node's own
 * emulated host, and host-local leases come from a range of the shared subnet that is the
 * node's alone (each node keeps its own leases, as host-local does on real nodes).
 */
function network(node: ClusterNode, index: number): object {
  const name = `vf-net-${index}`;
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace: NS },
    spec: {
      config: JSON.stringify({
        cniVersion: "1.0.0",
        name,
        type: "emulated-vf",
        hostRoot: node.hostRoot,
        ipam: {
          type: "host-local",
          ranges: [
            [
              {
                subnet: `${SUBNET}.0/24`,
                rangeStart: `${SUBNET}.${10 + 10 * index}`,
                rangeEnd: `${SUBNET}.${19 + 10 * index}`,
              },
            ],
          ],
          dataDir: node.ipamDir,
        },
      }),
    },
  };
}

/** Pods on two nodes reach each other over their VFs: the nodes' VFs share one wire. */
describe("pods on two nodes", () => {
  beforeAll(async () => {
    await createNamespace(NS);
  });
  afterAll(async () => {
    await deleteNamespace(NS);
  });

  it("ping each other over their VFs", async () => {
    const nodes = clusterNodes().slice(0, 2);
    await apply(
      nodes.flatMap((node, i) => [
        network(node, i),
        vfClaimTemplate(
          NS,
          `vf-${i}`,
          `${onPf(profileOf(node).pfs[0]!.netdev)} && device.attributes["sriovnetwork.openshift.io"].driver != "vfio-pci"`,
          { ifName: "net1", netAttachDefName: `vf-net-${i}` },
        ),
        pod(NS, `pinger-${i}`, `vf-${i}`),
      ]),
    );
    const addresses: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const ready = await waitPodReady(NS, `pinger-${i}`);
      expect(ready.spec?.nodeName).toBe(node.name);
      const { ipv4 } = await podInterface(NS, `pinger-${i}`, "net1");
      expect(ipv4, `net1 of pinger-${i}`).toHaveLength(1);
      addresses.push(ipv4[0]!.split("/")[0]!);
    }
    const [a, b] = addresses;
    const there = await execIn(NS, "pinger-0", ["ping", "-c", "3", "-W", "2", "-I", "net1", b!]);
    expect(there.stdout).toMatch(/3 packets received|3 received/);
    const back = await execIn(NS, "pinger-1", ["ping", "-c", "3", "-W", "2", "-I", "net1", a!]);
    expect(back.stdout).toMatch(/3 packets received|3 received/);

    const uids = await Promise.all(
      [0, 1].map(async (i) => (await claimOf(NS, `pinger-${i}`)).metadata!.uid!),
    );
    await deleteNamespace(NS);
    await waitUnprepared(uids);
  });
});
