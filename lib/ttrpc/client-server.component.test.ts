import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TtrpcClient } from "./client.js";
import { loadEnvelope } from "./envelope.js";
import {
  encodeMessage,
  MAX_MESSAGE_LENGTH,
  MessageReader,
  MessageType,
  type ReadItem,
} from "./framing.js";
import type { MethodDescriptor } from "./method.js";
import { TtrpcServer, type CallContext } from "./server.js";
import { Code, TtrpcError } from "./status.js";
import { MAX_UNSENT_BYTES } from "./stream.js";
import { unixSocketPair, type SocketPair } from "./testing/socket-pair.js";

const envelope = loadEnvelope();

/** A method with JSON messages: ttrpc does not care how payloads are serialized. */
function jsonMethod<Req, Res>(path: string): MethodDescriptor<Req, Res> {
  const serialize = (value: unknown) => Buffer.from(JSON.stringify(value));
  return {
    path,
    requestSerialize: serialize,
    requestDeserialize: (bytes) => JSON.parse(bytes.toString()) as Req,
    responseSerialize: serialize,
    responseDeserialize: (bytes) => JSON.parse(bytes.toString()) as Res,
  };
}

const echo = jsonMethod<{ text: string }, { text: string; service: string }>("/test.Echo/Say");
const wait = jsonMethod<object, object>("/test.Echo/Wait");
const fail = jsonMethod<{ kind: string }, object>("/test.Echo/Fail");

async function rejection(promise: Promise<unknown>): Promise<TtrpcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TtrpcError) return error;
    throw error;
  }
  throw new Error("the call succeeded");
}

describe("ttrpc client and server over a unix socket", () => {
  let pair: SocketPair;
  let client: TtrpcClient;
  let server: TtrpcServer;
  let waiting: CallContext[];

  beforeEach(async () => {
    pair = await unixSocketPair();
    waiting = [];
    server = new TtrpcServer(envelope)
      .register(echo, async (request, context) => ({
        text: request.text,
        service: context.service,
      }))
      .register(wait, (_request, context) => {
        waiting.push(context);
        return new Promise((_resolve, reject) =>
          context.signal.addEventListener("abort", () => reject(new Error("aborted"))),
        );
      })
      .register(fail, async (request) => {
        if (request.kind === "status") throw new TtrpcError(Code.NOT_FOUND, "no such thing");
        throw new Error("it broke");
      });
    server.serve(pair.server);
    client = new TtrpcClient(pair.client, envelope);
  });

  afterEach(() => pair.close());

  it("answers calls, several at a time", async () => {
    const answers = await Promise.all(["a", "b", "c"].map((text) => client.call(echo, { text })));
    expect(answers).toEqual(["a", "b", "c"].map((text) => ({ text, service: "test.Echo" })));
  });

  it("answers an unknown service and an unknown method with UNIMPLEMENTED (12)", async () => {
    const noService = await rejection(client.callRaw("test.Nobody", "Say", Buffer.alloc(0)));
    expect(noService.code).toBe(12);
    expect(noService.statusMessage).toBe("service test.Nobody");
    const noMethod = await rejection(client.callRaw("test.Echo", "Shout", Buffer.alloc(0)));
    expect(noMethod.code).toBe(Code.UNIMPLEMENTED);
    expect(noMethod.statusMessage).toBe("method Shout");
  });

  it("answers a handler's TtrpcError with its code and any other error with UNKNOWN", async () => {
    const status = await rejection(client.call(fail, { kind: "status" }));
    expect([status.code, status.statusMessage]).toEqual([Code.NOT_FOUND, "no such thing"]);
    const plain = await rejection(client.call(fail, { kind: "plain" }));
    expect([plain.code, plain.statusMessage]).toEqual([Code.UNKNOWN, "it broke"]);
  });

  it("carries large messages and refuses to send more than 4 MiB", async () => {
    const text = "x".repeat(1 << 20);
    expect((await client.call(echo, { text })).text).toHaveLength(1 << 20);
    const tooLarge = await rejection(
      client.callRaw("test.Echo", "Say", Buffer.alloc(MAX_MESSAGE_LENGTH + 1)),
    );
    expect(tooLarge.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(await client.call(echo, { text: "after" })).toMatchObject({ text: "after" });
  });

  it("hands the client's metadata to the handler", async () => {
    const seen: CallContext[] = [];
    const pairTwo = await unixSocketPair();
    try {
      new TtrpcServer(envelope)
        .register(echo, async (request, context) => {
          seen.push(context);
          return { text: request.text, service: context.service };
        })
        .serve(pairTwo.server);
      await new TtrpcClient(pairTwo.client, envelope).call(
        echo,
        { text: "m" },
        { metadata: [{ key: "k", value: "v" }] },
      );
      expect(seen[0]!.metadata).toEqual([{ key: "k", value: "v" }]);
      expect(seen[0]!.deadline).toBeUndefined();
    } finally {
      pairTwo.close();
    }
  });

  it("sends the client's timeout as the deadline and fails the call after it", async () => {
    const failed = await rejection(client.call(wait, {}, { timeoutMs: 50 }));
    expect(failed.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.deadline).toBeTypeOf("number");
    // The server's side of the deadline ends the handler too.
    await new Promise((resolve) =>
      waiting[0]!.signal.aborted
        ? resolve(undefined)
        : waiting[0]!.signal.addEventListener("abort", resolve),
    );
    expect(await client.call(echo, { text: "still usable" })).toEqual({
      text: "still usable",
      service: "test.Echo",
    });
  });

  it("fails a call when its signal aborts", async () => {
    const controller = new AbortController();
    const call = client.call(wait, {}, { signal: controller.signal });
    controller.abort();
    expect((await rejection(call)).code).toBe(Code.CANCELLED);
  });

  it("fails pending calls when the connection closes and aborts the handlers", async () => {
    const call = client.call(wait, {});
    await until(() => waiting.length === 1);
    client.close();
    const failed = await rejection(call);
    expect(failed.code).toBe(Code.UNAVAILABLE);
    await new Promise((resolve) => waiting[0]!.signal.addEventListener("abort", resolve));
    expect((await rejection(client.call(echo, { text: "late" }))).code).toBe(Code.UNAVAILABLE);
  });

  it("fails pending calls when the server goes away", async () => {
    const call = client.call(wait, {});
    await until(() => waiting.length === 1);
    pair.server.destroy();
    expect((await rejection(call)).code).toBe(Code.UNAVAILABLE);
    await client.closed;
    expect(client.isClosed).toBe(true);
  });
});

describe("ttrpc on the wire", () => {
  let pair: SocketPair;
  afterEach(() => pair.close());

  /** The messages one end receives, as they arrive. */
  function collect(socket: SocketPair["client"]): ReadItem[] {
    const reader = new MessageReader();
    const items: ReadItem[] = [];
    socket.on("data", (chunk: Buffer) => items.push(...reader.push(chunk)));
    return items;
  }

  it("numbers client streams 1, 3, 5, ... in request messages", async () => {
    pair = await unixSocketPair();
    const client = new TtrpcClient(pair.client, envelope);
    const seen = collect(pair.server);
    for (const text of ["a", "b", "c"]) void client.call(echo, { text }).catch(() => undefined);
    await until(() => seen.length === 3);
    expect(seen.map((item) => [item.header.streamId, item.header.type, item.header.flags])).toEqual(
      [
        [1, MessageType.REQUEST, 0],
        [3, MessageType.REQUEST, 0],
        [5, MessageType.REQUEST, 0],
      ],
    );
    const first = seen[0]!;
    expect(first.kind === "message" && envelope.decodeRequest(first.data)).toMatchObject({
      service: "test.Echo",
      method: "Say",
      timeout_nano: 0,
    });
  });

  it("answers an oversized request with RESOURCE_EXHAUSTED and serves the next one", async () => {
    pair = await unixSocketPair();
    new TtrpcServer(envelope)
      .register(echo, async (request) => ({ text: request.text, service: "" }))
      .serve(pair.server);
    const seen = collect(pair.client);
    const header = encodeMessage(1, MessageType.REQUEST, 0, Buffer.alloc(0));
    header.writeUInt32BE(MAX_MESSAGE_LENGTH + 1, 0);
    pair.client.write(header);
    pair.client.write(Buffer.alloc(MAX_MESSAGE_LENGTH + 1));
    const request = envelope.encodeRequest({
      service: "test.Echo",
      method: "Say",
      payload: Buffer.from('{"text":"x"}'),
      timeout_nano: 0,
      metadata: [],
    });
    pair.client.write(encodeMessage(3, MessageType.REQUEST, 0, request));
    await until(() => seen.length === 2);
    const codes = seen.map((item) => [
      item.header.streamId,
      item.kind === "message" ? envelope.decodeResponse(item.data).status?.code : undefined,
    ]);
    expect(codes).toEqual([
      [1, Code.RESOURCE_EXHAUSTED],
      [3, Code.OK],
    ]);
  });

  it("runs a request whose deadline is beyond any timer (timeout_nano 9e18) instead of expiring it at once", async () => {
    pair = await unixSocketPair();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const signals: AbortSignal[] = [];
    new TtrpcServer(envelope)
      .register(echo, async (request, context) => {
        signals.push(context.signal);
        await released;
        return { text: request.text, service: "" };
      })
      .serve(pair.server);
    const seen = collect(pair.client);
    const request = envelope.encodeRequest({
      service: "test.Echo",
      method: "Say",
      payload: Buffer.from('{"text":"x"}'),
      timeout_nano: 9e18,
      metadata: [],
    });
    pair.client.write(encodeMessage(1, MessageType.REQUEST, 0, request));
    await until(() => signals.length === 1);
    // A timer set past its limit fires on the next turn of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 0));
    await new Promise((resolve) => setImmediate(resolve));
    expect(signals[0]!.aborted).toBe(false);
    release();
    await until(() => seen.length === 1);
    const answer = seen[0]!;
    expect(answer.kind === "message" && envelope.decodeResponse(answer.data).status?.code).toBe(
      Code.OK,
    );
  });

  it("stops reading from a peer that does not read its answers, and goes on once it does", async () => {
    pair = await unixSocketPair();
    new TtrpcServer(envelope).serve(pair.server);
    // Requests on even stream ids are answered at once, never run: answers pile up.
    const refused = encodeMessage(2, MessageType.REQUEST, 0, Buffer.alloc(0));
    const count = 60_000;
    pair.client.pause();
    pair.client.write(Buffer.concat(Array.from({ length: count }, () => refused)));
    await until(() => pair!.server.isPaused());
    expect(pair.server.writableLength).toBeLessThan(MAX_UNSENT_BYTES + 64 * 1024 * 4);
    const seen = collect(pair.client);
    pair.client.resume();
    await until(() => seen.length === count);
    expect(pair.server.isPaused()).toBe(false);
  });

  it("refuses even and reused stream ids with INVALID_ARGUMENT", async () => {
    pair = await unixSocketPair();
    new TtrpcServer(envelope)
      .register(echo, async (request) => ({ text: request.text, service: "" }))
      .serve(pair.server);
    const seen = collect(pair.client);
    const request = envelope.encodeRequest({
      service: "test.Echo",
      method: "Say",
      payload: Buffer.from('{"text":"x"}'),
      timeout_nano: 0,
      metadata: [],
    });
    pair.client.write(encodeMessage(2, MessageType.REQUEST, 0, request));
    pair.client.write(encodeMessage(5, MessageType.REQUEST, 0, request));
    pair.client.write(encodeMessage(3, MessageType.REQUEST, 0, request));
    await until(() => seen.length === 3);
    // The handler answers after the immediate refusals: compare by stream.
    const answers = seen.map((item) => {
      const response = item.kind === "message" ? envelope.decodeResponse(item.data) : undefined;
      return [item.header.streamId, item.header.type, response?.status?.code];
    });
    expect(answers.sort((a, b) => a[0]! - b[0]!)).toEqual([
      [2, MessageType.RESPONSE, Code.INVALID_ARGUMENT],
      [3, MessageType.RESPONSE, Code.INVALID_ARGUMENT],
      [5, MessageType.RESPONSE, Code.OK],
    ]);
  });
});

/** Waits for a condition the test brings about; the test's own timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
