import type { handleUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  DRA_HEALTH_SUPPORTED_VERSIONS,
  DRA_PLUGIN_TYPE,
  DRA_SUPPORTED_VERSIONS,
} from "../../api/proto/index.js";
import type { Gauge } from "../observability/metrics.js";
import type {
  InfoRequest,
  PluginInfo,
  RegistrationService,
  RegistrationStatus,
  RegistrationStatusResponse,
} from "./protos.js";
import { UnixGrpcServer } from "./unix-grpc-server.js";

/**
 * What GetInfo tells the kubelet: a DRA driver serving both DRAPlugin versions at
 * `endpoint`, and both DRAResourceHealth versions after them when it serves device health.
 * The kubelet picks the DRA service and the health service each from its own list, so the
 * order between the two kinds does not matter; DRAPlugin first keeps older kubelets, which
 * take the first entry they know, on the service they need.
 */
export function pluginInfoOf(
  driverName: string,
  endpoint: string,
  servesDeviceHealth = false,
): PluginInfo {
  return {
    type: DRA_PLUGIN_TYPE,
    name: driverName,
    endpoint,
    supported_versions: [
      ...DRA_SUPPORTED_VERSIONS,
      ...(servesDeviceHealth ? DRA_HEALTH_SUPPORTED_VERSIONS : []),
    ],
  };
}

export interface RetryDelay {
  initialMs: number;
  maxMs: number;
}

/** Doubling delay for the n-th retry (0-based), capped. */
export function retryDelayMs(attempt: number, delay: RetryDelay): number {
  return Math.min(delay.initialMs * 2 ** attempt, delay.maxMs);
}

export interface KubeletRegistrationOptions {
  socketPath: string;
  driverName: string;
  /** The DRA service socket, as the kubelet sees it. */
  draEndpoint: string;
  /** Whether the DRA socket serves DRAResourceHealth, so registration advertises it. */
  servesDeviceHealth?: boolean;
  service: RegistrationService;
  logger: Logger;
  registeredGauge: Gauge;
  retryDelay: RetryDelay;
}

// Registration calls are tiny; nothing to wait for when the socket goes.
const REGISTRATION_STOP_GRACE_MS = 1_000;

/**
 * Serves pluginregistration.Registration on a socket in the kubelet's plugins_registry
 * directory. When the kubelet reports a failed registration, the socket is re-created
 * after a growing delay: the kubelet watches that directory and tries a new socket again.
 */
export class KubeletRegistration {
  private server: UnixGrpcServer | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private reRegistering: Promise<void> | undefined;
  private failedAttempts = 0;
  private stopped = false;
  private isRegistered = false;

  constructor(private readonly options: KubeletRegistrationOptions) {}

  /** True once the kubelet confirmed the registration, until it reports a failure. */
  get registered(): boolean {
    return this.isRegistered;
  }

  async start(): Promise<void> {
    this.server = await UnixGrpcServer.start(
      this.options.socketPath,
      [{ definition: this.options.service, implementation: this.handlers() }],
      this.options.logger,
    );
  }

  /** Removes the socket, which makes the kubelet deregister the plugin. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.reRegistering;
    this.setRegistered(false);
    await this.server?.stop(REGISTRATION_STOP_GRACE_MS);
    this.server = undefined;
  }

  private handlers(): UntypedServiceImplementation {
    const getInfo: handleUnaryCall<InfoRequest, PluginInfo> = (_call, callback) => {
      this.options.logger.debug("kubelet asked for plugin info");
      callback(
        null,
        pluginInfoOf(
          this.options.driverName,
          this.options.draEndpoint,
          this.options.servesDeviceHealth ?? false,
        ),
      );
    };
    const notify: handleUnaryCall<RegistrationStatus, RegistrationStatusResponse> = (
      call,
      callback,
    ) => {
      callback(null, {});
      this.onStatus(call.request);
    };
    return { GetInfo: getInfo, NotifyRegistrationStatus: notify };
  }

  private onStatus(status: RegistrationStatus): void {
    const context = { endpoint: this.options.draEndpoint };
    if (status.plugin_registered) {
      this.failedAttempts = 0;
      this.setRegistered(true);
      this.options.logger.info(context, "registered with the kubelet");
      return;
    }
    this.setRegistered(false);
    this.options.logger.error(
      { ...context, kubeletError: status.error },
      "the kubelet rejected the plugin registration; registering again " +
        "(if this repeats, check the kubelet's log and that it supports DRA v1 or v1beta1)",
    );
    this.scheduleReRegistration();
  }

  private scheduleReRegistration(): void {
    if (this.retryTimer !== undefined || this.stopped) return;
    const delayMs = retryDelayMs(this.failedAttempts++, this.options.retryDelay);
    this.options.logger.info(
      { socket: this.options.socketPath, delayMs },
      "re-registration scheduled",
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.reRegistering = this.reRegister().finally(() => {
        this.reRegistering = undefined;
      });
    }, delayMs);
  }

  /** A new socket is a new plugin to the kubelet's watcher: it runs GetInfo and registration again. */
  private async reRegister(): Promise<void> {
    try {
      await this.server?.stop(REGISTRATION_STOP_GRACE_MS);
      this.server = undefined;
      if (!this.stopped) await this.start();
    } catch (error) {
      this.options.logger.error(
        { socket: this.options.socketPath, err: error },
        "cannot re-create the registration socket; trying again (is the plugins_registry directory still mounted?)",
      );
      this.scheduleReRegistration();
    }
  }

  private setRegistered(registered: boolean): void {
    this.isRegistered = registered;
    this.options.registeredGauge.set({}, registered ? 1 : 0);
  }
}
