import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../api/v1alpha1/group.js";
import type { ClaimExplanationList } from "../../cmd/kubectl-sriov/commands/explain.js";
import type { KubeClient } from "../../lib/kube/client.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
  createPinnedPod,
  createReadyNode,
  deleteIgnoringMissing,
  deleteTestNamespace,
  loadManifest,
  schedulingOutcome,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";
import { installKubectlSriov } from "./kubectl-plugin.js";
import { publishedNodeDevices, startEmulatedNodePublisher } from "./emulated-node.js";

const DRIVER = "sriovnetwork.openshift.io";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
const attr = (name: string) => `device.attributes["${DRIVER}"].${name}`;
const selector = (expression: string) => ({ cel: { expression } });

/**
 * Why is my claim pending: each cause made real (emulated nodes publishing through the
 * library, a SriovResourceFilter giving node a's VFs a resourceName, the real scheduler
 * refusing the pod), then `kubectl sriov explain` run as an operator runs it.
 */
describe("kubectl sriov explain: pending-claim causes against the real scheduler", () => {
  let client: KubeClient;
  let work: string;
  let plugin: ReturnType<typeof installKubectlSriov>;
  const tag = uniqueName("kexp");
  const namespace = tag;
  const resourceName = `${tag}-fast`;
  // a: selected by the filter; b: not; c: every VF held by another claim; d: publishes whole
  // PFs (only ens1f0: a VF of ens1f1 is host-used), and ens1f0 is held whole.
  const nodes = {
    a: uniqueName("kexp-a"),
    b: uniqueName("kexp-b"),
    c: uniqueName("kexp-c"),
    d: uniqueName("kexp-d"),
  };
  const publishers: NodeDevicePublisher[] = [];
  let vfsPerPf: number;
  let holder: { name: string };
  let wholeHolder: { name: string };

  beforeAll(async () => {
    client = testClient();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "kubectl-sriov-explain-"));
    plugin = installKubectlSriov(work, inject("kubeconfig"));
    await createNamespace(client, namespace);
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass.yaml"),
    );
    await createIfMissing(
      client,
      "/apis/resource.k8s.io/v1/deviceclasses",
      loadManifest("deployments/deviceclass-pf.yaml"),
    );
    await createReadyNode(client, nodes.a, { "example.com/kexp": tag });
    await createReadyNode(client, nodes.b);
    await createReadyNode(client, nodes.c);
    await createReadyNode(client, nodes.d);
    await client.request({
      method: "POST",
      path: `/apis/${API_VERSION}/namespaces/${namespace}/sriovresourcefilters`,
      body: {
        apiVersion: API_VERSION,
        kind: "SriovResourceFilter",
        metadata: { name: "fast" },
        spec: {
          nodeSelector: { "example.com/kexp": tag },
          configs: [{ resourceName, resourceFilters: [{}] }],
        },
      },
    });
    for (const nodeName of Object.values(nodes)) {
      publishers.push(
        await startEmulatedNodePublisher(client, {
          dir: work,
          nodeName,
          namespace,
          driverName: DRIVER,
          logger,
          publishPfs: nodeName === nodes.d,
        }),
      );
    }
    const devicesOf = (nodeName: string) => publishedNodeDevices(client, DRIVER, nodeName);
    const aDevices = await waitFor("node a's VFs under the filter's resourceName", async () => {
      const devices = await devicesOf(nodes.a);
      return devices.length > 0 &&
        devices.every((d) => d.attributes[`${DRIVER}/resourceName`]?.string === resourceName)
        ? devices
        : undefined;
    });
    const perPf = new Map<string, number>();
    for (const device of aDevices) {
      const pf = device.attributes[`${DRIVER}/pfPciAddress`]!.string!;
      perPf.set(pf, (perPf.get(pf) ?? 0) + 1);
    }
    vfsPerPf = Math.max(...perPf.values());
    for (const nodeName of [nodes.b, nodes.c, nodes.d]) {
      await waitFor(`${nodeName}'s VFs`, async () =>
        (await devicesOf(nodeName)).length > 0 ? true : undefined,
      );
    }
    // Every VF of node c allocated by the real scheduler to another claim.
    holder = await allocateForPod(
      client,
      { namespace, nodeName: nodes.c },
      {
        requests: [{ name: "all", exactly: { deviceClassName: DRIVER, allocationMode: "All" } }],
      },
    );
    await waitFor(`${nodes.d}'s whole PF`, async () =>
      (await devicesOf(nodes.d)).some((d) => d.name === WHOLE_PF) ? true : undefined,
    );
    wholeHolder = await allocateForPod(
      client,
      { namespace, nodeName: nodes.d },
      { requests: [{ name: "nic", exactly: { deviceClassName: `pf.${DRIVER}` } }] },
    );
  });

  afterAll(async () => {
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    await deleteTestNamespace(client, namespace);
    for (const nodeName of Object.values(nodes)) {
      await deleteIgnoringMissing(client, `/api/v1/nodes/${nodeName}`);
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** A claim and a pod pinned to `node` using it; resolves once the scheduler refused the pod. */
  async function pendingClaim(node: string, devices: unknown): Promise<string> {
    const name = uniqueName("pending");
    await client.request({
      method: "POST",
      path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims`,
      body: {
        apiVersion: "resource.k8s.io/v1",
        kind: "ResourceClaim",
        metadata: { name },
        spec: { devices },
      },
    });
    await createPinnedPod(client, { namespace, nodeName: node, name }, { resourceClaimName: name });
    expect(await schedulingOutcome(client, namespace, name, name)).toMatchObject({
      outcome: "refused",
    });
    return name;
  }

  async function explain(args: string[]): Promise<ClaimExplanationList> {
    const { code, stdout, stderr } = await plugin([
      "explain",
      ...args,
      "-n",
      namespace,
      "-o",
      "json",
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    return JSON.parse(stdout) as ClaimExplanationList;
  }

  /** The one PF node d publishes whole (x710's ens1f0). */
  const WHOLE_PF = "pf-0000-3b-00-0";
  const one = (request: Record<string, unknown>, constraints: unknown[] = []) => ({
    requests: [{ name: "vf", exactly: { deviceClassName: DRIVER, ...request } }],
    constraints,
  });

  const cases: {
    cause: string;
    node: keyof typeof nodes;
    devices: () => unknown;
    reason: () => RegExp;
    hint: () => string;
  }[] = [
    {
      cause: "a typo in an attribute name",
      node: "a",
      devices: () => one({ selectors: [selector(`${attr("resourceNmae")} == "${resourceName}"`)] }),
      reason: () => /^CEL runtime error on device .* no such key: resourceNmae/,
      hint: () => `no device publishes ${DRIVER}/resourceNmae; did you mean "resourceName"?`,
    },
    {
      cause: "a literal of the wrong type",
      node: "a",
      devices: () => one({ selectors: [selector(`${attr("numaNode")} == "0"`)] }),
      reason: () => /^request vf: no device passes its selectors$/,
      hint: () => `(${DRIVER}/numaNode is published as int, compared with a string)`,
    },
    {
      cause: "a missing guard for resourceName",
      node: "b",
      devices: () => one({ selectors: [selector(`${attr("resourceName")} == "${resourceName}"`)] }),
      reason: () => /^CEL runtime error on device .* no such key: resourceName/,
      hint: () => `guard the read, e.g. "resourceName" in device.attributes["${DRIVER}"] && `,
    },
    {
      cause: "not enough VFs on one PF for matchAttribute",
      node: "a",
      devices: () => one({ count: vfsPerPf + 1 }, [{ matchAttribute: `${DRIVER}/pfPciAddress` }]),
      reason: () =>
        new RegExp(
          `^matchAttribute ${DRIVER}/pfPciAddress: needs ${vfsPerPf + 1} usable devices with one value; the most on this node is ${vfsPerPf} `,
        ),
      hint: () => "needs that many free VFs on one PF",
    },
    {
      cause: "all VFs taken",
      node: "c",
      devices: () => one({}),
      reason: () =>
        /^request vf: needs 1, 0 usable \(\d+ match, \d+ allocated to other claims, 0 tainted\)$/,
      hint: () => `allocated to other claims (${namespace}/${holder.name})`,
    },
    {
      cause: "a VF of a whole PF another claim holds",
      node: "d",
      devices: () => one({ selectors: [selector(`${attr("pfPciAddress")} == "0000:3b:00.0"`)] }),
      reason: () =>
        new RegExp(
          `^request vf: needs 1, 0 usable \\(8 match, 0 allocated to other claims, 8 held back by shared counters \\(${WHOLE_PF} of counter set ${WHOLE_PF} is allocated to ${namespace}/${wholeHolder.name}\\), 0 tainted\\)$`,
        ),
      hint: () => "a whole PF and its VFs are never allocated together",
    },
    {
      cause: "a filter that never selected the node",
      node: "b",
      devices: () =>
        one({
          selectors: [
            selector(
              `"resourceName" in device.attributes["${DRIVER}"] && ${attr("resourceName")} == "${resourceName}"`,
            ),
          ],
        }),
      reason: () => /^request vf: no device passes its selectors$/,
      hint: () =>
        `has ${DRIVER}/resourceName == "${resourceName}"; published on: ${nodes.a} (no SriovResourceFilter giving "${resourceName}" selects`,
    },
  ];

  it.each(cases)("$cause: the scheduler refuses it, explain names the cause", async (entry) => {
    const node = nodes[entry.node];
    const claim = await pendingClaim(node, entry.devices());
    const [explanation] = (await explain(["claim", claim])).items;
    const onNode = explanation!.nodes.find((n) => n.name === node)!;
    expect(onNode.verdict).toBe("does-not-fit");
    expect(onNode.reason).toMatch(entry.reason());
    expect(onNode.hints.join("\n")).toContain(entry.hint());
  });

  it("explain pod: the pod's claim; text output names the fix", async () => {
    const claim = await pendingClaim(
      nodes.a,
      one({ selectors: [selector(`${attr("resourceNmae")} == "${resourceName}"`)] }),
    );
    // The pod is named after the claim (pendingClaim).
    const { code, stdout } = await plugin(["explain", "pod", claim, "-n", namespace]);
    expect(code).toBe(0);
    expect(stdout).toContain(`ResourceClaim ${namespace}/${claim}`);
    expect(stdout).toMatch(
      new RegExp(`^NODE ${nodes.a}  \\d+ devices  DOES NOT FIT: CEL runtime error`, "m"),
    );
    expect(stdout).toContain(
      `likely fix: no device publishes ${DRIVER}/resourceNmae; did you mean "resourceName"?`,
    );
  });

  it("-f FILE: a template explained before it is applied; a fitting one fits where the scheduler would put it", async () => {
    const file = path.join(work, "template.yaml");
    const template = (expression: string) => ({
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaimTemplate",
      metadata: { name: "draft" },
      spec: { spec: { devices: one({ selectors: [selector(expression)] }) } },
    });
    fs.writeFileSync(file, stringify(template(`${attr("resourceName")} == "${resourceName}"`)));
    const [draft] = (await explain(["-f", file])).items;
    expect(draft!.claim).toEqual({ kind: "ResourceClaimTemplate", namespace, name: "draft" });
    expect(draft!.fits).toContain(nodes.a);
    expect(draft!.nodes.find((n) => n.name === nodes.b)!.reason).toMatch(
      /no such key: resourceName/,
    );
    // Not applied: no template of that name exists.
    await expect(
      client.request({
        method: "GET",
        path: `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates/draft`,
      }),
    ).rejects.toThrow(/404/);
  });
});
