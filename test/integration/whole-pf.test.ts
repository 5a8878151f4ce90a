import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { HostPaths } from "../../pkg/host/paths.js";
import {
  deviceClassesPath,
  nodesPath,
  podsPath,
  resourceClaimsPath,
} from "../../lib/kube/api-paths.js";
import { KubeClient, type KubeObject } from "../../lib/kube/client.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  createIfMissing,
  createNamespace,
  createPinnedPod,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  listNodeSlices,
  loadManifest,
  repoRoot,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";

// Whole PFs (--publish-pfs) on a real control plane: the API server keeps the counters and
// the real scheduler never gives out a PF together with one of its VFs; with the
// DRAPartitionableDevices gate off, the node publishes VFs only.

const DRIVER = "sriovnetwork.openshift.io";
const PF_CLASS = `pf.${DRIVER}`;
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

interface SliceDevice {
  name: string;
  attributes: Record<string, { string?: string; int?: number; bool?: boolean }>;
  consumesCounters?: { counterSet: string; counters: Record<string, { value: string }> }[];
}
interface Slice extends KubeObject {
  spec: {
    devices?: SliceDevice[];
    sharedCounters?: { name: string; counters: Record<string, { value: string }> }[];
  };
}
interface Claim extends KubeObject {
  status?: { allocation?: { devices: { results: { device: string; pool: string }[] } } };
}
interface Pod extends KubeObject {
  spec: { nodeName?: string };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

const attr = (device: SliceDevice, name: string) => {
  const value = device.attributes[`${DRIVER}/${name}`];
  return value?.string ?? value?.int ?? value?.bool;
};

/** A publisher of the emulated x710 host with --publish-pfs, as the daemon wires it. */
function pfPublisher(client: KubeClient, root: string, nodeName: string, namespace: string) {
  return new NodeDevicePublisher(client, {
    paths: new HostPaths({ root }),
    driverName: DRIVER,
    nodeName,
    filterNamespace: namespace,
    publishHostUsedVfs: false,
    publishPfs: true,
    rediscoveryIntervalMs: 60_000,
    logger,
  });
}

describe("whole PFs with DRAPartitionableDevices on (the 1.37 default)", () => {
  let client: KubeClient;
  let root: string;
  let nodeName: string;
  let namespace: string;
  let publisher: NodeDevicePublisher;

  const nodeSlices = () => listNodeSlices<Slice>(client, DRIVER, nodeName);
  const publishedDevices = async () =>
    (await nodeSlices()).flatMap((slice) => slice.spec.devices ?? []);

  beforeAll(async () => {
    client = testClient();
    root = fs.mkdtempSync(path.join(os.tmpdir(), "whole-pf-host-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    nodeName = uniqueName("whole-pf-node");
    namespace = uniqueName("whole-pf");
    await createReadyNode(client, nodeName);
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      deviceClassesPath(),
      loadManifest("deployments/deviceclass.yaml"),
    );
    await createIfMissing(
      client,
      deviceClassesPath(),
      loadManifest("deployments/deviceclass-pf.yaml"),
    );
    publisher = pfPublisher(client, root, nodeName, namespace);
    publisher.start();
    await waitFor("the whole PF in the node's slices", async () =>
      (await publishedDevices()).some((device) => device.name === "pf-0000-3b-00-0")
        ? true
        : undefined,
    );
  });

  afterAll(async () => {
    await publisher?.stop();
    await deleteTestNamespace(client, namespace);
    await deleteIgnoringMissing(client, nodesPath(nodeName));
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("publishes the PF the host does not use, with counters the API server keeps as written", async () => {
    const devices = await publishedDevices();
    // x710: ens1f0 whole + 8 VFs; ens1f1's VF 7 carries a host address, so ens1f1 is never
    // published whole and that VF is withheld: 1 + 8 + 7.
    expect(devices).toHaveLength(16);
    const pf = devices.find((device) => device.name === "pf-0000-3b-00-0")!;
    expect([attr(pf, "deviceType"), attr(pf, "deviceID"), attr(pf, "driver")]).toEqual([
      "pf",
      "1572",
      "i40e",
    ]);
    expect([attr(pf, "PFName"), attr(pf, "totalVfs"), attr(pf, "numVfs")]).toEqual([
      "ens1f0",
      64,
      8,
    ]);
    expect(devices.some((device) => device.name === "pf-0000-3b-00-1")).toBe(false);
    expect(devices.filter((device) => attr(device, "deviceType") === "vf")).toHaveLength(15);
    const sets = (await nodeSlices()).flatMap((slice) => slice.spec.sharedCounters ?? []);
    expect(sets).toEqual([{ name: "pf-0000-3b-00-0", counters: { vfs: { value: "8" } } }]);
    const consumers = devices.filter((device) => device.consumesCounters !== undefined);
    expect(consumers.map((device) => device.name).sort()).toEqual(
      [
        pf.name,
        ...devices
          .filter((d) => attr(d, "pfPciAddress") === "0000:3b:00.0" && d !== pf)
          .map((d) => d.name),
      ].sort(),
    );
    // The server stored what was sent: publishing again writes nothing.
    const writes = publisher.slices.stats.writes;
    await publisher.slices.publish(publisher.lastResult!.devices);
    expect(publisher.slices.stats).toMatchObject({ writes, countersRefused: false });
  });

  it("never gives out the PF with one of its VFs: 100 claims racing, each allocated or Pending with the scheduler's reason", async () => {
    const PF = "0000:3b:00.0";
    const own = `device.attributes["${DRIVER}"]`;
    // Every 5th claim asks for the whole PF, the rest for any VF of it; created all at once.
    const claims = Array.from({ length: 100 }, (_, index) => {
      const wantsPf = index % 5 === 0;
      return {
        name: `${wantsPf ? "pf" : "vf"}-${String(index).padStart(3, "0")}`,
        wantsPf,
        className: wantsPf ? PF_CLASS : DRIVER,
        expression: wantsPf ? `${own}.pciAddress == "${PF}"` : `${own}.pfPciAddress == "${PF}"`,
      };
    });
    await Promise.all(
      claims.map(async (claim) => {
        await client.request({
          method: "POST",
          path: resourceClaimsPath(namespace),
          body: {
            apiVersion: "resource.k8s.io/v1",
            kind: "ResourceClaim",
            metadata: { name: claim.name },
            spec: {
              devices: {
                requests: [
                  {
                    name: "net",
                    exactly: {
                      deviceClassName: claim.className,
                      selectors: [{ cel: { expression: claim.expression } }],
                    },
                  },
                ],
              },
            },
          },
        });
        await createPinnedPod(
          client,
          { namespace, nodeName, name: claim.name },
          { resourceClaimName: claim.name },
        );
      }),
    );

    /** Each claim's device, or the reason its pod is Pending; undefined while any is undecided. */
    const outcome = async () => {
      const [claimList, podList] = await Promise.all([
        client.request<{ items: Claim[] }>({
          method: "GET",
          path: resourceClaimsPath(namespace),
        }),
        client.request<{ items: Pod[] }>({
          method: "GET",
          path: podsPath(namespace),
        }),
      ]);
      const claimsByName = new Map(claimList.items.map((c) => [c.metadata!.name!, c]));
      const podsByName = new Map(podList.items.map((p) => [p.metadata!.name!, p]));
      const result = new Map<string, { device: string } | { pending: string }>();
      for (const { name } of claims) {
        const devices = claimsByName.get(name)?.status?.allocation?.devices.results ?? [];
        const pod = podsByName.get(name);
        const unschedulable = pod?.status?.conditions?.find(
          (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
        );
        if (devices.length === 1 && pod?.spec.nodeName === nodeName) {
          result.set(name, { device: devices[0]!.device });
        } else if (devices.length === 0 && unschedulable?.message) {
          result.set(name, { pending: unschedulable.message });
        } else return undefined;
      }
      return result;
    };
    const settled = await waitFor(
      "every claim allocated or its pod Unschedulable",
      outcome,
      90_000,
    );

    const allocated = [...settled].flatMap(([name, state]) =>
      "device" in state ? [{ name, device: state.device }] : [],
    );
    const devices = allocated.map((claim) => claim.device);
    expect(new Set(devices).size, "a device allocated twice").toBe(devices.length);
    const pfAllocated = devices.includes("pf-0000-3b-00-0");
    if (pfAllocated) expect(devices, "the PF with one of its VFs").toEqual(["pf-0000-3b-00-0"]);
    else {
      // No PF: the VF claims took all 8 VFs of the PF, and each claim got what it asked for.
      expect(devices).toHaveLength(8);
      expect(allocated.every((claim) => claim.name.startsWith("vf-"))).toBe(true);
    }
    for (const [name, state] of settled) {
      if ("pending" in state) expect(state.pending, name).toMatch(/resourceclaim|claim|device/i);
    }

    // Once the winning side goes (its allocated claims and its pending ones), the other side
    // gets its turn: the counters are free again.
    const winningPrefix = pfAllocated ? "pf-" : "vf-";
    const gone = claims.filter((claim) => claim.name.startsWith(winningPrefix));
    await Promise.all(
      gone.flatMap(({ name }) => [
        deleteIgnoringMissing(client, podsPath(namespace, name)),
        deleteIgnoringMissing(client, resourceClaimsPath(namespace, name)),
      ]),
    );
    const remaining = claims.filter((claim) => !claim.name.startsWith(winningPrefix));
    const next = await waitFor(
      "the other side allocated after the winning side went",
      async () => {
        const now = await allocatedAmong(remaining.map((claim) => claim.name));
        return now.length === (pfAllocated ? 8 : 1) ? now : undefined;
      },
      90_000,
    );
    const nextDevices = next.map((claim) => claim.device);
    expect(new Set(nextDevices).size).toBe(nextDevices.length);
    if (pfAllocated) expect(nextDevices.every((device) => !device.startsWith("pf-"))).toBe(true);
    else expect(nextDevices).toEqual(["pf-0000-3b-00-0"]);

    /** Those of these claims that are allocated now, with their device. */
    async function allocatedAmong(
      names: readonly string[],
    ): Promise<{ name: string; device: string }[]> {
      const list = await client.request<{ items: Claim[] }>({
        method: "GET",
        path: resourceClaimsPath(namespace),
      });
      return list.items.flatMap((claim) => {
        const result = claim.status?.allocation?.devices.results[0];
        const name = claim.metadata!.name!;
        return names.includes(name) && result ? [{ name, device: result.device }] : [];
      });
    }
  });
});

describe("whole PFs on a control plane with DRAPartitionableDevices off", () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "dra-sriov-gate-off-"));
  const env = {
    ...process.env,
    DRA_SRIOV_STATE: state,
    DRA_SRIOV_FEATURE_GATES: "DRAPartitionableDevices=false",
  };
  const script = path.join(repoRoot, "hack/control-plane.sh");
  let client: KubeClient;
  let root: string;
  let publisher: NodeDevicePublisher | undefined;
  const nodeName = uniqueName("gate-off-node");

  beforeAll(() => {
    const up = spawnSync("bash", [script, "up"], { env, stdio: ["ignore", "ignore", "inherit"] });
    if (up.status !== 0) throw new Error(`hack/control-plane.sh up failed; logs in ${state}/logs`);
    client = KubeClient.load(path.join(state, "kubeconfig"));
  });

  afterAll(async () => {
    await publisher?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
    spawnSync("bash", [script, "down"], { env, stdio: "inherit" });
  });

  it("finds the counters dropped, and publishes the VFs only, without counters", async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "gate-off-host-"));
    await buildEmulatedHost({ root, profile: builtinProfiles.x710 });
    await createReadyNode(client, nodeName);
    publisher = pfPublisher(client, root, nodeName, "default");
    publisher.start();
    const slices = await waitFor("VF-only slices after the counters were refused", async () => {
      if (!publisher!.slices.stats.countersRefused) return undefined;
      const listed = await listNodeSlices<Slice>(client, DRIVER, nodeName);
      const devices = listed.flatMap((slice) => slice.spec.devices ?? []);
      return devices.length === 15 && devices.every((d) => attr(d, "deviceType") === "vf")
        ? listed
        : undefined;
    });
    expect(slices.flatMap((slice) => slice.spec.sharedCounters ?? [])).toEqual([]);
    expect(
      slices.flatMap((slice) => slice.spec.devices ?? []).some((d) => d.consumesCounters),
    ).toBe(false);
    // Settled: publishing again writes nothing (no rewrite loop against a server that drops fields).
    const writes = publisher.slices.stats.writes;
    await publisher.slices.publish(publisher.lastResult!.devices);
    expect(publisher.slices.stats.writes).toBe(writes);
  });
});
