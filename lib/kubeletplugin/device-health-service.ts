import type { ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  MAX_HEALTH_MESSAGE_CHARS,
  type DeviceHealth,
  type HealthSource,
  type HealthState,
} from "./device-health.js";
import type {
  NodeWatchResourcesRequest,
  NodeWatchResourcesResponse,
  WireDeviceHealth,
  WireHealthStatus,
} from "./protos.js";

export type DraHealthApiVersion = "v1" | "v1alpha1";

/**
 * What each device's report tells the kubelet in health_check_timeout_seconds. The kubelet
 * (1.37, pkg/kubelet/cm/dra/healthinfo.go) stamps every reported device with its own
 * receive time and shows UNKNOWN for a device not reported again within this timeout; when
 * the stream ends it forgets the driver altogether. So the timeout is how long the kubelet
 * may trust our last word while the stream is open but silent (a daemon stuck, or a
 * kubelet too slow to read). We state the kubelet's own default, 30 s, explicitly, and
 * send the whole picture again every RESEND_EVERY_MS, three times within it.
 */
export const HEALTH_CHECK_TIMEOUT_SECONDS = 30;

/** How often a stream repeats the whole picture without a change: a third of the timeout. */
export const RESEND_EVERY_MS = (HEALTH_CHECK_TIMEOUT_SECONDS * 1000) / 3;

/**
 * Open streams at once. The kubelet holds one per registered plugin; a few more cover a
 * kubelet restart whose old connection is not yet seen closed. More are refused.
 */
export const MAX_HEALTH_STREAMS = 8;

/**
 * The kubelet's gRPC client refuses a message over 4 MiB (grpc-go's default receive limit,
 * which the kubelet keeps). A message is our whole picture, so its size grows with the
 * device count; the margin covers framing.
 */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024 - 64 * 1024;

/**
 * An upper bound of the bytes one DeviceHealth takes on the wire besides its strings: the
 * field tags and length prefixes, health, two int64s at their widest (10 bytes each).
 */
const WIRE_BYTES_PER_DEVICE = 48;

const ELLIPSIS = "…";
const ELLIPSIS_BYTES = Buffer.byteLength(ELLIPSIS);

export function wireHealthStatusOf(state: HealthState): WireHealthStatus {
  switch (state) {
    case "Healthy":
      return "HEALTHY";
    case "Unhealthy":
      return "UNHEALTHY";
    case "Unknown":
      return "UNKNOWN";
  }
}

/**
 * `message` in at most `maxBytes` bytes of UTF-8, cut at a character boundary and ending
 * in "…" when shortened. Bytes, not characters: the kubelet measures a message in bytes
 * (Go's len) and would otherwise cut it again, possibly inside a character.
 */
export function cutMessage(message: string, maxBytes: number): string {
  if (Buffer.byteLength(message) <= maxBytes) return message;
  if (maxBytes < ELLIPSIS_BYTES) return "";
  let kept = "";
  let bytes = 0;
  for (const char of message) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes - ELLIPSIS_BYTES) break;
    kept += char;
    bytes += size;
  }
  return kept + ELLIPSIS;
}

/**
 * The whole health picture as one message: every device of the pool, `nowMs` as the time
 * the plugin states it (the monitor keeps checking, so its current view is as of now; the
 * time a device entered its state is no "last updated" time and, should a kubelet start
 * honouring this field, would make a long-healthy device look stale). Messages are cut to
 * the kubelet's 1,024 bytes, and shorter when the message would not fit the kubelet's
 * receive limit otherwise (thousands of devices with long messages).
 */
export function healthResponseOf(
  devices: readonly DeviceHealth[],
  poolName: string,
  nowMs: number,
): NodeWatchResourcesResponse {
  const messageBytes = messageBudgetOf(devices, poolName);
  const lastUpdated = String(Math.floor(nowMs / 1000));
  const timeout = String(HEALTH_CHECK_TIMEOUT_SECONDS);
  return {
    devices: devices.map((device): WireDeviceHealth => ({
      device: { pool_name: poolName, device_name: device.device },
      health: wireHealthStatusOf(device.state),
      last_updated_time: lastUpdated,
      health_check_timeout_seconds: timeout,
      message: cutMessage(device.message, messageBytes),
    })),
  };
}

/** The most bytes each device's message may take so the whole message fits MAX_RESPONSE_BYTES. */
export function messageBudgetOf(devices: readonly DeviceHealth[], poolName: string): number {
  const poolBytes = Buffer.byteLength(poolName);
  let fixed = 0;
  let full = 0;
  for (const device of devices) {
    fixed += WIRE_BYTES_PER_DEVICE + poolBytes + Buffer.byteLength(device.device);
    full += Math.min(Buffer.byteLength(device.message), MAX_HEALTH_MESSAGE_CHARS);
  }
  if (fixed + full <= MAX_RESPONSE_BYTES) return MAX_HEALTH_MESSAGE_CHARS;
  // Names alone beyond the limit would take more devices than a node has (the kubelet
  // itself keeps at most 16,384 per driver); the messages then go empty.
  return Math.max(0, Math.floor((MAX_RESPONSE_BYTES - fixed) / devices.length));
}

export interface DeviceHealthServiceOptions {
  source: HealthSource;
  /** The pool the devices are published in: the node's name, as the slice publisher names it. */
  poolName: string;
  logger: Logger;
  /** How often a stream repeats the whole picture without a change (tests shorten it). */
  resendEveryMs?: number;
}

/**
 * Serves DRAResourceHealth NodeWatchResources (v1 and v1alpha1, the same messages) from a
 * HealthSource. Every message is the whole picture of the pool, never only the devices
 * that changed: the kubelet (1.37, healthinfo.go updateHealthInfo) takes each message as
 * the complete list, and a device missing from it is left to expire to UNKNOWN; it also
 * shows UNKNOWN for any device not reported within its timeout, so the picture is repeated
 * on a timer as well as sent on every change.
 *
 * Backpressure: each stream has at most one message handed to gRPC and not yet written
 * out. A change or tick meanwhile only marks the stream stale; when the write completes,
 * one message with the then current picture follows. A reader that stops reading holds
 * one message per stream (plus HTTP/2's window), whatever the rate of changes.
 */
export class DeviceHealthService {
  private readonly streams = new Set<HealthStream>();
  private readonly resendEveryMs: number;

  constructor(private readonly options: DeviceHealthServiceOptions) {
    if (!options.poolName) throw new Error("device health needs the pool name (the node name)");
    this.resendEveryMs = options.resendEveryMs ?? RESEND_EVERY_MS;
  }

  handlers(version: DraHealthApiVersion): UntypedServiceImplementation {
    const watch = (
      call: ServerWritableStream<NodeWatchResourcesRequest, NodeWatchResourcesResponse>,
    ) => this.watch(version, call);
    return { NodeWatchResources: watch };
  }

  /** Ends every open stream with OK, so the server can drain: a stream never ends by itself. */
  endAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }

  private watch(
    version: DraHealthApiVersion,
    call: ServerWritableStream<NodeWatchResourcesRequest, NodeWatchResourcesResponse>,
  ): void {
    const log = this.options.logger;
    if (this.streams.size >= MAX_HEALTH_STREAMS) {
      log.warn(
        { apiVersion: version, open: this.streams.size },
        "refused a device health stream: too many open",
      );
      // grpc-js ends a server stream with the status of an emitted error.
      call.emit(
        "error",
        Object.assign(new Error(`at most ${MAX_HEALTH_STREAMS} device health streams at once`), {
          code: status.RESOURCE_EXHAUSTED,
        }),
      );
      return;
    }
    const stream = new HealthStream(call, {
      picture: () =>
        healthResponseOf(this.options.source.current(), this.options.poolName, Date.now()),
      subscribe: (listener) => this.options.source.subscribe(listener),
      resendEveryMs: this.resendEveryMs,
      onError: (error) =>
        log.warn({ apiVersion: version, err: error }, "cannot read the device health picture"),
      onClose: () => {
        this.streams.delete(stream);
        log.info({ apiVersion: version, open: this.streams.size }, "device health stream closed");
      },
    });
    this.streams.add(stream);
    log.info({ apiVersion: version, open: this.streams.size }, "device health stream opened");
    stream.start();
  }
}

interface HealthStreamOptions {
  picture: () => NodeWatchResourcesResponse;
  subscribe: (listener: () => void) => () => void;
  resendEveryMs: number;
  onError: (error: unknown) => void;
  onClose: () => void;
}

/** One kubelet's stream: the picture now, then on every change and tick, one write at a time. */
class HealthStream {
  private writing = false;
  private stale = false;
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly close = () => this.cleanUp();

  constructor(
    private readonly call: ServerWritableStream<
      NodeWatchResourcesRequest,
      NodeWatchResourcesResponse
    >,
    private readonly options: HealthStreamOptions,
  ) {}

  start(): void {
    // "cancelled": the client cancelled or its connection went; "close": the call is over
    // for any reason, ours included.
    this.call.once("cancelled", this.close);
    this.call.once("close", this.close);
    this.call.on("error", this.close);
    this.unsubscribe = this.options.subscribe(() => this.send());
    this.timer = setInterval(() => this.send(), this.options.resendEveryMs);
    this.send();
  }

  /** Ends the call with OK: the kubelet sees the stream end and opens a new one later. */
  end(): void {
    if (this.closed) return;
    this.cleanUp();
    this.call.end();
  }

  private send(): void {
    if (this.closed) return;
    if (this.writing) {
      this.stale = true;
      return;
    }
    let picture: NodeWatchResourcesResponse;
    try {
      picture = this.options.picture();
    } catch (error) {
      // The source is ours, but a throw must not reach the monitor that called us.
      this.options.onError(error);
      return;
    }
    this.writing = true;
    this.stale = false;
    this.call.write(picture, () => {
      this.writing = false;
      if (this.stale) this.send();
    });
  }

  private cleanUp(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    this.call.off("cancelled", this.close);
    this.call.off("close", this.close);
    this.call.off("error", this.close);
    this.options.onClose();
  }
}
