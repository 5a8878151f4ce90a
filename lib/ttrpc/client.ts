import type { Duplex } from "node:stream";
import type { Envelope, KeyValue } from "./envelope.js";
import { encodeMessage, MessageType, type MessageHeader, type ReadItem } from "./framing.js";
import { splitMethodPath, type MethodDescriptor } from "./method.js";
import { Code, TtrpcError } from "./status.js";
import { readMessages, writeMessage } from "./stream.js";

export interface CallOptions {
  /** Sent to the server as the call's deadline; the call fails with DEADLINE_EXCEEDED after it. */
  timeoutMs?: number;
  /** Aborting fails the call with CANCELLED (the server is not told: ttrpc has no cancel message). */
  signal?: AbortSignal;
  metadata?: readonly KeyValue[];
}

interface PendingCall {
  resolve(payload: Buffer): void;
  reject(error: Error): void;
}

/** Stream ids are uint32; client streams take the odd ones. */
const LAST_STREAM_ID = 0xffff_ffff;

/**
 * The calling side of a ttrpc connection: unary calls over any byte stream (a unix socket,
 * a multiplexed logical connection). Calls are not retried; when the connection closes,
 * every pending call fails with UNAVAILABLE.
 */
export class TtrpcClient {
  private nextStreamId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private closeError: TtrpcError | undefined;
  private readonly closedSignal = Promise.withResolvers<undefined>();

  constructor(
    private readonly stream: Duplex,
    private readonly envelope: Envelope,
  ) {
    readMessages(
      stream,
      (item) => this.receive(item),
      (error) => this.shutDown(error),
    );
  }

  /** Resolves when the connection is gone, for whatever reason. */
  get closed(): Promise<void> {
    return this.closedSignal.promise;
  }

  get isClosed(): boolean {
    return this.closeError !== undefined;
  }

  async call<Req, Res>(
    method: MethodDescriptor<Req, Res>,
    request: Req,
    options: CallOptions = {},
  ): Promise<Res> {
    const { service, method: name } = splitMethodPath(method.path);
    const payload = await this.callRaw(service, name, method.requestSerialize(request), options);
    try {
      return method.responseDeserialize(payload);
    } catch (error) {
      throw new TtrpcError(
        Code.INTERNAL,
        `cannot decode the response of ${method.path}: ${(error as Error).message}`,
      );
    }
  }

  /** A call with an already serialized request; resolves to the serialized response. */
  callRaw(
    service: string,
    method: string,
    payload: Buffer,
    options: CallOptions = {},
  ): Promise<Buffer> {
    if (this.closeError) return Promise.reject(this.closeError);
    if (options.signal?.aborted) {
      return Promise.reject(new TtrpcError(Code.CANCELLED, `${service}/${method} cancelled`));
    }
    if (this.nextStreamId > LAST_STREAM_ID) {
      this.close();
      return Promise.reject(
        new TtrpcError(Code.UNAVAILABLE, "ttrpc stream ids used up: reconnect to go on"),
      );
    }
    const streamId = this.nextStreamId;
    let message: Buffer;
    try {
      message = encodeMessage(
        streamId,
        MessageType.REQUEST,
        0,
        this.envelope.encodeRequest({
          service,
          method,
          payload,
          timeout_nano: options.timeoutMs === undefined ? 0 : Math.round(options.timeoutMs * 1e6),
          metadata: [...(options.metadata ?? [])],
        }),
      );
    } catch (error) {
      return Promise.reject(error as Error);
    }
    this.nextStreamId += 2;
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () =>
        finish(() => reject(new TtrpcError(Code.CANCELLED, `${service}/${method} cancelled`)));
      const finish = (settle: () => void) => {
        if (this.pending.get(streamId) !== call) return;
        this.pending.delete(streamId);
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        settle();
      };
      const call: PendingCall = {
        resolve: (response) => finish(() => resolve(response)),
        reject: (error) => finish(() => reject(error)),
      };
      this.pending.set(streamId, call);
      if (options.timeoutMs !== undefined) {
        const timeoutMs = options.timeoutMs;
        timer = setTimeout(
          () =>
            call.reject(
              new TtrpcError(
                Code.DEADLINE_EXCEEDED,
                `${service}/${method}: no answer within ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (!writeMessage(this.stream, message)) call.reject(this.closedError());
    });
  }

  /** Closes the connection; pending calls fail with UNAVAILABLE. */
  close(): void {
    this.shutDown(undefined);
    this.stream.destroy();
  }

  private receive(item: ReadItem): void {
    const call = this.pending.get(item.header.streamId);
    // A late answer to a call that timed out or was cancelled: nobody waits for it.
    if (call === undefined) return;
    if (item.kind === "oversized") {
      call.reject(
        new TtrpcError(
          Code.RESOURCE_EXHAUSTED,
          `response of ${item.header.length} bytes is too large`,
        ),
      );
      return;
    }
    const outcome = this.responseOf(item.header, item.data);
    if (outcome instanceof Error) call.reject(outcome);
    else call.resolve(outcome);
  }

  private responseOf(header: MessageHeader, data: Buffer): Buffer | TtrpcError {
    if (header.type !== MessageType.RESPONSE) {
      return new TtrpcError(
        Code.INTERNAL,
        `unexpected message type ${header.type} on a unary call (streaming is not supported)`,
      );
    }
    let response;
    try {
      response = this.envelope.decodeResponse(data);
    } catch (error) {
      return new TtrpcError(
        Code.INTERNAL,
        `cannot decode a ttrpc response: ${(error as Error).message}`,
      );
    }
    if (response.status && response.status.code !== Code.OK) {
      return new TtrpcError(response.status.code, response.status.message);
    }
    return response.payload;
  }

  private shutDown(error: Error | undefined): void {
    if (this.closeError) return;
    this.closeError = new TtrpcError(
      Code.UNAVAILABLE,
      error ? `ttrpc connection failed: ${error.message}` : "ttrpc connection closed",
    );
    for (const call of [...this.pending.values()]) call.reject(this.closeError);
    this.closedSignal.resolve(undefined);
  }

  private closedError(): TtrpcError {
    return this.closeError ?? new TtrpcError(Code.UNAVAILABLE, "ttrpc connection closed");
  }
}
