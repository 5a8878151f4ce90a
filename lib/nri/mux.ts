import { Duplex } from "node:stream";
import { ByteQueue, MAX_MESSAGE_LENGTH, MESSAGE_HEADER_LENGTH } from "../ttrpc/index.js";

// NRI runs two ttrpc connections over its one socket (containerd/nri pkg/net/multiplex):
// every write is cut into frames of an 8-byte header — connection id (uint32) and payload
// length (uint32), big-endian — and the payload. There is no handshake: both ends simply
// use the ids they know.

export const FRAME_HEADER_LENGTH = 8;

/** The multiplexer's connection ids. */
export const ConnectionId = {
  /** The runtime calls the plugin: the plugin serves ttrpc on it. */
  PLUGIN_SERVICE: 1,
  /** The plugin calls the runtime: the plugin is a ttrpc client on it. */
  RUNTIME_SERVICE: 2,
} as const;

/** Largest payload NRI's multiplexer writes in one frame: a whole ttrpc message. Larger is refused. */
export const MAX_FRAME_PAYLOAD = MESSAGE_HEADER_LENGTH + MAX_MESSAGE_LENGTH;

/**
 * What this side puts into one frame at most. NRI's Go reader hands each frame whole to a
 * ttrpc reader that reads through a 4096-byte buffer and fails on a frame that does not fit
 * the space it offers (at least 4096 bytes, more only when a large message's remaining data
 * is wanted). Frames of at most 4096 bytes fit whatever it asks for; each write — one ttrpc
 * message — gets frames of its own.
 */
export const MAX_WRITE_FRAME_PAYLOAD = 4096;

export interface Frame {
  connectionId: number;
  payload: Buffer;
}

/** `data` as consecutive frames of at most `maxPayload` bytes each, in one buffer. */
export function encodeFrames(
  connectionId: number,
  data: Buffer,
  maxPayload = MAX_WRITE_FRAME_PAYLOAD,
): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += maxPayload) {
    const payload = data.subarray(offset, offset + maxPayload);
    const header = Buffer.alloc(FRAME_HEADER_LENGTH);
    header.writeUInt32BE(connectionId, 0);
    header.writeUInt32BE(payload.length, 4);
    parts.push(header, payload);
  }
  return Buffer.concat(parts);
}

export class MuxProtocolError extends Error {
  override readonly name = "MuxProtocolError";
}

/** Cuts the socket's byte stream into frames, whatever the reads' sizes. */
export class FrameReader {
  private readonly queue = new ByteQueue();
  private pending: { connectionId: number; length: number } | undefined;

  /** Throws MuxProtocolError on a frame larger than MAX_FRAME_PAYLOAD. */
  push(chunk: Buffer): Frame[] {
    this.queue.push(chunk);
    const frames: Frame[] = [];
    for (;;) {
      if (this.pending === undefined) {
        if (this.queue.length < FRAME_HEADER_LENGTH) return frames;
        const header = this.queue.take(FRAME_HEADER_LENGTH);
        const pending = { connectionId: header.readUInt32BE(0), length: header.readUInt32BE(4) };
        if (pending.length > MAX_FRAME_PAYLOAD) {
          throw new MuxProtocolError(
            `NRI frame of ${pending.length} bytes for connection ${pending.connectionId} exceeds ` +
              `the ${MAX_FRAME_PAYLOAD}-byte maximum: is the socket an NRI runtime's?`,
          );
        }
        this.pending = pending;
      }
      if (this.queue.length < this.pending.length) return frames;
      frames.push({
        connectionId: this.pending.connectionId,
        payload: this.queue.take(this.pending.length),
      });
      this.pending = undefined;
    }
  }
}

/**
 * Logical connections over one trunk (the NRI socket). Closing the trunk, or a protocol
 * error on it, ends every logical connection; frames for ids nobody opened are dropped,
 * as NRI does.
 */
export class Multiplexer {
  private readonly connections = new Map<number, LogicalConnection>();
  private readonly reader = new FrameReader();
  private readonly closedSignal = Promise.withResolvers<Error | undefined>();
  private isOpen = true;
  /** Frames that arrived for connection ids nobody opened. */
  droppedFrames = 0;

  constructor(private readonly trunk: Duplex) {
    trunk.on("data", (chunk: Buffer) => this.receive(chunk));
    trunk.on("error", (error: Error) => this.close(error));
    trunk.once("end", () => this.close());
    trunk.once("close", () => this.close());
  }

  /** Resolves when the trunk is gone; to the error that ended it, if one did. */
  get closed(): Promise<Error | undefined> {
    return this.closedSignal.promise;
  }

  get isClosed(): boolean {
    return !this.isOpen;
  }

  /** The logical connection `connectionId` (opened once; 0 is reserved). */
  open(connectionId: number): Duplex {
    if (!Number.isInteger(connectionId) || connectionId < 1 || connectionId > 0xffff_ffff) {
      throw new RangeError(`NRI connection id ${connectionId} is reserved or out of range`);
    }
    if (this.connections.has(connectionId)) {
      throw new Error(`NRI connection ${connectionId} is already open`);
    }
    const connection = new LogicalConnection(
      (data) => this.send(connectionId, data),
      () => this.connections.delete(connectionId),
    );
    this.connections.set(connectionId, connection);
    if (!this.isOpen) connection.destroy();
    return connection;
  }

  /** Closes the trunk and every logical connection. */
  close(error?: Error): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.trunk.destroy();
    for (const connection of [...this.connections.values()]) {
      connection.push(null);
      // Without an error: it is reported through `closed`, and a logical connection
      // nobody listens on must not crash the process with an unhandled 'error'.
      connection.destroy();
    }
    this.closedSignal.resolve(error);
  }

  private receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.close(error as Error);
      return;
    }
    for (const frame of frames) {
      const connection = this.connections.get(frame.connectionId);
      if (connection === undefined) this.droppedFrames++;
      else if (frame.payload.length > 0) connection.push(frame.payload);
    }
  }

  private send(connectionId: number, data: Buffer): Error | undefined {
    if (!this.isOpen || this.trunk.destroyed) {
      return new Error("the NRI connection is closed");
    }
    // One write per logical write: frames of two connections never interleave.
    this.trunk.write(encodeFrames(connectionId, data));
    return undefined;
  }
}

/** One multiplexed connection: writes go out as frames, frames for it come in as reads. */
class LogicalConnection extends Duplex {
  constructor(
    private readonly sendData: (data: Buffer) => Error | undefined,
    private readonly detach: () => void,
  ) {
    super({ allowHalfOpen: false });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    callback(this.sendData(chunk));
  }

  override _read(): void {
    // Frames are pushed as they arrive; the trunk is not paused per connection.
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.detach();
    callback(error);
  }
}
