/**
 * Bytes received from a stream socket, in order, for parsers that need a fixed number of
 * them at a time: reads arrive cut anywhere, so a header or a body may span several chunks
 * and one chunk may hold several messages.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The first `count` bytes, removed from the queue; the caller checked `length`. */
  take(count: number): Buffer {
    if (count > this.size) throw new RangeError(`take(${count}) with ${this.size} bytes queued`);
    const first = this.chunks[0];
    if (first !== undefined && first.length >= count) {
      // The common case (a whole message in one read) copies nothing.
      const taken = first.subarray(0, count);
      this.dropFromFirst(count);
      return taken;
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0]!;
      const n = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      this.dropFromFirst(n);
    }
    return out;
  }

  /** Drops up to `count` bytes; returns how many were dropped. */
  skip(count: number): number {
    let dropped = 0;
    while (dropped < count && this.chunks.length > 0) {
      const n = Math.min(this.chunks[0]!.length, count - dropped);
      this.dropFromFirst(n);
      dropped += n;
    }
    return dropped;
  }

  private dropFromFirst(count: number): void {
    const first = this.chunks[0]!;
    if (count === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(count);
    this.size -= count;
  }
}
