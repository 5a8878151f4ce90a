import type { Duplex } from "node:stream";
import type { Envelope, KeyValue, RequestEnvelope } from "./envelope.js";
import { encodeMessage, MessageType, type ReadItem } from "./framing.js";
import { splitMethodPath, type MethodDescriptor } from "./method.js";
import { Code, statusOf, TtrpcError, type Status } from "./status.js";
import { readMessages, writeMessage } from "./stream.js";

export interface CallContext {
  readonly service: string;
  readonly method: string;
  /** Aborted when the client's deadline passes or the connection closes. */
  readonly signal: AbortSignal;
  /** The client's deadline (epoch milliseconds), when it sent one. */
  readonly deadline: number | undefined;
  readonly metadata: readonly KeyValue[];
}

/** Throw a TtrpcError to answer with its code; anything else is answered UNKNOWN. */
export type Handler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

type RawHandler = (payload: Buffer, context: CallContext) => Promise<Buffer>;

/**
 * The serving side of ttrpc: a registry of unary methods, served on any number of byte
 * streams. Unknown services and methods are answered UNIMPLEMENTED (code 12), as ttrpc
 * does — peers rely on that to fall back to older methods.
 */
export class TtrpcServer {
  private readonly services = new Map<string, Map<string, RawHandler>>();

  constructor(private readonly envelope: Envelope) {}

  register<Req, Res>(descriptor: MethodDescriptor<Req, Res>, handler: Handler<Req, Res>): this {
    const { service, method } = splitMethodPath(descriptor.path);
    const methods = this.services.get(service) ?? new Map<string, RawHandler>();
    if (methods.has(method)) throw new Error(`ttrpc method ${descriptor.path} registered twice`);
    methods.set(method, async (payload, context) => {
      let request: Req;
      try {
        request = descriptor.requestDeserialize(payload);
      } catch (error) {
        throw new TtrpcError(
          Code.INVALID_ARGUMENT,
          `cannot decode the request of ${descriptor.path}: ${(error as Error).message}`,
        );
      }
      return descriptor.responseSerialize(await handler(request, context));
    });
    this.services.set(service, methods);
    return this;
  }

  /** Serves the registered methods on `stream` until it closes. */
  serve(stream: Duplex): ServerConnection {
    return new ServerConnection(stream, this.envelope, (service, method) => {
      const methods = this.services.get(service);
      if (methods === undefined) return new TtrpcError(Code.UNIMPLEMENTED, `service ${service}`);
      return methods.get(method) ?? new TtrpcError(Code.UNIMPLEMENTED, `method ${method}`);
    });
  }
}

/** One served connection. Handlers still running when it closes see their signal aborted. */
export class ServerConnection {
  private lastStreamId = 0;
  private readonly running = new Set<AbortController>();
  private open = true;
  private readonly closedSignal = Promise.withResolvers<undefined>();

  constructor(
    private readonly stream: Duplex,
    private readonly envelope: Envelope,
    private readonly lookup: (service: string, method: string) => RawHandler | TtrpcError,
  ) {
    readMessages(
      stream,
      (item) => this.receive(item),
      () => this.shutDown(),
    );
  }

  get closed(): Promise<void> {
    return this.closedSignal.promise;
  }

  close(): void {
    this.shutDown();
    this.stream.destroy();
  }

  private receive(item: ReadItem): void {
    const { streamId, type } = item.header;
    if (item.kind === "oversized") {
      this.answer(streamId, {
        code: Code.RESOURCE_EXHAUSTED,
        message: `message length ${item.header.length} exceeds the maximum message size`,
      });
      return;
    }
    if (streamId % 2 !== 1) {
      this.answer(streamId, {
        code: Code.INVALID_ARGUMENT,
        message: "StreamID must be odd for client initiated streams",
      });
      return;
    }
    if (type === MessageType.DATA) {
      // Only unary methods are served, so no stream is ever open for data.
      this.answer(streamId, {
        code: Code.INVALID_ARGUMENT,
        message: "StreamID is no longer active",
      });
      return;
    }
    // Other types are ignored, as ttrpc does, for compatibility with later versions.
    if (type !== MessageType.REQUEST) return;
    if (streamId <= this.lastStreamId) {
      this.answer(streamId, {
        code: Code.INVALID_ARGUMENT,
        message: "StreamID cannot be re-used and must increment",
      });
      return;
    }
    this.lastStreamId = streamId;
    let request: RequestEnvelope;
    try {
      request = this.envelope.decodeRequest(item.data);
    } catch (error) {
      this.answer(streamId, {
        code: Code.INVALID_ARGUMENT,
        message: `unmarshal request error: ${(error as Error).message}`,
      });
      return;
    }
    void this.dispatch(streamId, request);
  }

  private async dispatch(streamId: number, request: RequestEnvelope): Promise<void> {
    const handler = this.lookup(request.service, request.method);
    if (handler instanceof TtrpcError) {
      this.answer(streamId, statusOf(handler));
      return;
    }
    const controller = new AbortController();
    this.running.add(controller);
    const timeoutMs = timeoutMsOf(request.timeout_nano);
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => controller.abort(new TtrpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded")),
            timeoutMs,
          );
    const context: CallContext = {
      service: request.service,
      method: request.method,
      signal: controller.signal,
      deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
      metadata: request.metadata,
    };
    try {
      const payload = await handler(request.payload, context);
      this.answer(streamId, { code: Code.OK, message: "" }, payload);
    } catch (error) {
      this.answer(streamId, statusOf(error));
    } finally {
      clearTimeout(timer);
      this.running.delete(controller);
    }
  }

  private answer(streamId: number, status: Status, payload?: Buffer): void {
    if (!this.open) return;
    const response = this.envelope.encodeResponse({ status, payload: payload ?? Buffer.alloc(0) });
    let message: Buffer;
    try {
      message = encodeMessage(streamId, MessageType.RESPONSE, 0, response);
    } catch (error) {
      message = encodeMessage(
        streamId,
        MessageType.RESPONSE,
        0,
        this.envelope.encodeResponse({ status: statusOf(error), payload: Buffer.alloc(0) }),
      );
    }
    writeMessage(this.stream, message);
  }

  private shutDown(): void {
    if (!this.open) return;
    this.open = false;
    for (const controller of this.running) {
      controller.abort(new TtrpcError(Code.UNAVAILABLE, "ttrpc connection closed"));
    }
    this.closedSignal.resolve(undefined);
  }
}

/** The longest delay a Node timer takes; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A request's timeout in milliseconds, or undefined for none. One beyond what a timer can
 * hold (about 24.8 days; a peer may send up to 2^63 ns) is no deadline in practice.
 */
function timeoutMsOf(timeoutNano: number): number | undefined {
  if (!(timeoutNano > 0)) return undefined;
  const ms = timeoutNano / 1e6;
  return ms > MAX_TIMER_MS ? undefined : ms;
}
