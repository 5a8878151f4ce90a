import os from "node:os";
import { container, instanceCachingFactory } from "tsyringe";
import { FilterStatusController } from "../../../pkg/controller/controller.js";
import type { FlagSpecs, ParsedFlags } from "../../../lib/flags/flags.js";
import { KubeClient } from "../../../lib/kube/client.js";
import { createLogger, type Logger } from "../../../lib/log/logger.js";
import { startHttpEndpoints } from "../../../lib/observability/http-endpoints.js";
import { MetricsRegistry } from "../../../lib/observability/metrics.js";
import { clusterFlags, DEFAULT_DRIVER_NAME, healthFlags, loggingFlags } from "../common-flags.js";
import { shutdownSignal } from "../shutdown.js";
import type { Command } from "./command.js";

const flags = {
  ...clusterFlags,
  "driver-name": {
    type: "string",
    description: "DRA driver whose ResourceSlices to read",
    default: DEFAULT_DRIVER_NAME,
  },
  identity: {
    type: "string",
    description: "this replica's name for leader election (the pod name)",
    default: os.hostname(),
  },
  "leader-election": {
    type: "boolean",
    description: "elect one active replica through a Lease (needed with more than one replica)",
    default: true,
  },
  ...healthFlags,
  ...loggingFlags,
} as const satisfies FlagSpecs;

const LOGGER = Symbol("Logger");

export const controllerCommand: Command<typeof flags> = {
  flags,
  async run(options: ParsedFlags<typeof flags>): Promise<number> {
    const scope = container.createChildContainer();
    scope.register(LOGGER, {
      useValue: createLogger({ level: options["log-level"], format: options["log-format"] }),
    });
    scope.register(KubeClient, {
      useFactory: instanceCachingFactory(() => KubeClient.load(options.kubeconfig)),
    });
    scope.register(MetricsRegistry, {
      useFactory: instanceCachingFactory(() => new MetricsRegistry()),
    });
    scope.register(FilterStatusController, {
      useFactory: instanceCachingFactory(
        (c) =>
          new FilterStatusController(c.resolve(KubeClient), {
            namespace: options.namespace,
            driverName: options["driver-name"],
            identity: options.identity,
            leaderElection: options["leader-election"],
            logger: c.resolve<Logger>(LOGGER).child({ component: "controller" }),
          }),
      ),
    });

    const logger = scope.resolve<Logger>(LOGGER);
    const controller = scope.resolve(FilterStatusController);
    controller.start();
    const http = await startHttpEndpoints({
      port: options["health-port"],
      logger,
      metrics: scope.resolve(MetricsRegistry),
      readinessChecks: [],
    });
    logger.info(
      { namespace: options.namespace, identity: options.identity, healthPort: http.port },
      "controller running",
    );
    const signal = await shutdownSignal();
    logger.info({ signal }, "stopping: giving back the lease");
    await controller.stop();
    await http.close();
    return 0;
  },
};
