import { once } from "node:events";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { loadEnvelope, TtrpcClient, TtrpcServer, type MethodDescriptor } from "../ttrpc/index.js";
import { unixSocketPair, type SocketPair } from "../ttrpc/testing/socket-pair.js";
import {
  ConnectionId,
  encodeFrames,
  FRAME_HEADER_LENGTH,
  FrameReader,
  MAX_FRAME_PAYLOAD,
  MAX_WRITE_FRAME_PAYLOAD,
  Multiplexer,
  MuxProtocolError,
  type Frame,
} from "./mux.js";

const frameHeader = (id: number, length: number) => {
  const header = Buffer.alloc(FRAME_HEADER_LENGTH);
  header.writeUInt32BE(id, 0);
  header.writeUInt32BE(length, 4);
  return header;
};

describe("NRI frames", () => {
  it("are connection id and payload length, big-endian, then the payload", () => {
    expect(encodeFrames(2, Buffer.from("ab")).toString("hex")).toBe(
      "00000002" + "00000002" + "6162",
    );
    expect(ConnectionId).toEqual({ PLUGIN_SERVICE: 1, RUNTIME_SERVICE: 2 });
  });

  it("carry at most 4096 bytes each when written", () => {
    const data = Buffer.alloc(10_000, 7);
    const frames = new FrameReader().push(encodeFrames(1, data));
    expect(frames.map((frame) => frame.payload.length)).toEqual([4096, 4096, 1808]);
    expect(MAX_WRITE_FRAME_PAYLOAD).toBe(4096);
    expect(Buffer.concat(frames.map((frame) => frame.payload))).toEqual(data);
  });

  it("are read whole however the stream is cut, several at once too", () => {
    const bytes = Buffer.concat([
      encodeFrames(1, Buffer.from("first")),
      encodeFrames(2, Buffer.from("second")),
    ]);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    for (const byte of bytes.subarray(0, 11)) frames.push(...reader.push(Buffer.from([byte])));
    expect(frames).toEqual([]);
    frames.push(...reader.push(bytes.subarray(11)));
    expect(frames.map((frame) => [frame.connectionId, frame.payload.toString()])).toEqual([
      [1, "first"],
      [2, "second"],
    ]);
  });

  it("are refused beyond a whole ttrpc message (10 + 4 MiB)", () => {
    expect(MAX_FRAME_PAYLOAD).toBe(10 + 4 * 1024 * 1024);
    expect(new FrameReader().push(frameHeader(1, MAX_FRAME_PAYLOAD))).toEqual([]);
    expect(() => new FrameReader().push(frameHeader(1, MAX_FRAME_PAYLOAD + 1))).toThrow(
      MuxProtocolError,
    );
  });
});

describe("Multiplexer", () => {
  let pair: SocketPair;
  afterEach(() => pair.close());

  const read = (stream: Duplex, bytes: number): Promise<string> =>
    new Promise((resolve) => {
      let text = "";
      const onData = (chunk: Buffer) => {
        text += chunk.toString();
        if (text.length < bytes) return;
        stream.off("data", onData);
        resolve(text);
      };
      stream.on("data", onData);
    });

  it("keeps two logical connections apart, both ways", async () => {
    pair = await unixSocketPair();
    const plugin = new Multiplexer(pair.client);
    const runtime = new Multiplexer(pair.server);
    const [pluginOne, pluginTwo] = [plugin.open(1), plugin.open(2)];
    const [runtimeOne, runtimeTwo] = [runtime.open(1), runtime.open(2)];
    const atRuntimeOne = read(runtimeOne, 6);
    const atRuntimeTwo = read(runtimeTwo, 6);
    const atPluginTwo = read(pluginTwo, 5);
    pluginOne.write("to one");
    pluginTwo.write("to two");
    runtimeTwo.write("reply");
    expect(await atRuntimeOne).toBe("to one");
    expect(await atRuntimeTwo).toBe("to two");
    expect(await atPluginTwo).toBe("reply");
  });

  it("cuts each write into its own frames of at most 4096 bytes", async () => {
    pair = await unixSocketPair();
    const mux = new Multiplexer(pair.client);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    pair.server.on("data", (chunk: Buffer) => frames.push(...reader.push(chunk)));
    const connection = mux.open(2);
    connection.write(Buffer.alloc(5000, 1));
    connection.write(Buffer.alloc(5000, 2));
    while (frames.length < 4) await once(pair.server, "data");
    expect(
      frames.map((frame) => [frame.connectionId, frame.payload.length, frame.payload[0]]),
    ).toEqual([
      [2, 4096, 1],
      [2, 904, 1],
      [2, 4096, 2],
      [2, 904, 2],
    ]);
  });

  it("drops frames for connections nobody opened", async () => {
    pair = await unixSocketPair();
    const mux = new Multiplexer(pair.server);
    const open = mux.open(1);
    pair.client.write(encodeFrames(7, Buffer.from("nobody")));
    pair.client.write(encodeFrames(1, Buffer.from("somebody")));
    expect(await read(open, 8)).toBe("somebody");
    expect(mux.droppedFrames).toBe(1);
    expect(() => mux.open(0)).toThrow(/reserved/);
    expect(() => mux.open(1)).toThrow(/already open/);
  });

  it("closes every connection on an oversized frame and says why", async () => {
    pair = await unixSocketPair();
    const mux = new Multiplexer(pair.server);
    const connection = mux.open(1);
    const ended = once(connection, "close");
    pair.client.write(frameHeader(1, MAX_FRAME_PAYLOAD + 1));
    const error = await mux.closed;
    expect(error).toBeInstanceOf(MuxProtocolError);
    expect(error?.message).toMatch(/is the socket an NRI runtime's/);
    await ended;
  });

  it("closes every connection when the peer goes away", async () => {
    pair = await unixSocketPair();
    const mux = new Multiplexer(pair.server);
    const closes = [once(mux.open(1), "close"), once(mux.open(2), "close")];
    pair.client.destroy();
    expect(await mux.closed).toBeUndefined();
    await Promise.all(closes);
    expect(mux.isClosed).toBe(true);
  });

  it("carries ttrpc both ways at once, large messages included", async () => {
    pair = await unixSocketPair();
    const envelope = loadEnvelope();
    const method = (path: string): MethodDescriptor<string, string> => ({
      path,
      requestSerialize: (value) => Buffer.from(value),
      requestDeserialize: (bytes) => bytes.toString(),
      responseSerialize: (value) => Buffer.from(value),
      responseDeserialize: (bytes) => bytes.toString(),
    });
    const toPlugin = method("/test.Plugin/Echo");
    const toRuntime = method("/test.Runtime/Echo");
    const plugin = new Multiplexer(pair.client);
    const runtime = new Multiplexer(pair.server);
    new TtrpcServer(envelope)
      .register(toPlugin, async (text) => `plugin:${text.length}`)
      .serve(plugin.open(ConnectionId.PLUGIN_SERVICE));
    new TtrpcServer(envelope)
      .register(toRuntime, async (text) => `runtime:${text.length}`)
      .serve(runtime.open(ConnectionId.RUNTIME_SERVICE));
    const pluginClient = new TtrpcClient(plugin.open(ConnectionId.RUNTIME_SERVICE), envelope);
    const runtimeClient = new TtrpcClient(runtime.open(ConnectionId.PLUGIN_SERVICE), envelope);
    const big = "x".repeat(300_000);
    expect(
      await Promise.all([
        pluginClient.call(toRuntime, "hello"),
        runtimeClient.call(toPlugin, big),
        pluginClient.call(toRuntime, big),
        runtimeClient.call(toPlugin, "hi"),
      ]),
    ).toEqual(["runtime:5", "plugin:300000", "runtime:300000", "plugin:2"]);
  });
});
