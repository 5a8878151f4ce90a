import fs from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { SERVICE_NAMES } from "../../api/proto/index.js";
import type { HealthSource } from "./device-health.js";
import type { ClaimPreparer } from "./claim-preparer.js";
import { DeviceHealthService } from "./device-health-service.js";
import { healthHandlers } from "./health-service.js";
import type { ReadinessCheck } from "../observability/http-endpoints.js";
import type { MetricsRegistry } from "../observability/metrics.js";
import { NodeService } from "./node-service.js";
import { registerPluginMetrics } from "./plugin-metrics.js";
import { loadKubeletProtos } from "./protos.js";
import { KubeletRegistration, type RetryDelay } from "./registration.js";
import {
  draSocketName,
  isDraSocket,
  isDriverRegistrationSocket,
  registrationSocketName,
} from "./socket-names.js";
import { removeStaleSockets, UnixGrpcServer } from "./unix-grpc-server.js";

export interface KubeletPluginOptions {
  driverName: string;
  /** The kubelet's plugins_registry directory (HostPaths.kubeletRegistryDir). */
  registryDir: string;
  /** The kubelet's plugins directory (HostPaths.kubeletPluginsDir); the DRA socket goes in `<driver>/`. */
  pluginsDir: string;
  /**
   * This pod's UID (downward API `metadata.uid`). Gives the sockets per-pod names so the
   * old and new pod of a DaemonSet rolling update serve side by side (kubelet ≥ 1.33).
   * Without it the names are fixed and a second instance would take over the sockets.
   */
  podUid?: string;
  preparer: ClaimPreparer;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Where the .proto files are; found from the program's location when not given. */
  protoDir?: string;
  /** How long stop() lets running calls finish before cutting them off. */
  stopGraceMs?: number;
  /** Delay before re-creating the registration socket after the kubelet rejected it. */
  reRegisterDelay?: RetryDelay;
  /**
   * Device health for the kubelet: with it the DRA socket serves DRAResourceHealth (v1 and
   * v1alpha1) and registration advertises both; without it neither.
   */
  deviceHealth?: KubeletDeviceHealthOptions;
}

export interface KubeletDeviceHealthOptions {
  source: HealthSource;
  /** The pool the devices are published in: the node's name (the slice publisher's pool). */
  poolName: string;
  /** How often the whole picture is repeated without a change; tests shorten it. */
  resendEveryMs?: number;
}

export interface KubeletPlugin {
  readonly registrationSocket: string;
  readonly draSocket: string;
  /** True once the kubelet confirmed the registration. */
  readonly registered: boolean;
  /** "kubelet-registration", for /readyz. */
  readonly readinessCheck: ReadinessCheck;
  /** Deregisters, then drains the DRA service and removes both sockets. */
  stop(): Promise<void>;
}

const DEFAULT_STOP_GRACE_MS = 20_000;
const DEFAULT_RE_REGISTER_DELAY: RetryDelay = { initialMs: 1_000, maxMs: 60_000 };

/**
 * Serves the DRA node service (v1 and v1beta1, plus gRPC health, plus DRAResourceHealth
 * when given a health source) on a socket in the driver's plugin directory, then announces
 * it to the kubelet through a registration socket. The DRA service comes first so it is
 * ready when the kubelet connects.
 */
export async function startKubeletPlugin(options: KubeletPluginOptions): Promise<KubeletPlugin> {
  const { driverName, podUid, logger } = options;
  if (!driverName) throw new Error("the DRA driver name must not be empty");
  await requireDirectory(options.registryDir);
  const pluginDir = path.join(options.pluginsDir, driverName);
  await fs.mkdir(pluginDir, { recursive: true, mode: 0o750 });

  const registrationName = registrationSocketName(options.registryDir, driverName, podUid);
  const draName = draSocketName(pluginDir, podUid);
  const log = logger.child({ component: "kubelet-plugin", driver: driverName });
  const stale = [
    ...(await removeStaleSockets(
      options.registryDir,
      (name) => isDriverRegistrationSocket(name, driverName) || name === registrationName,
      [registrationName],
    )),
    ...(await removeStaleSockets(pluginDir, isDraSocket, [draName])),
  ];
  if (stale.length > 0) log.info({ removed: stale }, "removed stale sockets");

  const protos = loadKubeletProtos(options.protoDir);
  const metrics = registerPluginMetrics(options.metrics);
  const nodeService = new NodeService(options.preparer, log, metrics);
  const deviceHealth =
    options.deviceHealth &&
    new DeviceHealthService({
      ...options.deviceHealth,
      logger: log.child({ service: "device-health" }),
    });
  // The server answers while it runs; once stopping it takes no new calls at all.
  const servedNames = new Set([
    "",
    SERVICE_NAMES.draV1,
    SERVICE_NAMES.draV1beta1,
    ...(deviceHealth ? [SERVICE_NAMES.draHealthV1, SERVICE_NAMES.draHealthV1alpha1] : []),
  ]);
  const draServer = await UnixGrpcServer.start(
    path.join(pluginDir, draName),
    [
      { definition: protos.draV1, implementation: nodeService.handlers("v1") },
      { definition: protos.draV1beta1, implementation: nodeService.handlers("v1beta1") },
      {
        definition: protos.health,
        implementation: healthHandlers((name) => (servedNames.has(name) ? "SERVING" : undefined)),
      },
      ...(deviceHealth
        ? [
            { definition: protos.draHealthV1, implementation: deviceHealth.handlers("v1") },
            {
              definition: protos.draHealthV1alpha1,
              implementation: deviceHealth.handlers("v1alpha1"),
            },
          ]
        : []),
    ],
    log,
  );

  const registration = new KubeletRegistration({
    socketPath: path.join(options.registryDir, registrationName),
    driverName,
    draEndpoint: draServer.socketPath,
    servesDeviceHealth: deviceHealth !== undefined,
    service: protos.registration,
    logger: log,
    registeredGauge: metrics.registered,
    retryDelay: options.reRegisterDelay ?? DEFAULT_RE_REGISTER_DELAY,
  });
  try {
    await registration.start();
  } catch (error) {
    deviceHealth?.endAll();
    await draServer.stop(0);
    throw error;
  }

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // Deregister first so the kubelet sends no new calls while the DRA service drains.
    await registration.stop();
    // Health streams never end by themselves; ended here, they do not hold up the drain.
    deviceHealth?.endAll();
    const graceful = await draServer.stop(options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    if (!graceful) nodeService.abort("the plugin is stopping");
    log.info({ graceful }, "kubelet plugin stopped");
  };
  return {
    registrationSocket: path.join(options.registryDir, registrationName),
    draSocket: draServer.socketPath,
    get registered() {
      return registration.registered;
    },
    readinessCheck: { name: "kubelet-registration", isReady: () => registration.registered },
    stop: () => (stopping ??= stop()),
  };
}

async function requireDirectory(dir: string): Promise<void> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new Error(
      `the kubelet's plugin registry directory ${dir} does not exist: mount the host's ` +
        "/var/lib/kubelet/plugins_registry into the container (or set the kubelet directory)",
    );
  }
}
