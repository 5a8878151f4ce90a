import fs from "node:fs";
import path from "node:path";
import { container, instanceCachingFactory } from "tsyringe";
import type { FlagSpecs, ParsedFlags } from "../../../pkg/flags/flags.js";
import { HostPaths } from "../../../pkg/host/paths.js";
import { KubeClient } from "../../../pkg/kube/client.js";
import { CheckpointStore } from "../../../pkg/checkpoint/checkpoint.js";
import { CheckpointedMap } from "../../../pkg/checkpoint/checkpointed-map.js";
import { InterProcessLock } from "../../../pkg/checkpoint/file-lock.js";
import { LiveInstance } from "../../../pkg/checkpoint/live-instance.js";
import { CniExecutor } from "../../../pkg/cni/index.js";
import { startKubeletPlugin } from "../../../pkg/kubeletplugin/index.js";
import { startNriPlugin, type NriPlugin } from "../../../pkg/nri/index.js";
import {
  PodNetworkAttacher,
  podNetworkNriHandlers,
  registerPodNetworkMetrics,
  type SandboxAttachment,
} from "../../../pkg/podnetwork/index.js";
import { ClaimStatusWriter } from "../../../pkg/prepare/claim-status.js";
import { createLogger, type Logger } from "../../../pkg/log/logger.js";
import { startHttpEndpoints } from "../../../pkg/observability/http-endpoints.js";
import { MetricsRegistry } from "../../../pkg/observability/metrics.js";
import { FAULT_ENV, VfClaimPreparer, faultHookFromEnv } from "../../../pkg/prepare/index.js";
import { NodeDevicePublisher } from "../../../pkg/publishing/node-publisher.js";
import { HealthMonitor } from "../../../pkg/health/monitor.js";
import { registerHealthMetrics } from "../../../pkg/health/metrics.js";
import { taintsOf } from "../../../pkg/health/taints.js";
import { postClaimEventsOnHealthChange } from "../../../pkg/health/claim-events.js";
import { recordEvent } from "../../../pkg/kube/events.js";
import { clusterFlags, hostFlags, loggingFlags, nodeFlags } from "../common-flags.js";
import { shutdownSignal } from "../shutdown.js";
import type { Command } from "./command.js";

const flags = {
  ...hostFlags,
  ...nodeFlags,
  ...clusterFlags,
  "cdi-root": {
    type: "string",
    description: "CDI spec directory on the host",
    default: "/var/run/cdi",
  },
  "kubelet-dir": {
    type: "string",
    description: "the kubelet's root directory on the host",
    default: "/var/lib/kubelet",
  },
  "pod-uid": {
    type: "string",
    description: "this pod's UID (downward API): per-pod socket names for rolling updates",
  },
  "interface-prefix": {
    type: "string",
    description: "default interface names in pods are <prefix>1, <prefix>2, ...",
    default: "net",
  },
  "allow-cross-namespace-networks": {
    type: "boolean",
    description: "let a VfConfig name a NetworkAttachmentDefinition outside the claim's namespace",
    default: false,
  },
  "bind-timeout-ms": {
    type: "integer",
    description: "how long a VF may take to bind to a driver (vfio-pci and back)",
    default: 10_000,
  },
  "rediscovery-interval-seconds": {
    type: "integer",
    description: "how often to look at sysfs again for VF changes",
    default: 30,
  },
  "nri-socket": {
    type: "string",
    description:
      "the container runtime's NRI socket; VFs with a network are plugged into pods when their sandbox starts. Empty: never (no CNI is run)",
    default: "/var/run/nri/nri.sock",
  },
  "nri-plugin-index": {
    type: "string",
    description: "two-digit NRI plugin index: the order among the runtime's NRI plugins",
    default: "10",
  },
  "cni-bin-dir": {
    type: "string",
    description: "directories of CNI plugins (the SR-IOV CNI, IPAM plugins), colon-separated",
    default: "/opt/cni/bin",
  },
  "cni-cache-dir": {
    type: "string",
    description:
      "where the results of CNI ADDs are kept for their DEL: a folder of its own in the node's CNI state directory",
    default: "/var/lib/cni/dra-driver-sriov",
  },
  "cni-timeout-ms": {
    type: "integer",
    description:
      "longest a CNI plugin may run; 0: the runtime's NRI request timeout less 250 ms, so the runtime never drops the plugin",
    default: 0,
  },
  "health-port": {
    type: "integer",
    description: "port of /healthz, /readyz and /metrics on the node (host network)",
    default: 51515,
  },
  "device-health-interval-ms": {
    type: "integer",
    description:
      "how often each PF's link is read for device health (each VF's driver and presence: every 5 such intervals)",
    default: 1_000,
  },
  "unhealthy-taint-effect": {
    type: "string",
    description:
      "taint on unhealthy devices in the ResourceSlices: NoSchedule keeps new claims off them; NoExecute also evicts the pods using them; none publishes no taints",
    default: "NoSchedule",
    choices: ["NoSchedule", "NoExecute", "none"],
  },
  ...loggingFlags,
} as const satisfies FlagSpecs;

const LOGGER = Symbol("Logger");

export const kubeletPluginCommand: Command<typeof flags> = {
  flags,
  async run(options: ParsedFlags<typeof flags>): Promise<number> {
    const driverName = options["driver-name"];
    const scope = container.createChildContainer();
    scope.register(LOGGER, {
      useValue: createLogger({ level: options["log-level"], format: options["log-format"] }).child({
        node: options["node-name"],
      }),
    });
    scope.register(HostPaths, {
      useValue: new HostPaths({
        root: options["host-root"],
        cdiRoot: options["cdi-root"],
        kubeletDir: options["kubelet-dir"],
      }),
    });
    scope.register(KubeClient, {
      useFactory: instanceCachingFactory(() => KubeClient.load(options.kubeconfig)),
    });
    scope.register(MetricsRegistry, {
      useFactory: instanceCachingFactory(() => new MetricsRegistry()),
    });
    scope.register(NodeDevicePublisher, {
      useFactory: instanceCachingFactory(
        (c) =>
          new NodeDevicePublisher(c.resolve(KubeClient), {
            paths: c.resolve(HostPaths),
            driverName,
            nodeName: options["node-name"],
            filterNamespace: options.namespace,
            publishHostUsedVfs: options["publish-host-used-vfs"],
            rediscoveryIntervalMs: options["rediscovery-interval-seconds"] * 1000,
            logger: c.resolve<Logger>(LOGGER).child({ component: "publisher" }),
            originalDrivers: () => c.resolve(VfClaimPreparer).originalDrivers(),
          }),
      ),
    });
    // One crash-test hook (DRA_SRIOV_FAULT) for prepare and attach: warned about once.
    const faultHook = faultHookFromEnv(process.env[FAULT_ENV], scope.resolve<Logger>(LOGGER));
    // Seen by the other instance of a rolling update for as long as this process runs.
    const instance = await LiveInstance.start(
      path.join(scope.resolve(HostPaths).kubeletPluginsDir, driverName, "instances"),
    );
    scope.register(VfClaimPreparer, {
      useFactory: instanceCachingFactory((c) => {
        const paths = c.resolve(HostPaths);
        return new VfClaimPreparer({
          client: c.resolve(KubeClient),
          paths,
          driverName,
          nodeName: options["node-name"],
          checkpointFile: path.join(paths.kubeletPluginsDir, driverName, "checkpoint.json"),
          instance,
          ...(faultHook ? { faultHook } : {}),
          bootId: readBootId(paths),
          interfacePrefix: options["interface-prefix"],
          allowCrossNamespaceNetworks: options["allow-cross-namespace-networks"],
          bindTimeoutMs: options["bind-timeout-ms"],
          // What this node publishes is in memory already: no API read per prepare.
          resourceNameOf: (device) => c.resolve(NodeDevicePublisher).resourceNameOf(device),
          logger: c.resolve<Logger>(LOGGER).child({ component: "prepare" }),
        });
      }),
    });

    scope.register(PodNetworkAttacher, {
      useFactory: instanceCachingFactory((c) => {
        const logger = c.resolve<Logger>(LOGGER).child({ component: "pod-network" });
        const file = path.join(
          c.resolve(HostPaths).kubeletPluginsDir,
          driverName,
          "attachments.json",
        );
        const attachments = new CheckpointedMap<SandboxAttachment>(
          // Not fsynced: network namespaces, and so what this file records, die with a reboot.
          new CheckpointStore(file, readBootId(c.resolve(HostPaths)), false),
          new InterProcessLock(`${file}.lock`),
        );
        const loaded = attachments.load();
        if (loaded.setAside) {
          logger.error(
            loaded.setAside,
            "the pod-network checkpoint was unreadable and is set aside: interfaces it recorded are detached by nobody; check the pods' network namespaces by hand",
          );
        }
        return new PodNetworkAttacher({
          claims: c.resolve(VfClaimPreparer),
          cni: new CniExecutor({
            pluginDirs: options["cni-bin-dir"].split(":").filter((dir) => dir !== ""),
            cacheDir: options["cni-cache-dir"],
            timeoutMs: () => cniTimeoutMs(options["cni-timeout-ms"], nri?.requestTimeoutMs()),
            logger,
          }),
          attachments,
          status: new ClaimStatusWriter(c.resolve(KubeClient), { driverName, logger }),
          driverName,
          logger,
          ...(faultHook ? { faultHook } : {}),
        });
      }),
    });
    let nri: NriPlugin | undefined;

    const logger = scope.resolve<Logger>(LOGGER);
    const paths = scope.resolve(HostPaths);
    const metrics = scope.resolve(MetricsRegistry);
    const publisher = scope.resolve(NodeDevicePublisher);
    const preparer = scope.resolve(VfClaimPreparer);

    publisher.start();
    const health = new HealthMonitor({
      paths,
      devices: () => publisher.lastResult?.devices ?? [],
      preparedDrivers: () => preparer.preparedDrivers(),
      pollIntervalMs: options["device-health-interval-ms"],
      vfCheckIntervalMs: options["device-health-interval-ms"] * 5,
      // A link must stay down 2 s to taint, and up 10 s to clear: a flapping link keeps
      // its taint instead of rewriting the pool every second.
      debounce: { unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 },
      logger: logger.child({ component: "health" }),
    });
    const taintEffect = options["unhealthy-taint-effect"];
    if (taintEffect === "NoSchedule" || taintEffect === "NoExecute") {
      health.subscribe(() =>
        publisher.setTaints(taintsOf(health.current(), driverName, taintEffect)),
      );
    }
    registerHealthMetrics(metrics, health);
    postClaimEventsOnHealthChange({
      source: health,
      holders: () => preparer.claimsHoldingDevices(),
      record: (event) => recordEvent(scope.resolve(KubeClient), event),
      driverName,
      nodeName: options["node-name"],
      logger: logger.child({ component: "health" }),
    });
    health.start();
    // Host state first: finish or undo what a crash interrupted before the kubelet calls again.
    const recovery = await preparer.recover();
    logger.info({ ...recovery }, "checkpoint recovered");
    const plugin = await startKubeletPlugin({
      driverName,
      registryDir: paths.kubeletRegistryDir,
      pluginsDir: paths.kubeletPluginsDir,
      ...(options["pod-uid"] ? { podUid: options["pod-uid"] } : {}),
      preparer: {
        // No rediscovery after prepare or unprepare: a VF rebound to vfio-pci is published
        // with its original driver (see originalDrivers), so what the node shows is the same.
        prepare: (claims, signal) => preparer.prepare(claims, signal),
        unprepare: async (claims, signal) => {
          // The pods are gone: take their VFs' networks down before the VFs themselves.
          const attacher = nri === undefined ? undefined : scope.resolve(PodNetworkAttacher);
          await Promise.all(
            claims.map((claim) =>
              attacher
                ?.detachClaim(claim.uid)
                .catch((error: unknown) =>
                  logger.warn(
                    { claimUid: claim.uid, err: String(error) },
                    "cannot detach the claim's sandboxes",
                  ),
                ),
            ),
          );
          return preparer.unprepare(claims, signal);
        },
      },
      logger,
      metrics,
      // Health to the kubelet, shown in the pods' allocatedResourcesStatus.
      deviceHealth: { source: health, poolName: options["node-name"] },
    });
    if (options["nri-socket"] !== "") {
      // After recovery: the runtime's first synchronize attaches what prepared claims need.
      nri = startNriPlugin({
        socketPath: options["nri-socket"],
        pluginName: "dra-driver-sriov",
        pluginIndex: options["nri-plugin-index"],
        handlers: podNetworkNriHandlers(
          scope.resolve(PodNetworkAttacher),
          registerPodNetworkMetrics(metrics),
          logger.child({ component: "nri" }),
        ),
        logger: logger.child({ component: "nri" }),
      });
    } else {
      logger.warn("no NRI socket given: VFs are prepared but never plugged into pods by CNI");
    }
    const http = await startHttpEndpoints({
      port: options["health-port"],
      logger,
      metrics,
      readinessChecks: [
        plugin.readinessCheck,
        { name: "slices-published", isReady: () => publisher.slices.stats.published },
        { name: "checkpoint-loaded", isReady: () => true },
        // Without the runtime's events, pods would start without their VFs' networks.
        ...(nri ? [{ name: "nri-connected", isReady: () => nri?.connected() ?? false }] : []),
      ],
    });
    logger.info(
      {
        driver: driverName,
        draSocket: plugin.draSocket,
        registrationSocket: plugin.registrationSocket,
        healthPort: http.port,
      },
      "kubelet plugin running",
    );

    const signal = await shutdownSignal();
    logger.info({ signal }, "stopping: deregistering and letting running calls finish");
    await plugin.stop();
    health.stop();
    await nri?.stop();
    await preparer.statusWritesSettled();
    preparer.close();
    await instance.close();
    await publisher.stop();
    await http.close();
    return 0;
  },
};

function readBootId(paths: HostPaths): string {
  try {
    return fs.readFileSync(paths.bootId, "utf8").trim();
  } catch (error) {
    throw new Error(
      `cannot read the boot id at ${paths.bootId} (${(error as Error).message}): is /proc mounted under --host-root?`,
      { cause: error },
    );
  }
}

/** The CNI timeout: as set, or what the runtime gives an NRI call less a margin to answer in. */
function cniTimeoutMs(flag: number, runtimeRequestTimeoutMs: number | undefined): number {
  if (flag > 0) return flag;
  return Math.max(250, (runtimeRequestTimeoutMs ?? 2_000) - 250);
}
