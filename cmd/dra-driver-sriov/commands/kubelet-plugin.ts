import fs from "node:fs";
import path from "node:path";
import { container, instanceCachingFactory } from "tsyringe";
import type { FlagSpecs, ParsedFlags } from "../../../pkg/flags/flags.js";
import { HostPaths } from "../../../pkg/host/paths.js";
import { KubeClient } from "../../../pkg/kube/client.js";
import { startKubeletPlugin } from "../../../pkg/kubeletplugin/index.js";
import { createLogger, type Logger } from "../../../pkg/log/logger.js";
import { startHttpEndpoints } from "../../../pkg/observability/http-endpoints.js";
import { MetricsRegistry } from "../../../pkg/observability/metrics.js";
import { VfClaimPreparer } from "../../../pkg/prepare/index.js";
import { NodeDevicePublisher } from "../../../pkg/publishing/node-publisher.js";
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
  "health-port": {
    type: "integer",
    description: "port of /healthz, /readyz and /metrics on the node (host network)",
    default: 51515,
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
    scope.register(VfClaimPreparer, {
      useFactory: instanceCachingFactory((c) => {
        const paths = c.resolve(HostPaths);
        return new VfClaimPreparer({
          client: c.resolve(KubeClient),
          paths,
          driverName,
          nodeName: options["node-name"],
          checkpointFile: path.join(paths.kubeletPluginsDir, driverName, "checkpoint.json"),
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

    const logger = scope.resolve<Logger>(LOGGER);
    const paths = scope.resolve(HostPaths);
    const metrics = scope.resolve(MetricsRegistry);
    const publisher = scope.resolve(NodeDevicePublisher);
    const preparer = scope.resolve(VfClaimPreparer);

    publisher.start();
    // Host state first: finish or undo what a crash interrupted before the kubelet calls again.
    const recovery = await preparer.recover();
    logger.info({ ...recovery }, "checkpoint recovered");
    const plugin = await startKubeletPlugin({
      driverName,
      registryDir: paths.kubeletRegistryDir,
      pluginsDir: paths.kubeletPluginsDir,
      ...(options["pod-uid"] ? { podUid: options["pod-uid"] } : {}),
      preparer: {
        prepare: async (claims, signal) => {
          const outcomes = await preparer.prepare(claims, signal);
          publisher.rediscoverSoon(); // a VF may have moved to vfio-pci
          return outcomes;
        },
        unprepare: async (claims, signal) => {
          const outcomes = await preparer.unprepare(claims, signal);
          publisher.rediscoverSoon();
          return outcomes;
        },
      },
      logger,
      metrics,
    });
    const http = await startHttpEndpoints({
      port: options["health-port"],
      logger,
      metrics,
      readinessChecks: [
        plugin.readinessCheck,
        { name: "slices-published", isReady: () => publisher.slices.stats.published },
        { name: "checkpoint-loaded", isReady: () => true },
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
    await preparer.statusWritesSettled();
    preparer.close();
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
