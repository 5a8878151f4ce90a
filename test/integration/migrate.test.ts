import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { sriovResourceFiltersPath } from "../../api/v1alpha1/group.js";
import {
  configMapsPath,
  deviceClassesPath,
  networkAttachmentDefinitionsPath,
} from "../../lib/kube/api-paths.js";
import { KubeApiError, type KubeClient, type KubeObject } from "../../lib/kube/client.js";
import { CLI } from "./daemon.js";
import {
  createNamespace,
  deleteIgnoringMissing,
  deleteTestNamespace,
  repoRoot,
  testClient,
  uniqueName,
} from "./kube.js";

/*
 * `dra-driver-sriov migrate` against the real API server: it reads the device plugin's
 * ConfigMap (the README's documented config) and the cluster's NetworkAttachmentDefinitions
 * from it, and what it writes is accepted there: the SriovResourceFilter passes the CRD's
 * schema and rules, every DeviceClass's CEL compiles and its extendedResourceName is kept.
 */

const README_CONFIG = path.join(repoRoot, "pkg/migrate/testdata/readme-config.json");

interface DeviceClass extends KubeObject {
  spec: { extendedResourceName?: string; selectors: unknown[]; config?: unknown[] };
}

describe("dra-driver-sriov migrate on a real API server", () => {
  let client: KubeClient;
  const namespace = uniqueName("migrate");
  /** Resources without their own prefix get this one: class names of our own. */
  const prefix = `${namespace}.example.com`;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "migrate-it-"));
  let classes: DeviceClass[] = [];
  let report = "";

  beforeAll(async () => {
    client = testClient();
    await createNamespace(client, namespace);
    await client.request({
      method: "POST",
      path: configMapsPath(namespace),
      body: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "sriovdp-config" },
        data: { "config.json": fs.readFileSync(README_CONFIG, "utf8") },
      },
    });
    await client.request({
      method: "POST",
      path: networkAttachmentDefinitionsPath(namespace),
      body: {
        apiVersion: "k8s.cni.cncf.io/v1",
        kind: "NetworkAttachmentDefinition",
        metadata: {
          name: "sriov-net1",
          annotations: { "k8s.v1.cni.cncf.io/resourceName": `${prefix}/intel_sriov_netdevice` },
        },
        spec: { config: '{"cniVersion":"1.0.0","name":"sriov-network","type":"sriov"}' },
      },
    });
    const run = spawnSync(
      process.execPath,
      [
        CLI,
        "migrate",
        `--configmap=${namespace}/sriovdp-config`,
        "--nads-from-cluster",
        `--kubeconfig=${inject("kubeconfig")}`,
        `--namespace=${namespace}`,
        `--resource-prefix=${prefix}`,
        "--node-selector=sriov.example.com/stack=dra",
        `--output-dir=${out}`,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    report = run.stdout;
    classes = parseAllDocuments(fs.readFileSync(path.join(out, "device-classes.yaml"), "utf8")).map(
      (document) => document.toJS() as DeviceClass,
    );
  });

  afterAll(async () => {
    for (const deviceClass of classes) {
      await deleteIgnoringMissing(client, deviceClassesPath(deviceClass.metadata!.name));
    }
    await deleteTestNamespace(client, namespace);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it("maps the cluster's NetworkAttachmentDefinition to its resource's class", () => {
    expect(report).toContain(
      `NetworkAttachmentDefinition ${namespace}/sriov-net1 (${prefix}/intel_sriov_netdevice): DeviceClass intel-sriov-netdevice.${prefix}`,
    );
    expect(fs.readFileSync(path.join(out, "report.txt"), "utf8")).toBe(report);
  });

  it("writes a SriovResourceFilter the API server accepts as it is", async () => {
    const filter = parse(
      fs.readFileSync(path.join(out, "sriov-resource-filter.yaml"), "utf8"),
    ) as KubeObject & { spec: unknown };
    const created = await client.request<KubeObject & { spec: unknown }>({
      method: "POST",
      path: sriovResourceFiltersPath(namespace),
      body: filter,
    });
    expect(created.spec).toEqual(filter.spec);
  });

  it("writes DeviceClasses whose CEL compiles and whose extendedResourceName is kept", async () => {
    // The README's seven netDevice resources it can carry over.
    expect(classes.map((c) => c.spec.extendedResourceName)).toEqual([
      `${prefix}/intel_sriov_netdevice`,
      "intel.com/intel_sriov_dpdk",
      "mellanox.com/mlnx_sriov_rdma",
      `${prefix}/infiniband_rdma_netdevs`,
      `${prefix}/intel_sriov_netdevice_additional_env`,
      "broadcom.com/brcm_sriov_bnxt",
      `${prefix}/old_selectors_syntax_example`,
    ]);
    for (const deviceClass of classes) {
      // Classes named after another prefix than ours may be left by an earlier run.
      await deleteIgnoringMissing(client, deviceClassesPath(deviceClass.metadata!.name));
      const created = await client.request<DeviceClass>({
        method: "POST",
        path: deviceClassesPath(),
        body: deviceClass,
      });
      expect(created.spec).toEqual(deviceClass.spec);
    }
  });

  it("writes pfNames and rootDevices VF ranges the CRD's patterns accept", async () => {
    const run = spawnSync(
      process.execPath,
      [
        CLI,
        "migrate",
        `--config-file=${path.join(repoRoot, "pkg/migrate/testdata/readme-ranges.json")}`,
        `--namespace=${namespace}`,
        "--filter-name=ranges",
        `--resource-prefix=${prefix}`,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(run.status).toBe(0);
    const [filter, ...rangeClasses] = parseAllDocuments(run.stdout).map(
      (document) => document.toJS() as KubeObject & { spec: { configs?: unknown } },
    );
    expect(JSON.stringify(filter!.spec)).toContain('"rootDevices":["0000:86:00.0#0-1,3,4"]');
    const created = await client.request<KubeObject & { spec: unknown }>({
      method: "POST",
      path: sriovResourceFiltersPath(namespace),
      body: filter,
    });
    expect(created.spec).toEqual(filter!.spec);
    classes.push(...(rangeClasses as DeviceClass[]));
    for (const deviceClass of rangeClasses) {
      await client.request({ method: "POST", path: deviceClassesPath(), body: deviceClass });
    }
  });

  it("would have been refused a class whose CEL does not compile", async () => {
    const broken = structuredClone(classes[0]!);
    broken.metadata = { name: `broken.${prefix}` };
    broken.spec.selectors = [{ cel: { expression: 'device.attributes["x"].resourceName ==' } }];
    const error = await client
      .request({ method: "POST", path: deviceClassesPath(), body: broken })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(422);
  });
});
