import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type {
  Condition,
  SriovResourceFilterSpec,
  SriovResourceFilterStatus,
} from "../../api/v1alpha1/sriov-resource-filter.js";
import { DEFAULT_LEASE_NAME, FilterStatusController } from "../../pkg/controller/controller.js";
import { formatMicroTime } from "../../pkg/controller/leader-election.js";
import { KubeApiError, type KubeClient, type KubeObject } from "../../lib/kube/client.js";
import { renderSlices } from "../../pkg/slices/render.js";
import { createNamespace, deleteIgnoringMissing, testClient, uniqueName, waitFor } from "./kube.js";
import { x710Vf as vf } from "../../pkg/devices/testing/fixtures.js";

const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
const SLICES = "/apis/resource.k8s.io/v1/resourceslices";
const RUN = uniqueName("ctl");
/** A driver name of our own, so this file's slices are the only ones the controllers see. */
const DRIVER = `${RUN}.sriov.example.com`;
const RUN_LABEL = "dra-sriov-test/run";

interface Filter extends KubeObject {
  spec: SriovResourceFilterSpec;
  status?: SriovResourceFilterStatus;
}

/** eth0 and eth1, four VFs each: what every test node publishes. */
const EIGHT_VFS = [0, 1].flatMap((pf) => [0, 1, 2, 3].map((id) => vf(pf, id)));

describe("SriovResourceFilter status controller", () => {
  let client: KubeClient;
  /** Two nodes labelled pool=<pool>, each publishing EIGHT_VFS. */
  const pool = uniqueName("pool");
  const nodeNames = [uniqueName("ctl-node"), uniqueName("ctl-node")];
  const namespaces: string[] = [];
  const controllers: FilterStatusController[] = [];

  beforeAll(async () => {
    client = testClient();
    for (const nodeName of nodeNames) {
      await client.request({
        method: "POST",
        path: "/api/v1/nodes",
        body: {
          apiVersion: "v1",
          kind: "Node",
          metadata: { name: nodeName, labels: { [RUN_LABEL]: RUN, pool } },
        },
      });
      for (const slice of renderSlices(EIGHT_VFS, {
        driverName: DRIVER,
        nodeName,
        generation: 1,
      })) {
        await client.request({ method: "POST", path: SLICES, body: slice });
      }
    }
  });

  afterEach(async () => {
    await Promise.all(controllers.splice(0).map((controller) => controller.stop()));
  });

  afterAll(async () => {
    await client.request({
      method: "DELETE",
      path: SLICES,
      query: { fieldSelector: `spec.driver=${DRIVER}` },
    });
    await client.request({
      method: "DELETE",
      path: "/api/v1/nodes",
      query: { labelSelector: `${RUN_LABEL}=${RUN}` },
    });
    for (const namespace of namespaces) {
      await deleteIgnoringMissing(client, `/api/v1/namespaces/${namespace}`);
    }
  });

  async function newNamespace(): Promise<string> {
    const namespace = uniqueName("ctl");
    await createNamespace(client, namespace);
    namespaces.push(namespace);
    return namespace;
  }

  function startController(
    namespace: string,
    extra: { identity?: string; leaderElection?: boolean } = {},
  ): FilterStatusController {
    const controller = new FilterStatusController(client, {
      namespace,
      driverName: DRIVER,
      identity: extra.identity ?? "controller-0",
      logger: logger.child({ replica: extra.identity }),
      leaderElection: extra.leaderElection ?? false,
      leaseDurationSeconds: 3,
      leaseRetryPeriodMs: 200,
      leaseRenewDeadlineMs: 2_000,
    });
    controller.start();
    controllers.push(controller);
    return controller;
  }

  const filtersPath = (namespace: string) =>
    `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${namespace}/sriovresourcefilters`;

  /** A filter on this file's two nodes, with configs [resourceName, pfNames?]. */
  function filterSpec(configs: [string, string[]?][]): SriovResourceFilterSpec {
    return {
      nodeSelector: { [RUN_LABEL]: RUN, pool },
      configs: configs.map(([resourceName, pfNames]) => ({
        resourceName,
        resourceFilters: [pfNames === undefined ? {} : { pfNames }],
      })),
    };
  }

  async function createFilter(namespace: string, name: string, spec: SriovResourceFilterSpec) {
    return client.request<Filter>({
      method: "POST",
      path: filtersPath(namespace),
      body: {
        apiVersion: "sriovnetwork.openshift.io/v1alpha1",
        kind: "SriovResourceFilter",
        metadata: { name },
        spec,
      },
    });
  }

  const getFilter = (namespace: string, name: string) =>
    client.request<Filter>({ method: "GET", path: `${filtersPath(namespace)}/${name}` });

  const conditionOf = (filter: Filter, type: string): Condition | undefined =>
    filter.status?.conditions?.find((c) => c.type === type);

  /** Waits until the filter's status satisfies `check` (which throws until it does). */
  async function statusOf(
    namespace: string,
    name: string,
    check: (filter: Filter) => void,
    timeoutMs = 20_000,
  ): Promise<Filter> {
    return waitFor(
      `the status of ${namespace}/${name}`,
      async () => {
        const filter = await getFilter(namespace, name);
        check(filter);
        return filter;
      },
      timeoutMs,
    );
  }

  it("accepts a valid filter, counts its nodes and VFs, and keeps transition times across spec changes", async () => {
    const namespace = await newNamespace();
    await createFilter(namespace, "fast", filterSpec([["fast", ["eth0"]]]));
    startController(namespace);

    const first = await statusOf(namespace, "fast", (filter) => {
      expect(conditionOf(filter, "Accepted")).toMatchObject({
        status: "True",
        reason: "Valid",
        observedGeneration: 1,
      });
      expect(conditionOf(filter, "Conflicting")).toMatchObject({ status: "False" });
    });
    expect(first.status?.matchedNodes).toBe(2);
    expect(first.status?.devicesExposed).toEqual([{ resourceName: "fast", count: 8 }]);

    await client.request({
      method: "PATCH",
      path: `${filtersPath(namespace)}/fast`,
      contentType: "application/merge-patch+json",
      body: { spec: filterSpec([["fast", ["eth0", "eth1#0-1"]]]) },
    });
    const second = await statusOf(namespace, "fast", (filter) => {
      expect(conditionOf(filter, "Accepted")?.observedGeneration).toBe(2);
    });
    expect(second.status?.devicesExposed).toEqual([{ resourceName: "fast", count: 12 }]);
    expect(conditionOf(second, "Accepted")?.lastTransitionTime).toBe(
      conditionOf(first, "Accepted")?.lastTransitionTime,
    );
  });

  it("marks a filter the schema admits but validation rejects as not accepted, naming the field", async () => {
    const namespace = await newNamespace();
    // A duplicate resourceName never gets this far: the CRD's own rule refuses it.
    const duplicate = createFilter(namespace, "dup", filterSpec([["a"], ["a"]]));
    await expect(duplicate).rejects.toThrow(/resourceName must be unique within a filter/);
    await expect(duplicate).rejects.toBeInstanceOf(KubeApiError);

    await createFilter(namespace, "backwards", filterSpec([["r", ["eth0#3-1"]]]));
    startController(namespace);
    const filter = await statusOf(namespace, "backwards", (f) => {
      expect(conditionOf(f, "Accepted")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    });
    expect(conditionOf(filter, "Accepted")?.message).toContain(
      'spec.configs[0].resourceFilters[0].pfNames[0]: "eth0#3-1": range 3-1 runs backwards',
    );
    expect(conditionOf(filter, "Conflicting")).toMatchObject({
      status: "False",
      reason: "NotApplied",
    });
    expect(filter.status?.matchedNodes).toBe(2);
    expect(filter.status?.devicesExposed).toEqual([{ resourceName: "r", count: 0 }]);
  });

  it("reports the filter that loses VFs to one earlier by name, and clears it when the winner goes", async () => {
    const namespace = await newNamespace();
    startController(namespace);
    await createFilter(namespace, "b-catch-all", filterSpec([["rest"]]));
    await createFilter(namespace, "a-eth0", filterSpec([["eth0", ["eth0"]]]));

    const loser = await statusOf(namespace, "b-catch-all", (filter) => {
      expect(conditionOf(filter, "Conflicting")).toMatchObject({
        status: "True",
        reason: "VfsTakenByOtherFilters",
      });
    });
    expect(conditionOf(loser, "Conflicting")?.message).toContain(
      `8 VFs this filter matches on 2 nodes went to filters that take precedence ` +
        `(by namespace, then name): ${namespace}/a-eth0 (8 VFs on 2 nodes).`,
    );
    expect(loser.status?.devicesExposed).toEqual([{ resourceName: "rest", count: 8 }]);
    const winner = await statusOf(namespace, "a-eth0", (filter) => {
      expect(conditionOf(filter, "Conflicting")?.status).toBe("False");
    });
    expect(winner.status?.devicesExposed).toEqual([{ resourceName: "eth0", count: 8 }]);

    await client.request({ method: "DELETE", path: `${filtersPath(namespace)}/a-eth0` });
    const cleared = await statusOf(namespace, "b-catch-all", (filter) => {
      expect(conditionOf(filter, "Conflicting")).toMatchObject({
        status: "False",
        reason: "NoConflict",
      });
    });
    expect(cleared.status?.devicesExposed).toEqual([{ resourceName: "rest", count: 16 }]);
  });

  it("follows Nodes and ResourceSlices as they change", async () => {
    const namespace = await newNamespace();
    const nodeName = uniqueName("ctl-node");
    const zone = uniqueName("zone");
    await client.request({
      method: "POST",
      path: "/api/v1/nodes",
      body: {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: nodeName, labels: { [RUN_LABEL]: RUN, zone } },
      },
    });
    await createFilter(namespace, "zoned", {
      nodeSelector: { [RUN_LABEL]: RUN, zone },
      configs: [{ resourceName: "z", resourceFilters: [{}] }],
    });
    startController(namespace);
    await statusOf(namespace, "zoned", (filter) => {
      expect(filter.status?.matchedNodes).toBe(1);
      expect(filter.status?.devicesExposed).toEqual([{ resourceName: "z", count: 0 }]);
    });

    const [slice] = renderSlices(EIGHT_VFS.slice(0, 3), {
      driverName: DRIVER,
      nodeName,
      generation: 1,
    });
    await client.request({ method: "POST", path: SLICES, body: slice });
    await statusOf(namespace, "zoned", (filter) => {
      expect(filter.status?.devicesExposed).toEqual([{ resourceName: "z", count: 3 }]);
    });

    await client.request({
      method: "PATCH",
      path: `/api/v1/nodes/${nodeName}`,
      contentType: "application/merge-patch+json",
      body: { metadata: { labels: { zone: "elsewhere" } } },
    });
    await statusOf(namespace, "zoned", (filter) => {
      expect(filter.status?.matchedNodes).toBe(0);
      expect(filter.status?.devicesExposed).toEqual([{ resourceName: "z", count: 0 }]);
    });
  });

  it("writes a status once and then leaves it alone while nothing changes", async () => {
    const namespace = await newNamespace();
    await createFilter(namespace, "steady", filterSpec([["x"]]));
    const controller = startController(namespace);
    const written = await statusOf(namespace, "steady", (filter) => {
      expect(filter.status?.matchedNodes).toBe(2);
    });
    // The watch echoes our own write; that pass must find nothing to do.
    await waitFor("the echo pass", async () => (controller.stats.passes >= 2 ? true : undefined));
    expect((await getFilter(namespace, "steady")).metadata?.resourceVersion).toBe(
      written.metadata?.resourceVersion,
    );
    // Nor must a pass that a change outside the status (a label) brings.
    const passes = controller.stats.passes;
    await client.request({
      method: "PATCH",
      path: `${filtersPath(namespace)}/steady`,
      contentType: "application/merge-patch+json",
      body: { metadata: { labels: { touched: "yes" } } },
    });
    await waitFor("the pass after the label change", async () =>
      controller.stats.passes > passes ? true : undefined,
    );
    expect(controller.stats.statusWrites).toBe(1);
    expect((await getFilter(namespace, "steady")).status).toEqual(written.status);
  });

  it("lets only the leader of two replicas write, and the other take over when it stops", async () => {
    const namespace = await newNamespace();
    await createFilter(namespace, "first", filterSpec([["x"]]));
    const replicas = [
      startController(namespace, { identity: "pod-1", leaderElection: true }),
      startController(namespace, { identity: "pod-2", leaderElection: true }),
    ];
    await statusOf(namespace, "first", (filter) => expect(filter.status?.matchedNodes).toBe(2));
    const holder = await leaseHolder(namespace);
    const leader = replicas[holder === "pod-1" ? 0 : 1]!;
    const follower = replicas[holder === "pod-1" ? 1 : 0]!;
    expect(leader.isLeader).toBe(true);
    expect(follower.isLeader).toBe(false);
    expect(leader.stats.statusWrites).toBeGreaterThan(0);
    expect(follower.stats.statusWrites).toBe(0);

    await leader.stop();
    await waitFor("the follower to take over", async () => (follower.isLeader ? true : undefined));
    expect(await leaseHolder(namespace)).toBe(holder === "pod-1" ? "pod-2" : "pod-1");
    await createFilter(namespace, "second", filterSpec([["y"]]));
    await statusOf(namespace, "second", (filter) => expect(filter.status?.matchedNodes).toBe(2));
    expect(follower.stats.statusWrites).toBeGreaterThan(0);
  });

  it("waits for the lease of a leader that vanished to expire before writing", async () => {
    const namespace = await newNamespace();
    await client.request({
      method: "POST",
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      body: {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: DEFAULT_LEASE_NAME },
        spec: {
          holderIdentity: "crashed-pod",
          leaseDurationSeconds: 3,
          renewTime: formatMicroTime(new Date()),
        },
      },
    });
    await createFilter(namespace, "f", filterSpec([["x"]]));
    const started = Date.now();
    const controller = startController(namespace, { identity: "pod-new", leaderElection: true });
    await statusOf(namespace, "f", (filter) => expect(filter.status?.matchedNodes).toBe(2));
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(controller.isLeader).toBe(true);
    expect(await leaseHolder(namespace)).toBe("pod-new");
  });

  async function leaseHolder(namespace: string): Promise<string | undefined> {
    const lease = await client.request<{ spec?: { holderIdentity?: string } }>({
      method: "GET",
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${DEFAULT_LEASE_NAME}`,
    });
    return lease.spec?.holderIdentity;
  }
});
