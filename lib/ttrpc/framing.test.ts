import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeHeader,
  encodeHeader,
  encodeMessage,
  MAX_MESSAGE_LENGTH,
  MessageReader,
  MessageType,
  type ReadItem,
} from "./framing.js";
import { Code, TtrpcError } from "./status.js";

const messages = (items: ReadItem[]) =>
  items.map((item) =>
    item.kind === "message"
      ? { streamId: item.header.streamId, data: item.data.toString() }
      : { oversized: item.header.streamId },
  );

describe("ttrpc message header", () => {
  it("is length, stream id, type, flags, big-endian, 10 bytes", () => {
    const bytes = encodeHeader({ length: 0x0102, streamId: 0x0a0b0c0d, type: 2, flags: 4 });
    expect(bytes.toString("hex")).toBe("00000102" + "0a0b0c0d" + "02" + "04");
    expect(decodeHeader(bytes)).toEqual({
      length: 0x0102,
      streamId: 0x0a0b0c0d,
      type: 2,
      flags: 4,
    });
  });

  it("puts the data right after the header", () => {
    const bytes = encodeMessage(3, MessageType.REQUEST, 0, Buffer.from("hi"));
    expect(bytes.toString("hex")).toBe("00000002" + "00000003" + "01" + "00" + "6869");
  });

  it("refuses to send more than 4 MiB of data", () => {
    expect(MAX_MESSAGE_LENGTH).toBe(4 * 1024 * 1024);
    expect(() =>
      encodeMessage(1, MessageType.REQUEST, 0, Buffer.alloc(MAX_MESSAGE_LENGTH)),
    ).not.toThrow();
    const refused = (() => {
      try {
        encodeMessage(1, MessageType.REQUEST, 0, Buffer.alloc(MAX_MESSAGE_LENGTH + 1));
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(TtrpcError);
    expect((refused as TtrpcError).code).toBe(Code.RESOURCE_EXHAUSTED);
  });
});

describe("MessageReader", () => {
  it("joins a message read one byte at a time", () => {
    const reader = new MessageReader();
    const bytes = encodeMessage(5, MessageType.RESPONSE, 0, Buffer.from("hello"));
    const items: ReadItem[] = [];
    for (const byte of bytes) items.push(...reader.push(Buffer.from([byte])));
    expect(messages(items)).toEqual([{ streamId: 5, data: "hello" }]);
  });

  it("splits several messages read at once, empty ones included", () => {
    const reader = new MessageReader();
    const bytes = Buffer.concat([
      encodeMessage(1, MessageType.REQUEST, 0, Buffer.from("a")),
      encodeMessage(3, MessageType.REQUEST, 0, Buffer.alloc(0)),
      encodeMessage(5, MessageType.REQUEST, 0, Buffer.from("ccc")),
    ]);
    expect(messages(reader.push(bytes))).toEqual([
      { streamId: 1, data: "a" },
      { streamId: 3, data: "" },
      { streamId: 5, data: "ccc" },
    ]);
  });

  it("skips an oversized message's data, reports its stream and reads on", () => {
    const reader = new MessageReader();
    const oversized = encodeHeader({
      length: MAX_MESSAGE_LENGTH + 1,
      streamId: 7,
      type: MessageType.REQUEST,
      flags: 0,
    });
    expect(messages(reader.push(oversized))).toEqual([{ oversized: 7 }]);
    const data = Buffer.alloc(MAX_MESSAGE_LENGTH + 1);
    expect(reader.push(data.subarray(0, 1000))).toEqual([]);
    const next = encodeMessage(9, MessageType.REQUEST, 0, Buffer.from("next"));
    expect(messages(reader.push(Buffer.concat([data.subarray(1000), next])))).toEqual([
      { streamId: 9, data: "next" },
    ]);
  });

  it("reads the same messages however the stream is cut", () => {
    const payloads = fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(payloads, fc.array(fc.nat(), { maxLength: 20 }), (datas, cuts) => {
        const bytes = Buffer.concat(
          datas.map((data, i) => encodeMessage(2 * i + 1, MessageType.REQUEST, 0, data)),
        );
        const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort(
          (a, b) => a - b,
        );
        const reader = new MessageReader();
        const items: ReadItem[] = [];
        let from = 0;
        for (const point of [...points, bytes.length]) {
          items.push(...reader.push(bytes.subarray(from, point)));
          from = point;
        }
        expect(items.map((item) => (item.kind === "message" ? [...item.data] : undefined))).toEqual(
          datas.map((data) => [...data]),
        );
      }),
    );
  });
});
