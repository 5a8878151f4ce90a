import { ByteQueue } from "./byte-queue.js";
import { Code, TtrpcError } from "./status.js";

// ttrpc message framing (containerd/ttrpc PROTOCOL.md, channel.go): a 10-byte header —
// data length (uint32), stream id (uint32), message type (uint8), flags (uint8), all
// big-endian — then the data.

export const MESSAGE_HEADER_LENGTH = 10;
/** Largest data length either side accepts (ttrpc's messageLengthMax, 4 MiB). */
export const MAX_MESSAGE_LENGTH = 4 << 20;

export const MessageType = {
  REQUEST: 0x1,
  RESPONSE: 0x2,
  /** Stream data; only streaming calls use it, which this implementation does not serve. */
  DATA: 0x3,
} as const;

export const MessageFlags = {
  REMOTE_CLOSED: 0x1,
  REMOTE_OPEN: 0x2,
  NO_DATA: 0x4,
} as const;

export interface MessageHeader {
  /** Data length, without the header. */
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export function encodeHeader(header: MessageHeader): Buffer {
  const out = Buffer.alloc(MESSAGE_HEADER_LENGTH);
  out.writeUInt32BE(header.length, 0);
  out.writeUInt32BE(header.streamId, 4);
  out.writeUInt8(header.type, 8);
  out.writeUInt8(header.flags, 9);
  return out;
}

export function decodeHeader(bytes: Buffer): MessageHeader {
  if (bytes.length < MESSAGE_HEADER_LENGTH) {
    throw new RangeError(`a ttrpc header has ${MESSAGE_HEADER_LENGTH} bytes, got ${bytes.length}`);
  }
  return {
    length: bytes.readUInt32BE(0),
    streamId: bytes.readUInt32BE(4),
    type: bytes.readUInt8(8),
    flags: bytes.readUInt8(9),
  };
}

/** Header and data as one buffer, so one write puts one whole message on the wire. */
export function encodeMessage(
  streamId: number,
  type: number,
  flags: number,
  data: Uint8Array,
): Buffer {
  if (data.length > MAX_MESSAGE_LENGTH) {
    throw new TtrpcError(
      Code.RESOURCE_EXHAUSTED,
      `message length ${data.length} exceeds the maximum message size of ${MAX_MESSAGE_LENGTH}`,
    );
  }
  return Buffer.concat([encodeHeader({ length: data.length, streamId, type, flags }), data]);
}

export type ReadItem =
  | { kind: "message"; header: MessageHeader; data: Buffer }
  /** Longer than MAX_MESSAGE_LENGTH: its data is skipped, the stream gets RESOURCE_EXHAUSTED. */
  | { kind: "oversized"; header: MessageHeader };

/** Cuts a byte stream into ttrpc messages, whatever the reads' sizes. */
export class MessageReader {
  private readonly queue = new ByteQueue();
  private header: MessageHeader | undefined;
  private discarding = 0;

  push(chunk: Buffer): ReadItem[] {
    this.queue.push(chunk);
    const items: ReadItem[] = [];
    for (;;) {
      if (this.discarding > 0) {
        this.discarding -= this.queue.skip(this.discarding);
        if (this.discarding > 0) return items;
      }
      if (this.header === undefined) {
        if (this.queue.length < MESSAGE_HEADER_LENGTH) return items;
        const header = decodeHeader(this.queue.take(MESSAGE_HEADER_LENGTH));
        if (header.length > MAX_MESSAGE_LENGTH) {
          // As ttrpc does: skip the data and fail only this stream, the connection stays.
          this.discarding = header.length;
          items.push({ kind: "oversized", header });
          continue;
        }
        this.header = header;
      }
      if (this.queue.length < this.header.length) return items;
      items.push({
        kind: "message",
        header: this.header,
        data: this.queue.take(this.header.length),
      });
      this.header = undefined;
    }
  }
}
