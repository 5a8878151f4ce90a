import { isVfDevice } from "../devices/model.js";
import fs from "node:fs";
import path from "node:path";
import { container, instanceCachingFactory, type DependencyContainer } from "tsyringe";
import { CheckpointStore } from "../../lib/checkpoint/checkpoint.js";
import { CheckpointedMap } from "../../lib/checkpoint/checkpointed-map.js";
import { InterProcessLock } from "../../lib/checkpoint/file-lock.js";
import { LiveInstance } from "../../lib/checkpoint/live-instance.js";
import { CniExecutor } from "../../lib/cni/index.js";
import { postClaimEventsOnHealthChange } from "../health/claim-events.js";
import { registerHealthMetrics } from "../health/metrics.js";
import { HealthMonitor } from "../health/monitor.js";
import { taintsOf } from "../health/taints.js";
import { HostPaths } from "../host/paths.js";
import { KubeClient } from "../../lib/kube/client.js";
import { recordEvent } from "../../lib/kube/events.js";
import { startKubeletPlugin } from "../../lib/kubeletplugin/index.js";
import type { Logger } from "../../lib/log/logger.js";
import { startNriPlugin, type NriPlugin } from "../../lib/nri/index.js";
import { startHttpEndpoints } from "../../lib/observability/http-endpoints.js";
import { MetricsRegistry } from "../../lib/observability/metrics.js";
import {
  PodNetworkAttacher,
  podNetworkNriHandlers,
  registerPodNetworkMetrics,
  type SandboxAttachment,
} from "../podnetwork/index.js";
import { ClaimStatusWriter } from "../claimstatus/claim-status.js";
import { FAULT_ENV, faultHookFromEnv } from "../faults/faults.js";
import { PreparedClaimStore, VfClaimPreparer, wholePfProblems } from "../prepare/index.js";
import { NodeDevicePublisher } from "../publishing/node-publisher.js";
import type { PublishOrder } from "../slices/order.js";
import { NodeDriver } from "./node-driver.js";
import { findMultusConfig } from "../multus/multus-config.js";
import { PodNetworkStatusWriter } from "../multus/network-status.js";

/** The node daemon's settings, as `kubelet-plugin`'s flags give them (see its --help). */
export interface NodeDaemonOptions {
  driverName: string;
  nodeName: string;
  hostRoot: string;
  kubeconfig: string | undefined;
  /** Namespace whose SriovResourceFilters apply. */
  namespace: string;
  cdiRoot: string;
  kubeletDir: string;
  podUid: string | undefined;
  interfacePrefix: string;
  allowCrossNamespaceNetworks: boolean;
  /**
   * Serve the networks annotation of device-plugin pods (pkg/multus); refused when Multus
   * is configured in `cniConfDir`. Default off.
   */
  networksAnnotation?: boolean;
  /** Write Multus's device information of each prepared device (pkg/prepare/device-info.ts). */
  deviceInfo?: boolean;
  /** The node's CNI configuration directory, as this process sees it. */
  cniConfDir?: string;
  bindTimeoutMs: number;
  rediscoveryIntervalSeconds: number;
  publishHostUsedVfs: boolean;
  /** Also publish every PF as a whole device (see pkg/devices PfDevice); default off. */
  publishPfs?: boolean;
  /** The order VFs are published in, which decides the VF a claim gets (pkg/slices/order). */
  publishOrder?: PublishOrder;
  /** "" runs no NRI hook (no CNI). */
  nriSocket: string;
  nriPluginIndex: string;
  cniBinDirs: string[];
  cniCacheDir: string;
  /** 0: the runtime's NRI request timeout less a margin. */
  cniTimeoutMs: number;
  healthPort: number;
  /** Address of the health port; undefined: all addresses. */
  healthAddress?: string;
  deviceHealthIntervalMs: number;
  unhealthyTaintEffect: "NoSchedule" | "NoExecute" | "none";
  logger: Logger;
  /**
   * Replaces registrations after the daemon's own, before anything is built: tests swap in
   * parts here (a recording API client, say) and get the rest as production builds it.
   */
  override?: (scope: DependencyContainer) => void;
}

export interface NodeDaemon {
  /** Deregisters, lets running calls finish, and stops every part. */
  stop(): Promise<void>;
}

const LOGGER = Symbol("Logger");

/**
 * The node daemon, composed in one place: the tsyringe container of its parts (host paths,
 * API client, metrics, publisher, preparer, pod-network step), then the start order that
 * keeps the host consistent: publish, recover the checkpoint (finish or undo what a crash
 * interrupted) before the kubelet can call, register with the kubelet, connect to the
 * runtime's NRI, serve the health port.
 */
export async function startNodeDaemon(options: NodeDaemonOptions): Promise<NodeDaemon> {
  const { driverName } = options;
  if (options.networksAnnotation) refuseBesideMultus(options.cniConfDir ?? "/etc/cni/net.d");
  const scope = container.createChildContainer();
  scope.register(LOGGER, { useValue: options.logger.child({ node: options.nodeName }) });
  scope.register(HostPaths, {
    useValue: new HostPaths({
      root: options.hostRoot,
      cdiRoot: options.cdiRoot,
      kubeletDir: options.kubeletDir,
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
          nodeName: options.nodeName,
          filterNamespace: options.namespace,
          publishHostUsedVfs: options.publishHostUsedVfs,
          publishPfs: options.publishPfs,
          publishOrder: options.publishOrder,
          rediscoveryIntervalMs: options.rediscoveryIntervalSeconds * 1000,
          logger: c.resolve<Logger>(LOGGER).child({ component: "publisher" }),
          originalDrivers: () => c.resolve(PreparedClaimStore).originalDrivers(),
        }),
    ),
  });
  // The node's state, each piece with one owner: the prepared claims (checkpointed), and
  // one writer of claim status for prepare and the pod-network step alike.
  scope.register(PreparedClaimStore, {
    useFactory: instanceCachingFactory((c) => {
      const paths = c.resolve(HostPaths);
      return new PreparedClaimStore({
        file: path.join(paths.kubeletPluginsDir, driverName, "checkpoint.json"),
        bootId: readBootId(paths),
        logger: c.resolve<Logger>(LOGGER).child({ component: "prepare" }),
      });
    }),
  });
  scope.register(ClaimStatusWriter, {
    useFactory: instanceCachingFactory(
      (c) =>
        new ClaimStatusWriter(c.resolve(KubeClient), {
          driverName,
          logger: c.resolve<Logger>(LOGGER).child({ component: "claim-status" }),
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
        nodeName: options.nodeName,
        claims: c.resolve(PreparedClaimStore),
        status: c.resolve(ClaimStatusWriter),
        instance,
        ...(faultHook ? { faultHook } : {}),
        interfacePrefix: options.interfacePrefix,
        allowCrossNamespaceNetworks: options.allowCrossNamespaceNetworks,
        networksAnnotation: options.networksAnnotation ?? false,
        deviceInfo: options.deviceInfo ?? false,
        bindTimeoutMs: options.bindTimeoutMs,
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
        new InterProcessLock(`${file}.lock`, {
          onWaiting: () =>
            logger.info(
              { lock: `${file}.lock` },
              "another plugin instance holds the pod-network checkpoint (a rolling update?); waiting for it",
            ),
        }),
      );
      const loaded = attachments.load();
      if (loaded.setAside) {
        logger.error(
          loaded.setAside,
          "the pod-network checkpoint was unreadable and is set aside: interfaces it recorded are detached by nobody; check the pods' network namespaces by hand",
        );
      }
      return new PodNetworkAttacher({
        claims: c.resolve(PreparedClaimStore),
        cni: new CniExecutor({
          pluginDirs: options.cniBinDirs,
          cacheDir: options.cniCacheDir,
          timeoutMs: () => cniTimeoutMs(options.cniTimeoutMs, nri?.requestTimeoutMs()),
          logger,
        }),
        attachments,
        status: c.resolve(ClaimStatusWriter),
        driverName,
        logger,
        ...(faultHook ? { faultHook } : {}),
        hostProblems: (claims) =>
          wholePfProblems(
            c.resolve(HostPaths),
            claims.map(({ claim }) => claim),
          ),
        ...(options.networksAnnotation
          ? { networkStatus: new PodNetworkStatusWriter(c.resolve(KubeClient), logger) }
          : {}),
      });
    }),
  });
  options.override?.(scope);
  let nri: NriPlugin | undefined;

  const logger = scope.resolve<Logger>(LOGGER);
  const paths = scope.resolve(HostPaths);
  const metrics = scope.resolve(MetricsRegistry);
  const publisher = scope.resolve(NodeDevicePublisher);
  const preparer = scope.resolve(VfClaimPreparer);
  const preparedClaims = scope.resolve(PreparedClaimStore);
  const claimStatus = scope.resolve(ClaimStatusWriter);

  publisher.start();
  const health = new HealthMonitor({
    paths,
    // Whole PFs have no health of their own yet: their VFs' and link's taints cover the VFs.
    devices: () => (publisher.lastResult?.devices ?? []).filter(isVfDevice),
    preparedDrivers: () => preparedClaims.preparedDrivers(),
    pollIntervalMs: options.deviceHealthIntervalMs,
    vfCheckIntervalMs: options.deviceHealthIntervalMs * 5,
    // A link must stay down 2 s to taint, and up 10 s to clear: a flapping link keeps
    // its taint instead of rewriting the pool every second.
    debounce: { unhealthyAfterMs: 2_000, healthyAfterMs: 10_000 },
    logger: logger.child({ component: "health" }),
  });
  const taintEffect = options.unhealthyTaintEffect;
  if (taintEffect === "NoSchedule" || taintEffect === "NoExecute") {
    health.subscribe(() =>
      publisher.setTaints(taintsOf(health.current(), driverName, taintEffect)),
    );
  }
  registerHealthMetrics(metrics, health);
  postClaimEventsOnHealthChange({
    source: health,
    holders: () => preparedClaims.claimsHoldingDevices(),
    record: (event) => recordEvent(scope.resolve(KubeClient), event),
    driverName,
    nodeName: options.nodeName,
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
    ...(options.podUid ? { podUid: options.podUid } : {}),
    // No rediscovery after prepare or unprepare: a VF rebound to vfio-pci is published
    // with its original driver (see originalDrivers), so what the node shows is the same.
    preparer: new NodeDriver(
      preparer,
      () => (nri === undefined ? undefined : scope.resolve(PodNetworkAttacher)),
      logger,
    ),
    logger,
    metrics,
    // Health to the kubelet, shown in the pods' allocatedResourcesStatus.
    deviceHealth: { source: health, poolName: options.nodeName },
  });
  if (options.nriSocket !== "") {
    // After recovery: the runtime's first synchronize attaches what prepared claims need.
    nri = startNriPlugin({
      socketPath: options.nriSocket,
      pluginName: "dra-driver-sriov",
      pluginIndex: options.nriPluginIndex,
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
    port: options.healthPort,
    host: options.healthAddress,
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

  return {
    async stop() {
      await plugin.stop();
      health.stop();
      await nri?.stop();
      // Prepare's and the pod-network step's status writes alike: one writer.
      await claimStatus.settled();
      claimStatus.stop();
      await instance.close();
      await publisher.stop();
      await http.close();
    },
  };
}

/**
 * Who attaches what: with --networks-annotation this daemon attaches the networks of the
 * annotation, which Multus would attach too. Beside a Multus it refuses to start.
 */
function refuseBesideMultus(cniConfDir: string): void {
  const multus = findMultusConfig(cniConfDir);
  if (multus !== undefined) {
    throw new Error(
      `--networks-annotation: Multus is configured on this node (${multus}) and attaches the networks of the k8s.v1.cni.cncf.io/networks annotation itself; run without --networks-annotation (driver.networksAnnotation=false), or remove Multus from the node`,
    );
  }
}

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
