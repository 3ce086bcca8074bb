/**
 * How much read buffer a transfer holds. A transfer starts with one small buffer — enough for a
 * client that reads slowly, which is most of them in a rush — and only a transfer that has shown
 * it drains fast gets the two large buffers that keep a fast link full (one read ahead while the
 * other is written), and gives them back at its first slow write since. Large buffers come from
 * one process-wide pool with a fixed cap, so the content server's buffer memory is bounded
 * whatever the number of transfers:
 * `transfers × SMALL_BUFFER + LARGE_POOL_CAP`.
 *
 * Measured with bench/content.ts (one run each): two 512 KiB buffers for every transfer put
 * 1,000 slow transfers at 1,119 MiB RSS, this scheme at 186 MiB, and the 1 GiB download stayed at
 * 1.05 × nginx.
 * Pure bookkeeping; the times come in as arguments.
 */

export const SMALL_BUFFER = 64 * 1024;
export const LARGE_BUFFER = 512 * 1024;
/** Bytes a transfer must send, with no write waiting longer than SLOW_WRITE_MS, before it grows. */
export const GROW_AFTER_BYTES = 8 * 1024 * 1024;
/** A write that waits longer than this means the client (not the disk) sets the pace. */
export const SLOW_WRITE_MS = 10;
/** Every large buffer of the process together: 64 transfers' pairs. */
export const LARGE_POOL_CAP = 64 * 1024 * 1024;

/**
 * Large buffers, allocated at most up to `capBytes` in all and reused: a freed pair goes back on
 * a free list rather than to the garbage collector, so the cap bounds what is ever allocated, not
 * just what is in use.
 */
export class LargeBufferPool {
  readonly #bufferBytes: number;
  readonly #maxBuffers: number;
  #allocated = 0;
  readonly #free: Buffer[] = [];

  constructor(options: { bufferBytes: number; capBytes: number }) {
    this.#bufferBytes = options.bufferBytes;
    this.#maxBuffers = Math.floor(options.capBytes / options.bufferBytes);
  }

  /** Two buffers, or null when the cap leaves no room for two. */
  takePair(): [Buffer, Buffer] | null {
    if (this.#free.length + (this.#maxBuffers - this.#allocated) < 2) return null;
    return [this.#one(), this.#one()];
  }

  givePair(pair: readonly [Buffer, Buffer]): void {
    this.#free.push(pair[0], pair[1]);
  }

  /** Buffers handed out now. */
  get inUse(): number {
    return this.#allocated - this.#free.length;
  }

  #one(): Buffer {
    const reused = this.#free.pop();
    if (reused) return reused;
    this.#allocated++;
    return Buffer.allocUnsafe(this.#bufferBytes);
  }
}

export const sharedLargeBuffers = new LargeBufferPool({
  bufferBytes: LARGE_BUFFER,
  capBytes: LARGE_POOL_CAP,
});

/**
 * One transfer's judgement of its client: whether it has earned the large buffers. A slow write
 * starts the count again.
 */
export class PaceTracker {
  #cleanBytes = 0;

  /** A write of `bytes` took `waitedMs` from call to callback; returns whether that was slow. */
  wrote(bytes: number, waitedMs: number): boolean {
    if (waitedMs > SLOW_WRITE_MS) {
      this.#cleanBytes = 0;
      return true;
    }
    this.#cleanBytes += bytes;
    return false;
  }

  /** Sent enough with no slow write since the last one to be worth the large buffers. */
  get fast(): boolean {
    return this.#cleanBytes >= GROW_AFTER_BYTES;
  }
}
