import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { generatedFiles } from "../../api/generate.js";
import { fromBuildScript } from "../support/build-scripts.js";
import { cliCommands } from "../../cmd/dra-driver-sriov/flags-reference.js";
import { DEFAULT_LEASE_NAME, FilterStatusController } from "../../pkg/controller/controller.js";
import { buildEmulatedHost, builtinProfiles } from "../../pkg/emulator/index.js";
import { envName, parseFlags } from "../../lib/flags/flags.js";
import { HostPaths } from "../../pkg/host/paths.js";
import { KubeApiError, KubeClient, type KubeObject } from "../../lib/kube/client.js";
import { loadClusterAccess } from "../../lib/kube/kubeconfig.js";
import { LOG_FORMATS, LOG_LEVELS } from "../../lib/log/logger.js";
import { ClaimStatusWriter } from "../../pkg/claimstatus/claim-status.js";
import { NodeDevicePublisher } from "../../pkg/publishing/node-publisher.js";
import {
  allocateForPod,
  createIfMissing,
  createNamespace,
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

// The Helm chart (deployments/helm/dra-driver-sriov): helm lint and template, the values
// schema, its documentation, every rendered object validated by the real kube-apiserver,
// a real install, and its RBAC proven by running the components' code under tokens of the
// chart's ServiceAccounts.

const CHART = path.join(repoRoot, "deployments/helm/dra-driver-sriov");
const FULL_VALUES = path.join(repoRoot, "test/chart/values-full.yaml");
const DRIVER = "sriovnetwork.openshift.io";
const logger = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

/**
 * Flags the chart passes (as environment variables) before the kubelet-plugin command has
 * them; a binary ignores variables of flags it does not know. Drop each once it exists.
 */

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: unknown[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: {
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: string;
  }[];
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
}
interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
  nodeSelector?: Record<string, string>;
}
interface Workload extends KubeObject {
  spec: {
    replicas?: number;
    updateStrategy?: { type: string; rollingUpdate?: Record<string, unknown> };
    strategy?: { type: string };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface RbacRole extends KubeObject {
  rules: Rule[];
}
interface Claim extends KubeObject {
  status?: {
    allocation?: { devices: { results: { device: string; pool: string; driver: string }[] } };
    devices?: { driver: string; pool: string; device: string; data?: Record<string, unknown> }[];
  };
}
interface Filter extends KubeObject {
  status?: { matchedNodes?: number; conditions?: { type: string; status: string }[] };
}

function run(command: string, args: string[], input?: string) {
  const result = spawnSync(command, args, { encoding: "utf8", input, maxBuffer: 64 << 20 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("the Helm chart", () => {
  let helmBin: string;
  let kubectlBin: string;

  const helm = (...args: string[]) => {
    const result = run(helmBin, args);
    if (result.status !== 0) throw new Error(`helm ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  /** The chart's objects for a release, as `helm template` renders them. */
  const render = (release: string, namespace: string, ...args: string[]): KubeObject[] =>
    parseAllDocuments(helm("template", release, CHART, "--namespace", namespace, ...args))
      .map((doc) => doc.toJS() as KubeObject | null)
      .filter((object): object is KubeObject => object !== null);
  const find = <T extends KubeObject>(objects: KubeObject[], kind: string, suffix = ""): T => {
    const found = objects.filter(
      (o) => o.kind === kind && (o.metadata?.name ?? "").endsWith(suffix),
    );
    expect(found, `one ${kind} named *${suffix}`).toHaveLength(1);
    return found[0] as T;
  };
  const kubectl = (args: string[], input?: string) =>
    run(kubectlBin, ["--kubeconfig", inject("kubeconfig"), ...args], input);
  const toYaml = (objects: KubeObject[]) => objects.map((o) => JSON.stringify(o)).join("\n---\n");

  beforeAll(() => {
    helmBin = fromBuildScript("build-helm.sh", "HELM_BIN");
    kubectlBin = path.join(fromBuildScript("build-k8s.sh", "K8S_BIN_DIR"), "kubectl");
  });

  describe("rendering", () => {
    it("passes helm lint --strict with the default and with the full values", () => {
      helm("lint", CHART, "--strict");
      helm("lint", CHART, "--strict", "--values", FULL_VALUES);
    });

    it("refuses values that are not in the schema or have the wrong type", () => {
      const attempts = [
        ["--set", "driver.cdiroot=/run/cdi"], // a typo
        ["--set", "securityContext.priviledged=true"],
        ["--set", "healthcheck.port=http"],
        ["--set", "logging.level=verbose"],
        ["--set", "controller.replicas=0"],
        ["--set", "cni.binDir=opt/cni/bin"], // not absolute
        ["--set", "driver.defaultInterfacePrefix=a-much-too-long-prefix"],
        ["--set", "metrics.serviceMonitor.enabeld=true"],
      ];
      for (const args of attempts) {
        const result = run(helmBin, ["template", "r", CHART, ...args]);
        expect(result.status, args.join(" ")).not.toBe(0);
        expect(result.stderr).toContain("don't meet the specifications of the schema");
      }
    });

    it("has log levels and formats in its schema exactly as the CLI takes them", () => {
      const schema = JSON.parse(fs.readFileSync(`${CHART}/values.schema.json`, "utf8")) as {
        properties: { logging: { properties: Record<string, { enum: string[] }> } };
      };
      expect(schema.properties.logging.properties["level"]!.enum).toEqual([...LOG_LEVELS]);
      expect(schema.properties.logging.properties["format"]!.enum).toEqual([...LOG_FORMATS]);
    });

    it("runs the node plugin with surge updates, per-pod sockets, probes, no host port, no hostPID", () => {
      const daemonSet = find<Workload>(render("r", "drivers"), "DaemonSet", "-node-plugin");
      expect(daemonSet.spec.updateStrategy).toEqual({
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
      });
      const pod = daemonSet.spec.template.spec;
      expect(pod).toMatchObject({ hostNetwork: true, hostPID: false });
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(30);
      const [container] = pod.containers;
      expect(container!.args![0]).toBe("kubelet-plugin");
      const env = new Map(container!.env!.map((e) => [e.name, e]));
      expect(env.get("POD_UID")?.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.uid" } });
      expect(env.get("NODE_NAME")?.valueFrom).toEqual({ fieldRef: { fieldPath: "spec.nodeName" } });
      // A container port would be a host port: the surge pod could never be scheduled.
      expect(container!.ports).toBeUndefined();
      expect(container!.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: 51515 });
      expect(container!.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: 51515 });
      expect(container!.args).toContain("--health-port=51515");
      expect(container!.lifecycle?.preStop?.sleep?.seconds).toBeGreaterThan(0);
      expect(container!.securityContext).toMatchObject({
        privileged: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "SYS_ADMIN"] },
      });
    });

    it("mounts exactly the host paths the node plugin needs", () => {
      const pod = find<Workload>(render("r", "drivers"), "DaemonSet").spec.template.spec;
      const hostPaths = Object.fromEntries(
        pod.volumes!.filter((v) => v.hostPath).map((v) => [v.hostPath!.path, v.hostPath!.type]),
      );
      expect(hostPaths).toEqual({
        "/var/lib/kubelet/plugins_registry": "Directory",
        [`/var/lib/kubelet/plugins/${DRIVER}`]: "DirectoryOrCreate",
        "/var/run/cdi": "DirectoryOrCreate",
        "/sys/bus/pci": "Directory",
        "/sys/devices": "Directory",
        "/dev/vfio": "DirectoryOrCreate",
        "/var/run/netns": "DirectoryOrCreate",
        "/var/run/nri": "DirectoryOrCreate",
        "/opt/cni/bin": "DirectoryOrCreate",
        "/var/lib/cni": "DirectoryOrCreate",
      });
      const mounts = new Map(pod.containers[0]!.volumeMounts!.map((m) => [m.name, m]));
      // Host paths are mounted where they are on the host (--host-root stays /).
      for (const volume of pod.volumes!.filter((v) => v.hostPath)) {
        expect(mounts.get(volume.name)?.mountPath).toBe(volume.hostPath!.path);
      }
      expect(mounts.get("netns")).toMatchObject({
        readOnly: true,
        mountPropagation: "HostToContainer",
      });
      for (const name of ["dev-vfio", "cni-bin", "nri"])
        expect(mounts.get(name)?.readOnly).toBe(true);
    });

    it("with driver.deviceInfo, passes --device-info and mounts Multus's device-information directory", () => {
      const pod = find<Workload>(
        render("r", "drivers", "--set", "driver.deviceInfo=true"),
        "DaemonSet",
      ).spec.template.spec;
      expect(pod.containers[0]!.args).toContain("--device-info");
      const volume = pod.volumes!.find((v) => v.name === "device-info");
      expect(volume?.hostPath).toEqual({
        path: "/var/run/k8s.cni.cncf.io/devinfo/dp",
        type: "DirectoryOrCreate",
      });
      const mount = pod.containers[0]!.volumeMounts!.find((m) => m.name === "device-info");
      expect(mount?.mountPath).toBe("/var/run/k8s.cni.cncf.io/devinfo/dp");
    });

    it("on an emulated host (test clusters), mounts its root in place of the node's host paths", () => {
      const root = "/tmp/emulated-node";
      const objects = render(
        "r",
        "drivers",
        "--set",
        `emulatedHost.root=${root}`,
        "--set",
        "nri.netnsDir=/run/containerd/netns",
      );
      const pod = find<Workload>(objects, "DaemonSet").spec.template.spec;
      const hostPaths = Object.fromEntries(
        pod.volumes!.filter((v) => v.hostPath).map((v) => [v.hostPath!.path, v.hostPath!.type]),
      );
      expect(hostPaths).toEqual({
        [root]: "Directory",
        "/run/containerd/netns": "DirectoryOrCreate",
        "/var/run/nri": "DirectoryOrCreate",
        "/opt/cni/bin": "DirectoryOrCreate",
        "/var/lib/cni": "DirectoryOrCreate",
      });
      const mounts = new Map(pod.containers[0]!.volumeMounts!.map((m) => [m.name, m]));
      for (const volume of pod.volumes!.filter((v) => v.hostPath)) {
        expect(mounts.get(volume.name)?.mountPath).toBe(volume.hostPath!.path);
      }
      // The kubelet mounts pods' volumes under its directory, inside the root: they must
      // come and go in the plugin's view too.
      expect(mounts.get("emulated-host")?.mountPropagation).toBe("HostToContainer");
      expect(pod.containers[0]!.args).toContain(`--host-root=${root}`);
      expect(
        find<Workload>(
          render("r", "drivers"),
          "DaemonSet",
        ).spec.template.spec.containers[0]!.args!.some((arg) => arg.startsWith("--host-root")),
      ).toBe(false);
    });

    it("with several emulated nodes on one machine, mounts their directory whole and names each node's paths", () => {
      const nodes = "/tmp/emulated-nodes";
      const own = `${nodes}/$(NODE_NAME)`;
      const objects = render(
        "r",
        "drivers",
        ...[
          `emulatedHost.nodesDir=${nodes}`,
          `emulatedHost.root=${own}/host`,
          `nri.socketPath=${own}/containerd/nri/nri.sock`,
          `nri.netnsDir=${own}/containerd/netns`,
          `cni.binDir=${own}/cni-bin`,
          `cni.cacheDir=${own}/cni`,
        ].flatMap((value) => ["--set", value]),
      );
      const pod = find<Workload>(objects, "DaemonSet").spec.template.spec;
      const container = pod.containers[0]!;
      // One host path, never one that names a node: the kubelet expands $(NODE_NAME) in
      // the container's arguments and variables only.
      expect(pod.volumes!.filter((v) => v.hostPath).map((v) => v.hostPath)).toEqual([
        { path: nodes, type: "Directory" },
      ]);
      expect(container.volumeMounts!.find((m) => m.name === "emulated-nodes")).toMatchObject({
        mountPath: nodes,
        mountPropagation: "HostToContainer",
      });
      expect(container.args).toContain(`--host-root=${own}/host`);
      const env = new Map(container.env!.map((e) => [e.name, e]));
      // Expanded: NODE_NAME is defined before the variables that name it.
      expect(container.env![0]!.name).toBe("NODE_NAME");
      expect(env.get("NRI_SOCKET")?.value).toBe(`${own}/containerd/nri/nri.sock`);
      expect(env.get("CNI_CACHE_DIR")?.value).toBe(`${own}/cni/dra-driver-sriov`);
      // The nodes share one network namespace: each serves its probes on its own address.
      expect(env.get("HEALTH_ADDRESS")?.valueFrom).toEqual({
        fieldRef: { fieldPath: "status.hostIP" },
      });
      expect(
        find<Workload>(
          render("r", "drivers"),
          "DaemonSet",
        ).spec.template.spec.containers[0]!.env!.some((e) => e.name === "HEALTH_ADDRESS"),
      ).toBe(false);
    });

    it("passes only flags the commands define, with values they accept", () => {
      const commands = new Map(cliCommands().map((c) => [c.name, c.flags]));
      for (const values of [[], ["--values", FULL_VALUES]]) {
        const objects = render("r", "drivers", ...values);
        for (const kind of ["DaemonSet", "Deployment"]) {
          const [container] = find<Workload>(objects, kind).spec.template.spec.containers;
          const [command, ...args] = container!.args!;
          const flags = commands.get(command!)!;
          expect(flags, `command ${command}`).toBeDefined();
          const env: Record<string, string> = {};
          for (const variable of container!.env ?? []) {
            const flag = Object.keys(flags).find((name) => envName(name) === variable.name);
            expect(flag, variable.name).toBeDefined();
            if (flag) env[variable.name] = variable.value ?? "from-the-downward-api";
          }
          // Throws on an unknown flag, a wrong type or a value outside the choices.
          parseFlags(flags, args, env);
        }
      }
    });

    it("runs the node plugin with the image's memory flags and the controller with V8's defaults", () => {
      // The image's ENTRYPOINT trades CPU for RSS (one node plugin per node); the chart gives
      // the single controller replica plain `node` on the same script, so its passes keep speed.
      const dockerfile = fs.readFileSync(
        path.join(repoRoot, "deployments/container/Dockerfile"),
        "utf8",
      );
      const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
      expect(entrypoint).toContain("--optimize-for-size");
      const objects = render("r", "drivers");
      const node = find<Workload>(objects, "DaemonSet").spec.template.spec.containers[0]!;
      expect(node.command).toBeUndefined();
      const controller = find<Workload>(objects, "Deployment").spec.template.spec.containers[0]!;
      expect(controller.command).toEqual([entrypoint[0], entrypoint.at(-1)]);
    });

    it("elects a leader only with several controller replicas", () => {
      const single = render("r", "drivers");
      const one = find<Workload>(single, "Deployment").spec;
      expect(one.template.spec.containers[0]!.args).toContain("--no-leader-election");
      expect(one.strategy).toEqual({ type: "Recreate" });
      const controllerRole = find<RbacRole>(single, "Role", "-controller");
      expect(controllerRole.rules.flatMap((r) => r.resources)).not.toContain("leases");

      const several = render("r", "drivers", "--set", "controller.replicas=3");
      const three = find<Workload>(several, "Deployment").spec;
      expect(three.replicas).toBe(3);
      expect(three.template.spec.containers[0]!.args).toContain("--leader-election");
      expect(three.strategy).toBeUndefined();
      const leaseRules = find<RbacRole>(several, "Role", "-controller").rules.filter((r) =>
        r.resources.includes("leases"),
      );
      expect(leaseRules).toEqual([
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          resourceNames: [DEFAULT_LEASE_NAME],
          verbs: ["get", "update"],
        },
      ]);
    });

    it("puts the filter Roles in driver.namespace and names objects after fullnameOverride", () => {
      const objects = render(
        "r",
        "drivers",
        "--set",
        "driver.namespace=filters",
        "--set",
        "fullnameOverride=sriov",
      );
      for (const role of objects.filter((o) => o.kind === "Role" || o.kind === "RoleBinding")) {
        expect(role.metadata?.namespace).toBe("filters");
      }
      expect(find<Workload>(objects, "DaemonSet").metadata?.name).toBe("sriov-node-plugin");
      expect(find<Workload>(objects, "DaemonSet").metadata?.namespace).toBe("drivers");
      const args = find<Workload>(objects, "Deployment").spec.template.spec.containers[0]!.args;
      expect(args).toContain("--namespace=filters");
      expect(
        render("r", "drivers", "--set", "controller.enabled=false").map((o) => o.kind),
      ).not.toContain("Deployment");
    });

    it("runs as the upstream driver with driver.name: both components, the DeviceClass, the RBAC", () => {
      const upstream = "sriovnetwork.k8snetworkplumbingwg.io";
      const objects = render("r", "drivers", "--set", `driver.name=${upstream}`);
      for (const kind of ["DaemonSet", "Deployment"]) {
        const args = find<Workload>(objects, kind).spec.template.spec.containers[0]!.args;
        expect(args, kind).toContain(`--driver-name=${upstream}`);
      }
      expect(
        objects.filter((o) => o.kind === "DeviceClass").map((o) => o.metadata?.name),
      ).toContain(upstream);
      const rules = objects
        .filter((o) => o.kind === "ClusterRole" || o.kind === "Role")
        .flatMap(
          (o) =>
            (o as unknown as { rules: { resources: string[]; resourceNames?: string[] }[] }).rules,
        );
      expect(
        rules.find((r) => r.resources.includes("resourceclaims/driver"))?.resourceNames,
      ).toEqual([upstream]);
      expect(
        objects.filter((o) => o.kind === "ValidatingAdmissionPolicy").map((o) => o.metadata?.name),
      ).toEqual([`${upstream}-vfconfig`]);
      const result = run(helmBin, ["template", "r", CHART, "--set", "driver.name=Not_A_Name"]);
      expect(result.status).not.toBe(0);
    });

    it("ships the generated CRDs unchanged and the repository's DeviceClass", () => {
      const crds = generatedFiles().filter((file) => file.path.startsWith("deployments/crds/"));
      expect(fs.readdirSync(`${CHART}/crds`).sort()).toEqual(
        crds.map((file) => path.basename(file.path)).sort(),
      );
      for (const file of crds) {
        expect(
          fs.readFileSync(`${CHART}/crds/${path.basename(file.path)}`, "utf8"),
          `${CHART}/crds is stale: cp ${file.path} deployments/helm/dra-driver-sriov/crds/`,
        ).toBe(file.contents);
      }
      const deviceClass = find<KubeObject & { spec: unknown }>(render("r", "d"), "DeviceClass");
      const repository = loadManifest("deployments/deviceclass.yaml") as KubeObject & {
        spec: unknown;
      };
      expect(deviceClass.metadata?.name).toBe(repository.metadata?.name);
      expect(deviceClass.spec).toEqual(repository.spec);
      const kinds = render("r", "d", "--set", "deviceClass.create=false").map((o) => o.kind);
      expect(kinds).not.toContain("DeviceClass");
    });

    it("renders a DeviceClass with extendedResourceName per extendedResources entry", () => {
      const classes = render("r", "d", "--values", FULL_VALUES)
        .filter((o) => o.kind === "DeviceClass")
        .map((o) => o as KubeObject & { spec: Record<string, unknown> })
        .filter((c) => c.spec["extendedResourceName"] !== undefined);
      expect(classes.map((c) => [c.metadata?.name, c.spec["extendedResourceName"]])).toEqual([
        ["full-vf.helm-test.example.com", "helm-test.example.com/full_vf"],
        ["full-dpdk.helm-test.example.com", "helm-test.example.com/full_dpdk"],
      ]);
      expect(classes[1]!.spec["config"]).toEqual([
        {
          opaque: {
            driver: DRIVER,
            parameters: {
              apiVersion: "sriovnetwork.openshift.io/v1alpha1",
              kind: "VfConfig",
              driver: "vfio-pci",
              addVhostMount: true,
            },
          },
        },
      ]);
      expect(classes[0]!.spec["config"]).toBeUndefined();
      expect(classes[1]!.spec["selectors"]).toHaveLength(2);
    });

    it("documents every value in its README, and nothing else", () => {
      const readme = fs.readFileSync(`${CHART}/README.md`, "utf8");
      const documented = new Set(
        [...readme.matchAll(/^\| `([A-Za-z0-9.]+)` +\|/gm)].map((match) => match[1]!),
      );
      // Kubernetes objects passed through whole: their fields are the API's.
      const passThrough = new Set([
        "resources",
        "securityContext",
        "affinity",
        "controller.resources",
        "controller.securityContext",
        "controller.affinity",
      ]);
      const keys: string[] = [];
      const walk = (value: unknown, prefix: string) => {
        const entries =
          typeof value === "object" && value !== null && !Array.isArray(value)
            ? Object.entries(value)
            : [];
        if (entries.length === 0 || passThrough.has(prefix)) {
          keys.push(prefix);
          return;
        }
        for (const [key, child] of entries) {
          walk(child, prefix === "" ? key : `${prefix}.${key}`);
        }
      };
      walk(parse(fs.readFileSync(`${CHART}/values.yaml`, "utf8")), "");
      for (const key of keys) expect(documented, `README.md documents ${key}`).toContain(key);
      expect([...documented].filter((key) => !keys.includes(key))).toEqual([]);
    });
  });

  describe("against the API server", () => {
    let client: KubeClient;
    const runId = uniqueName("helm");
    const release = runId;
    const namespace = `${runId}-driver`;
    const filterNamespace = `${runId}-filters`;
    const claimNamespace = `${runId}-claims`;
    const defaultRelease = `${runId}-d`;
    const defaultNamespace = `${runId}-default`;
    const nodes: string[] = [];
    const stops: (() => Promise<void>)[] = [];
    const nodePluginSa = `${release}-sriov-node-plugin`;
    const controllerSa = `${release}-sriov-controller`;
    let root: string;

    /** The full values, installed with the filters in a namespace of their own. */
    const fullRender = (...extra: string[]) =>
      render(
        release,
        namespace,
        "--values",
        FULL_VALUES,
        "--set",
        `driver.namespace=${filterNamespace}`,
        ...extra,
      );

    beforeAll(async () => {
      client = testClient();
      for (const ns of [namespace, filterNamespace, claimNamespace, defaultNamespace]) {
        await createNamespace(client, ns);
      }
      root = fs.mkdtempSync(path.join(os.tmpdir(), "helm-host-"));
      await buildEmulatedHost({ root, profile: builtinProfiles.x710 });

      // A real `helm install` of the full values (but the ServiceMonitor: no Prometheus
      // Operator here), and only the RBAC of the default values, to compare what one
      // controller replica may do.
      helm(
        "install",
        release,
        CHART,
        "--kubeconfig",
        inject("kubeconfig"),
        "--namespace",
        namespace,
        "--values",
        FULL_VALUES,
        "--set",
        `driver.namespace=${filterNamespace}`,
        "--set",
        "metrics.serviceMonitor.enabled=false",
        // The suite's other files share this control plane and create the cluster-wide
        // class whenever they need it; the chart's own class is checked by rendering.
        "--set",
        "deviceClass.create=false",
        // A cluster-wide admission policy would refuse the bad VfConfigs other files send
        // to prepare on purpose; admission.test.ts checks the policy in a namespace of its own.
        "--set",
        "admission.vfConfigPolicy=false",
      );
      const rbac = render(defaultRelease, defaultNamespace).filter((o) =>
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(
          o.kind!,
        ),
      );
      expect(kubectl(["apply", "--server-side", "-f", "-"], toYaml(rbac)).status).toBe(0);
    });

    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
      for (const ns of [namespace, defaultNamespace]) {
        // The DaemonSet first, leaving its pods to the forced delete: no kubelet confirms.
        await client
          .request({
            method: "DELETE",
            path: `/apis/apps/v1/namespaces/${ns}/daemonsets`,
            query: { propagationPolicy: "Orphan" },
          })
          .catch(() => undefined);
      }
      for (const ns of [namespace, filterNamespace, claimNamespace, defaultNamespace]) {
        await deleteTestNamespace(client, ns);
      }
      for (const kind of ["clusterrolebindings", "clusterroles"]) {
        for (const instance of [release, defaultRelease]) {
          await client.request({
            method: "DELETE",
            path: `/apis/rbac.authorization.k8s.io/v1/${kind}`,
            query: { labelSelector: `app.kubernetes.io/instance=${instance}` },
          });
        }
      }
      for (const node of nodes) {
        await client
          .request({
            method: "DELETE",
            path: "/apis/resource.k8s.io/v1/resourceslices",
            query: { fieldSelector: `spec.nodeName=${node}` },
          })
          .catch(() => undefined);
        await deleteIgnoringMissing(client, `/api/v1/nodes/${node}`);
      }
      if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    /** A Node with a Ready status, deleted after the tests. */
    async function newNode(labels: Record<string, string> = {}): Promise<string> {
      const name = uniqueName("helm-node");
      await createReadyNode(client, name, labels);
      nodes.push(name);
      return name;
    }

    it("validates every rendered object, CRDs included, with server-side dry run", () => {
      const cases = [
        render(defaultRelease, defaultNamespace, "--include-crds"),
        fullRender("--include-crds"),
      ];
      for (const objects of cases) {
        // No Prometheus Operator here: the ServiceMonitor is checked by shape only.
        const serviceMonitors = objects.filter((o) => o.kind === "ServiceMonitor");
        const applied = kubectl(
          [
            "apply",
            "--server-side",
            "--force-conflicts", // the real install (beforeAll) owns these objects
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
          ],
          toYaml(objects.filter((o) => o.kind !== "ServiceMonitor")),
        );
        expect(applied.stderr).toBe("");
        expect(applied.status).toBe(0);
        expect(applied.stdout.trim().split("\n")).toHaveLength(
          objects.length - serviceMonitors.length,
        );
        for (const monitor of serviceMonitors) {
          expect(monitor).toMatchObject({
            apiVersion: "monitoring.coreos.com/v1",
            spec: { endpoints: [{ port: "metrics", path: "/metrics", interval: "15s" }] },
          });
        }
      }
    });

    it("runs the controller with a pod the restricted Pod Security Standard admits", async () => {
      const restricted = `${runId}-restricted`;
      await client.request({
        method: "POST",
        path: "/api/v1/namespaces",
        body: {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: {
            name: restricted,
            labels: { "pod-security.kubernetes.io/enforce": "restricted" },
          },
        },
      });
      try {
        await waitFor("the default ServiceAccount", () =>
          client.request({
            method: "GET",
            path: `/api/v1/namespaces/${restricted}/serviceaccounts/default`,
          }),
        );
        const template = find<Workload>(render("r", restricted), "Deployment").spec.template;
        await client.request({
          method: "POST",
          path: `/api/v1/namespaces/${restricted}/pods`,
          query: { dryRun: "All" },
          body: {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "controller", labels: template.metadata.labels },
            spec: { ...template.spec, serviceAccountName: "default" },
          },
        });
      } finally {
        await deleteTestNamespace(client, restricted);
      }
    });

    it("installs for real: the DaemonSet starts a pod on a node its selector matches", async () => {
      // The full values' node selector and node affinity.
      const node = await newNode({
        "dra-driver-sriov.test/node-plugin": "true",
        "kubernetes.io/os": "linux",
      });
      const pod = await waitFor("the node plugin's pod on the labelled node", async () => {
        const pods = await client.request<{
          items: (KubeObject & { spec: PodSpec & { nodeName?: string; priority?: number } })[];
        }>({
          method: "GET",
          path: `/api/v1/namespaces/${namespace}/pods`,
          query: { labelSelector: "app.kubernetes.io/component=node-plugin" },
        });
        return pods.items.find((p) => p.spec.nodeName === node);
      });
      expect(pod.spec).toMatchObject({ serviceAccountName: nodePluginSa, hostNetwork: true });
      expect(pod.spec.priority).toBeGreaterThan(1_000_000_000); // system-cluster-critical
    });

    /** Asks the API server whether a ServiceAccount may do something (RBAC only). */
    async function allowed(
      serviceAccount: { namespace: string; name: string },
      attributes: {
        verb: string;
        resource: string;
        group?: string;
        subresource?: string;
        name?: string;
        namespace?: string;
      },
    ): Promise<boolean> {
      const review = await client.request<{ status: { allowed: boolean } }>({
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: `system:serviceaccount:${serviceAccount.namespace}:${serviceAccount.name}`,
            groups: [
              "system:serviceaccounts",
              `system:serviceaccounts:${serviceAccount.namespace}`,
              "system:authenticated",
            ],
            resourceAttributes: { group: "", ...attributes },
          },
        },
      });
      return review.status.allowed;
    }

    type Check = [verb: string, resource: string, extra?: Record<string, string>];
    async function expectAccess(
      serviceAccount: { namespace: string; name: string },
      checks: { allowed: Check[]; denied: Check[] },
    ) {
      const label = ([verb, resource, extra]: Check) =>
        `${verb} ${resource} ${JSON.stringify(extra ?? {})}`;
      const attributes = ([verb, resource, extra = {}]: Check) => {
        const [name, group = ""] = resource.split(/\.(.*)/s) as [string, string?];
        const [plural, subresource] = name.split("/") as [string, string?];
        return { verb, resource: plural, group, ...(subresource ? { subresource } : {}), ...extra };
      };
      for (const check of checks.allowed) {
        expect(await allowed(serviceAccount, attributes(check)), `may ${label(check)}`).toBe(true);
      }
      for (const check of checks.denied) {
        expect(await allowed(serviceAccount, attributes(check)), `may not ${label(check)}`).toBe(
          false,
        );
      }
    }

    it("gives the node plugin the API access its code uses, and no more", async () => {
      const anyNs = { namespace: claimNamespace };
      const filters = { namespace: filterNamespace };
      await expectAccess(
        { namespace, name: nodePluginSa },
        {
          allowed: [
            ["get", "resourceclaims.resource.k8s.io", anyNs],
            ["patch", "resourceclaims/status.resource.k8s.io", anyNs],
            [
              "associated-node:patch",
              "resourceclaims/driver.resource.k8s.io",
              { ...anyNs, name: DRIVER },
            ],
            ...["list", "watch", "create", "update", "delete"].map((verb): Check => [
              verb,
              "resourceslices.resource.k8s.io",
            ]),
            ...["get", "list", "watch"].map((verb): Check => [verb, "nodes"]),
            ["get", "network-attachment-definitions.k8s.cni.cncf.io", anyNs],
            // driver.networksAnnotation (on in the full values): the pod and its network-status.
            ["get", "pods", anyNs],
            ["patch", "pods", anyNs],
            ["list", "sriovresourcefilters.sriovnetwork.openshift.io", filters],
            ["watch", "sriovresourcefilters.sriovnetwork.openshift.io", filters],
            ...["list", "watch"].flatMap((verb): Check[] => [
              [verb, "sriovresourcepolicies.sriovnetwork.k8snetworkplumbingwg.io", filters],
              [verb, "deviceattributes.sriovnetwork.k8snetworkplumbingwg.io", filters],
            ]),
          ],
          denied: [
            [
              "arbitrary-node:patch",
              "resourceclaims/driver.resource.k8s.io",
              { ...anyNs, name: DRIVER },
            ],
            [
              "associated-node:patch",
              "resourceclaims/driver.resource.k8s.io",
              { ...anyNs, name: "other.example.com" },
            ],
            ["update", "resourceclaims/status.resource.k8s.io", anyNs],
            ["list", "resourceclaims.resource.k8s.io", anyNs],
            ["patch", "resourceclaims.resource.k8s.io", anyNs],
            ["delete", "resourceclaims.resource.k8s.io", anyNs],
            ["deletecollection", "resourceslices.resource.k8s.io"],
            ["patch", "nodes"],
            ["patch", "nodes/status"],
            ["list", "secrets", anyNs],
            ["get", "secrets", { namespace }],
            ["create", "pods", anyNs],
            ["list", "network-attachment-definitions.k8s.cni.cncf.io", anyNs],
            ["list", "sriovresourcefilters.sriovnetwork.openshift.io", anyNs],
            ["update", "sriovresourcefilters/status.sriovnetwork.openshift.io", filters],
            ["delete", "sriovresourcefilters.sriovnetwork.openshift.io", filters],
            ["list", "sriovresourcepolicies.sriovnetwork.k8snetworkplumbingwg.io", anyNs],
            ["create", "deviceattributes.sriovnetwork.k8snetworkplumbingwg.io", filters],
            ["create", "leases.coordination.k8s.io", filters],
          ],
        },
      );
    });

    it("gives the controller the API access its code uses, and no more", async () => {
      const filters = { namespace: filterNamespace };
      const lease = { ...filters, name: DEFAULT_LEASE_NAME };
      await expectAccess(
        { namespace, name: controllerSa },
        {
          allowed: [
            ...["get", "list", "watch"].map((verb): Check => [
              verb,
              "sriovresourcefilters.sriovnetwork.openshift.io",
              filters,
            ]),
            ["update", "sriovresourcefilters/status.sriovnetwork.openshift.io", filters],
            ["list", "nodes"],
            ["watch", "nodes"],
            ["list", "resourceslices.resource.k8s.io"],
            ["watch", "resourceslices.resource.k8s.io"],
            ["create", "leases.coordination.k8s.io", filters],
            ["get", "leases.coordination.k8s.io", lease],
            ["update", "leases.coordination.k8s.io", lease],
          ],
          denied: [
            ["patch", "sriovresourcefilters/status.sriovnetwork.openshift.io", filters],
            ["update", "sriovresourcefilters.sriovnetwork.openshift.io", filters],
            ["delete", "sriovresourcefilters.sriovnetwork.openshift.io", filters],
            [
              "list",
              "sriovresourcefilters.sriovnetwork.openshift.io",
              { namespace: claimNamespace },
            ],
            ["get", "nodes"],
            ["create", "resourceslices.resource.k8s.io"],
            ["delete", "resourceslices.resource.k8s.io"],
            ["get", "resourceclaims.resource.k8s.io", { namespace: claimNamespace }],
            ["get", "leases.coordination.k8s.io", { ...filters, name: "someone-elses-lease" }],
            ["delete", "leases.coordination.k8s.io", lease],
            ["create", "leases.coordination.k8s.io", { namespace: claimNamespace }],
            ["list", "secrets", filters],
            ["create", "pods", { namespace }],
          ],
        },
      );
      // One replica (the default values) runs without leader election, and gets no Lease.
      await expectAccess(
        { namespace: defaultNamespace, name: `${defaultRelease}-dra-driver-sriov-controller` },
        {
          allowed: [
            [
              "update",
              "sriovresourcefilters/status.sriovnetwork.openshift.io",
              { namespace: defaultNamespace },
            ],
          ],
          denied: [
            ["create", "leases.coordination.k8s.io", { namespace: defaultNamespace }],
            [
              "get",
              "leases.coordination.k8s.io",
              { namespace: defaultNamespace, name: DEFAULT_LEASE_NAME },
            ],
          ],
        },
      );
    });

    /** A client authenticated as the ServiceAccount, bound to a pod on `nodeName` if given. */
    async function serviceAccountClient(name: string, nodeName?: string): Promise<KubeClient> {
      let boundObjectRef: Record<string, string> | undefined;
      if (nodeName !== undefined) {
        const pod = await client.request<KubeObject>({
          method: "POST",
          path: `/api/v1/namespaces/${namespace}/pods`,
          body: {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: uniqueName("token-pod") },
            spec: {
              nodeName,
              serviceAccountName: name,
              containers: [{ name: "plugin", image: "registry.invalid/never-pulled" }],
            },
          },
        });
        boundObjectRef = {
          kind: "Pod",
          apiVersion: "v1",
          name: pod.metadata!.name!,
          uid: pod.metadata!.uid!,
        };
      }
      const request = await client.request<{ status: { token: string } }>({
        method: "POST",
        path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: 3600, ...(boundObjectRef ? { boundObjectRef } : {}) },
        },
      });
      const admin = loadClusterAccess(inject("kubeconfig"));
      return new KubeClient({
        ...admin,
        // The service account's token only, without the admin's client certificate.
        tls: { ca: admin.tls.ca, insecureSkipVerify: admin.tls.insecureSkipVerify },
        auth: { kind: "token", token: request.status.token },
      });
    }

    let nodeA: string;
    let nodePlugin: KubeClient;

    it("lets the node plugin, as its ServiceAccount, publish its node and write the status of its node's claims only", async () => {
      nodeA = await newNode();
      const nodeB = await newNode();
      nodePlugin = await serviceAccountClient(nodePluginSa, nodeA);
      const otherNodesPlugin = await serviceAccountClient(nodePluginSa, nodeB);

      // The publisher: node get/list/watch, filters list/watch, slices list/watch/create.
      const publisher = new NodeDevicePublisher(nodePlugin, {
        paths: new HostPaths({ root }),
        driverName: DRIVER,
        nodeName: nodeA,
        filterNamespace,
        publishHostUsedVfs: false,
        rediscoveryIntervalMs: 60_000,
        logger,
      });
      publisher.start();
      stops.push(() => publisher.stop());
      await waitFor("the node's slices, published as the node plugin", async () => {
        const slices = await listNodeSlices<KubeObject & { spec: { devices: unknown[] } }>(
          client,
          DRIVER,
          nodeA,
        );
        return slices.flatMap((s) => s.spec.devices).length === 15 ? true : undefined;
      });

      await createIfMissing(
        client,
        "/apis/resource.k8s.io/v1/deviceclasses",
        loadManifest("deployments/deviceclass.yaml"),
      );
      const allocated = await allocateForPod(
        client,
        { namespace: claimNamespace, nodeName: nodeA },
        { requests: [{ name: "vf", exactly: { deviceClassName: DRIVER } }] },
      );
      const claimPath = `/apis/resource.k8s.io/v1/namespaces/${claimNamespace}/resourceclaims/${allocated.name}`;
      const claim = await nodePlugin.request<Claim>({ method: "GET", path: claimPath });
      const [result] = claim.status!.allocation!.devices.results;

      // status.devices through the driver's own writer (read + merge patch).
      const writer = new ClaimStatusWriter(nodePlugin, {
        driverName: DRIVER,
        logger,
        retryDelaysMs: [],
      });
      writer.write(allocated, [
        { driver: DRIVER, pool: result!.pool, device: result!.device, data: { ifName: "net1" } },
      ]);
      await writer.settled();
      const written = await client.request<Claim>({ method: "GET", path: claimPath });
      expect(written.status?.devices).toHaveLength(1);
      expect(written.status?.devices?.[0]).toMatchObject({
        driver: DRIVER,
        pool: nodeA,
        device: result!.device,
        data: { ifName: "net1" },
      });

      // A node plugin on another node: RBAC lets it patch, the associated-node check does not.
      const refused = await otherNodesPlugin
        .request({
          method: "PATCH",
          path: `${claimPath}/status`,
          contentType: "application/merge-patch+json",
          body: {
            status: {
              devices: [
                {
                  driver: DRIVER,
                  pool: result!.pool,
                  device: result!.device,
                  data: { ifName: "evil" },
                },
              ],
            },
          },
        })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(KubeApiError);
      // The synthetic subresource check is part of validation: 422 with a Forbidden cause.
      expect((refused as KubeApiError).status).toBe(422);
      expect((refused as KubeApiError).message).toContain(
        'requires resource="resourceclaims/driver"',
      );

      // The NetworkAttachmentDefinition a VfConfig names.
      const nad = `/apis/k8s.cni.cncf.io/v1/namespaces/${claimNamespace}/network-attachment-definitions`;
      await client.request({
        method: "POST",
        path: nad,
        body: {
          apiVersion: "k8s.cni.cncf.io/v1",
          kind: "NetworkAttachmentDefinition",
          metadata: { name: "vf-net" },
          spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "vf-net", type: "sriov" }) },
        },
      });
      await nodePlugin.request({ method: "GET", path: `${nad}/vf-net` });
    });

    it("lets the controller, as its ServiceAccount, elect itself and write SriovResourceFilter status", async () => {
      const controllerClient = await serviceAccountClient(controllerSa);
      const controller = new FilterStatusController(controllerClient, {
        namespace: filterNamespace,
        driverName: DRIVER,
        identity: "helm-test-0",
        leaderElection: true,
        logger,
        leaseDurationSeconds: 3,
        leaseRetryPeriodMs: 200,
        leaseRenewDeadlineMs: 2_000,
      });
      controller.start();
      stops.push(() => controller.stop());

      const filtersPath = `/apis/sriovnetwork.openshift.io/v1alpha1/namespaces/${filterNamespace}/sriovresourcefilters`;
      await client.request({
        method: "POST",
        path: filtersPath,
        body: {
          apiVersion: "sriovnetwork.openshift.io/v1alpha1",
          kind: "SriovResourceFilter",
          metadata: { name: "helm" },
          spec: {
            nodeSelector: { "kubernetes.io/hostname": nodeA },
            configs: [{ resourceName: "helm_vfs", resourceFilters: [{ pfNames: ["ens1f0"] }] }],
          },
        },
      });
      const filter = await waitFor("the filter's status, written by the controller", async () => {
        const read = await client.request<Filter>({ method: "GET", path: `${filtersPath}/helm` });
        const accepted = read.status?.conditions?.find((c) => c.type === "Accepted");
        return accepted?.status === "True" ? read : undefined;
      });
      expect(filter.status?.matchedNodes).toBe(1);
      const lease = await client.request<{ spec: { holderIdentity?: string } }>({
        method: "GET",
        path: `/apis/coordination.k8s.io/v1/namespaces/${filterNamespace}/leases/${DEFAULT_LEASE_NAME}`,
      });
      expect(lease.spec.holderIdentity).toBe("helm-test-0");

      // The node plugin, still running as its ServiceAccount, saw the filter (its Role).
      await waitFor("the node to publish only the filter's VFs", async () => {
        const slices = await listNodeSlices<
          KubeObject & { spec: { devices: { attributes: Record<string, { string?: string }> }[] } }
        >(client, DRIVER, nodeA);
        const devices = slices.flatMap((s) => s.spec.devices);
        return devices.length === 8 &&
          devices.every((d) => d.attributes[`${DRIVER}/resourceName`]?.string === "helm_vfs")
          ? true
          : undefined;
      });
    });
  });
});
