import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { API_VERSION, UPSTREAM_API_VERSION } from "../../api/v1alpha1/group.js";
import { decodeVfConfig } from "../../api/v1alpha1/vf-config.js";
import { fromBuildScript } from "../support/build-scripts.js";
import { KubeApiError, type KubeClient, type KubeObject } from "../../lib/kube/client.js";
import {
  createNamespace,
  deleteIgnoringMissing,
  deleteTestNamespace,
  repoRoot,
  testClient,
  uniqueName,
  waitFor,
} from "./kube.js";

const DRIVER = "sriovnetwork.openshift.io";
const CHART = path.join(repoRoot, "deployments/helm/dra-driver-sriov");
const VALID = { apiVersion: API_VERSION, kind: "VfConfig" };

/** Parameters and whether the node's decoder and the API server must both accept them. */
const CASES: [string, Record<string, unknown>][] = [
  ["minimal", VALID],
  ["the upstream group", { ...VALID, apiVersion: UPSTREAM_API_VERSION }],
  [
    "every field",
    {
      ...VALID,
      driver: "vfio-pci",
      ifName: "net1",
      netAttachDefName: "sriov-net",
      netAttachDefNamespace: "team-a",
      addVhostMount: true,
      ips: ["10.56.217.10/24", "fd00::10/64"],
      mac: "02:00:00:aa:bb:01",
    },
  ],
  ["unknown field", { ...VALID, ifname: "net1" }],
  ["wrong apiVersion", { ...VALID, apiVersion: "v1" }],
  ["no kind", { apiVersion: API_VERSION }],
  ["unknown driver", { ...VALID, driver: "igb_uio" }],
  ["driver not a string", { ...VALID, driver: 7 }],
  ["ifName with a slash", { ...VALID, ifName: "net/1" }],
  ["ifName with a space", { ...VALID, ifName: "net 1" }],
  ["ifName too long", { ...VALID, ifName: "n".repeat(16) }],
  ["ifName of 15 bytes", { ...VALID, ifName: "n".repeat(15) }],
  ["ifName ..", { ...VALID, ifName: ".." }],
  ["ifName template", { ...VALID, ifName: "net%d" }],
  ["ifName empty", { ...VALID, ifName: "" }],
  ["ifName with a non-ASCII space", { ...VALID, ifName: "net\u00a01" }],
  ["netAttachDefName upper case", { ...VALID, netAttachDefName: "Sriov" }],
  ["ips without prefix", { ...VALID, ips: ["10.0.0.1"] }],
  ["ips not a list", { ...VALID, ips: "10.0.0.1/24" }],
  ["too many ips", { ...VALID, ips: Array.from({ length: 17 }, (_, i) => `10.0.0.${i}/24`) }],
  ["multicast mac", { ...VALID, mac: "01:00:5e:00:00:01" }],
  ["addVhostMount a string", { ...VALID, addVhostMount: "true" }],
];

function decoderAccepts(parameters: unknown): boolean {
  try {
    decodeVfConfig(parameters, "test");
    return true;
  } catch {
    return false;
  }
}

/**
 * The chart's ValidatingAdmissionPolicy against the real API server: it refuses exactly the
 * VfConfigs the node's decoder refuses, naming the field, in ResourceClaims,
 * ResourceClaimTemplates and DeviceClasses. Bound here to objects with this run's label
 * only, so the other files' deliberate bad configs still reach prepare.
 */
describe("VfConfig admission policy", () => {
  let client: KubeClient;
  let namespace: string;
  const runLabel = { "dra-sriov-admission-test": uniqueName("run") };
  const policyName = `${uniqueName("vfconfig")}.${DRIVER}`;

  const claim = (name: string, parameters: unknown) => ({
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceClaim",
    metadata: { name, labels: runLabel },
    spec: {
      devices: {
        requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }],
        config: [{ opaque: { driver: DRIVER, parameters } }],
      },
    },
  });

  /** Whether the API server stores the claim: undefined if it did, else its refusal. */
  async function refusal(object: KubeObject, collection: string): Promise<string | undefined> {
    try {
      await client.request({ method: "POST", path: collection, body: object });
      await deleteIgnoringMissing(client, `${collection}/${object.metadata!.name}`);
      return undefined;
    } catch (error) {
      if (error instanceof KubeApiError && (error.status === 422 || error.status === 403)) {
        return error.message;
      }
      throw error;
    }
  }
  const claims = () => `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaims`;

  beforeAll(async () => {
    client = testClient();
    namespace = uniqueName("admission");
    await createNamespace(client, namespace);
    const helmBin = fromBuildScript("build-helm.sh", "HELM_BIN");
    const rendered = spawnSync(
      helmBin,
      ["template", "r", CHART, "--show-only", "templates/vfconfig-admission-policy.yaml"],
      { encoding: "utf8" },
    );
    if (rendered.status !== 0) throw new Error(`helm template: ${rendered.stderr}`);
    const [policy, binding] = parseAllDocuments(rendered.stdout).map(
      (doc) => doc.toJS() as KubeObject & { spec: Record<string, unknown> },
    );
    policy!.metadata = { name: policyName };
    binding!.metadata = { name: policyName };
    binding!.spec = {
      ...binding!.spec,
      policyName,
      matchResources: { objectSelector: { matchLabels: runLabel } },
    };
    await client.request({
      method: "POST",
      path: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
      body: policy,
    });
    await client.request({
      method: "POST",
      path: "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
      body: binding,
    });
    // The API server compiles the policy and syncs the binding asynchronously.
    await waitFor(
      "the policy to refuse a bad VfConfig",
      async () =>
        (await refusal(claim(uniqueName("probe"), { ...VALID, driver: "nope" }), claims()))
          ? true
          : undefined,
      60_000,
    );
  });

  afterAll(async () => {
    await deleteIgnoringMissing(
      client,
      `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${policyName}`,
    );
    await deleteIgnoringMissing(
      client,
      `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${policyName}`,
    );
    await deleteTestNamespace(client, namespace);
  });

  it.each(CASES)("agrees with the node's decoder on %s", async (name, parameters) => {
    const refused = await refusal(claim(uniqueName("c"), parameters), claims());
    expect({ name, accepted: refused === undefined }).toEqual({
      name,
      accepted: decoderAccepts(parameters),
    });
    if (refused !== undefined) expect(refused).toMatch(/VfConfig/);
  });

  it("names the bad field", async () => {
    expect(await refusal(claim(uniqueName("c"), { ...VALID, ifName: "net/1" }), claims())).toMatch(
      /VfConfig ifName: must be .*a Linux interface name/,
    );
  });

  it("checks claim templates and DeviceClasses too, and leaves other drivers' configs alone", async () => {
    const bad = { ...VALID, mac: "nope" };
    const template = {
      apiVersion: "resource.k8s.io/v1",
      kind: "ResourceClaimTemplate",
      metadata: { name: uniqueName("t"), labels: runLabel },
      spec: { spec: claim("x", bad).spec },
    };
    expect(
      await refusal(
        template,
        `/apis/resource.k8s.io/v1/namespaces/${namespace}/resourceclaimtemplates`,
      ),
    ).toMatch(/VfConfig mac/);
    const deviceClass = {
      apiVersion: "resource.k8s.io/v1",
      kind: "DeviceClass",
      metadata: { name: `${uniqueName("class")}.${DRIVER}`, labels: runLabel },
      spec: { config: [{ opaque: { driver: DRIVER, parameters: bad } }] },
    };
    expect(await refusal(deviceClass, "/apis/resource.k8s.io/v1/deviceclasses")).toMatch(
      /VfConfig mac/,
    );
    const otherDriver = {
      ...claim(uniqueName("c"), { anything: "goes" }),
    };
    otherDriver.spec.devices.config[0]!.opaque.driver = "gpu.example.com";
    expect(await refusal(otherDriver, claims())).toBeUndefined();
  });
});
