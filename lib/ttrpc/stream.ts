import type { Duplex } from "node:stream";
import { MessageReader, type ReadItem } from "./framing.js";

/** Answers waiting for the peer to read them, beyond which we stop reading its requests. */
export const MAX_UNSENT_BYTES = 1024 * 1024;

/**
 * Feeds the messages read from `stream` to `onItem` and calls `onClose` once when the
 * stream ends, fails or is destroyed (by either side).
 */
export function readMessages(
  stream: Duplex,
  onItem: (item: ReadItem) => void,
  onClose: (error: Error | undefined) => void,
): void {
  const reader = new MessageReader();
  let closed = false;
  const close = (error: Error | undefined) => {
    if (closed) return;
    closed = true;
    stream.off("data", onData);
    onClose(error);
  };
  const onData = (chunk: Buffer) => {
    for (const item of reader.push(chunk)) {
      if (closed) return;
      onItem(item);
    }
    // A peer that sends without reading what we answer: read no more until it has.
    if (stream.writableLength > MAX_UNSENT_BYTES && !stream.isPaused()) {
      stream.pause();
      stream.once("drain", () => stream.resume());
    }
  };
  stream.on("data", onData);
  // `on`, not `once`: a later error without a listener would crash the process.
  stream.on("error", (error: Error) => close(error));
  stream.once("end", () => close(undefined));
  stream.once("close", () => close(undefined));
}

/** Writes one whole message; false when the stream cannot take writes any more. */
export function writeMessage(stream: Duplex, message: Buffer): boolean {
  if (stream.destroyed || !stream.writable) return false;
  stream.write(message);
  return true;
}
