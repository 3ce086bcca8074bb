/**
 * The seed's content transmitter 143 (FIG. 4; step Sb33 of FIG. 6B): writes an item's bytes — the
 * whole item, one range, or several ranges as `multipart/byteranges` — to the client, and tells
 * the caller exactly which bytes reached the connection. Constant memory whatever the item size:
 * one 64 KiB read buffer per transfer, and two 512 KiB ones (read-ahead into one while the other
 * is written) only for a transfer whose client drains fast, from a pool with a process-wide cap
 * (`read-buffers.ts`).
 *
 * Why hand-written rather than `send` or `fs.createReadStream().pipe(res)`: the delivery ledger
 * must learn which bytes were written even when the response is cut short (CONTRACT §4), and a
 * pipe only says "finished" or "failed". So every write carries a callback, and bytes count when
 * it fires without error. Writes go out one at a time, in slices of at most 64 KiB: Node merges
 * writes queued behind a pending one into a single writev whose callbacks all fail together when
 * the socket dies, which would lose up to a whole read buffer of bytes the client did receive.
 * With one slice in flight, a slice is left uncounted only when the kernel refused part of it —
 * and then the socket buffers ahead of the client hold more than a slice, so the client cannot
 * have received any of it. It costs little: the callback of a write the kernel took at once comes
 * back on the next tick, and measured on loopback (1 GiB to curl, 512 KiB reads, best of five)
 * one slice at a time ran at 1.2–2.2 GB/s against 1.6–2.0 GB/s for unbounded pipelining — the
 * same within this shared machine's noise; bench/content.ts compares the result with nginx.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { CatalogItem } from './catalog.js';
import type { RangePlan } from './range-plan.js';
import { type LargeBufferPool, PaceTracker, SMALL_BUFFER, sharedLargeBuffers } from './read-buffers.js';

export const WRITE_SLICE = 64 * 1024;

/** The file under an item changed since the catalog hashed it; the catalog must rescan. */
export class ItemChangedError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'ItemChangedError';
  }
}

/** Where an item's bytes come from: memory (small items) or an open file. */
export interface Source {
  read(buf: Buffer, position: number, length: number): Promise<number>;
  /** The whole content, when held in memory: written without copying. */
  body: Buffer | null;
  close(): Promise<void>;
}

/**
 * Opens the item's bytes, before any header is written so that a problem can still be answered
 * properly. For a file on disk: its real path must still be the catalog's (which was proven
 * inside the root), the last component must not have become a symlink (O_NOFOLLOW), and the
 * opened file must be the very file the catalog hashed (device, inode, size, mtime) — otherwise
 * the digest and entity tag we would send describe other bytes.
 */
export async function openSource(item: CatalogItem): Promise<Source> {
  if (item.body) {
    const body = item.body;
    return {
      body,
      async read(buf, position, length) {
        return body.copy(buf, 0, position, position + length);
      },
      async close() {},
    };
  }
  let real: string;
  try {
    real = await realpath(item.file);
  } catch {
    throw new ItemChangedError(item.file, 'gone');
  }
  if (real !== item.file) throw new ItemChangedError(item.file, 'real path changed');
  let fh: FileHandle;
  try {
    fh = await open(item.file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw new ItemChangedError(item.file, 'cannot open');
  }
  try {
    const st = await fh.stat();
    if (st.dev !== item.dev || st.ino !== item.ino || st.size !== item.size || st.mtimeMs !== item.mtimeMs) {
      throw new ItemChangedError(item.file, 'changed since it was hashed');
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return {
    body: null,
    async read(buf, position, length) {
      const { bytesRead } = await fh.read(buf, 0, length, position);
      return bytesRead;
    },
    close: () => fh.close(),
  };
}

export interface TransmitOptions {
  res: ServerResponse;
  source: Source;
  size: number;
  plan: Exclude<RangePlan, { kind: 'unsatisfiable' }>;
  /** Bytes `[start, end)` of the item were written to the connection. */
  onBytes(start: number, end: number): void;
  /** Where the large read buffers come from (tests); the process-wide pool by default. */
  pool?: LargeBufferPool;
  /** Milliseconds, to time each write's wait (tests); `performance.now` by default. */
  now?: () => number;
}

/**
 * Writes a last chunk and ends the response; `done(true)` once the kernel has all of it, `done(false)`
 * if the connection went away first. The callback-only path for small items: no source, no
 * promise, one write.
 */
export function sendChunk(res: ServerResponse, chunk: Buffer, done: (written: boolean) => void): void {
  // One listener, not an end callback as well: a response emits 'close' both after it finished
  // (then writableFinished is true) and when its connection goes away first. Every listener is
  // per-request cost on the path of a rush of small downloads.
  res.once('close', () => done(res.writableFinished));
  res.end(chunk);
}

/** Tracks whether the connection is gone and wakes whoever waits on a write. */
class Connection {
  closed = false;
  #wake: (() => void) | null = null;

  constructor(readonly res: ServerResponse) {
    res.once('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  /** Writes one slice; resolves true once the kernel has it, false if the connection went away. */
  write(chunk: Buffer | string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#wake = () => resolve(false);
      this.res.write(chunk, (err) => {
        this.#wake = null;
        resolve(!err);
      });
    });
  }
}

/**
 * Streams the body of an answer whose headers the caller has set (status and headers via
 * `res.writeHead`). Resolves true when the whole body was written, false when the connection
 * went away first; never rejects on a client disconnect. Closes the source.
 */
export async function transmit(options: TransmitOptions): Promise<boolean> {
  const { res, source, plan, onBytes } = options;
  const conn = new Connection(res);
  const buffers = new TransferBuffers(
    options.pool ?? sharedLargeBuffers,
    options.size,
    options.now ?? (() => performance.now()),
  );
  try {
    let complete = true;
    if (plan.kind === 'full') {
      complete = await sendRange(conn, source, 0, options.size, onBytes, buffers);
    } else if (plan.kind === 'single') {
      complete = await sendRange(conn, source, plan.range.start, plan.range.end + 1, onBytes, buffers);
    } else {
      for (const part of plan.parts) {
        complete =
          (await conn.write(part.header)) &&
          (await sendRange(conn, source, part.range.start, part.range.end + 1, onBytes, buffers));
        if (!complete) break;
      }
      complete = complete && (await conn.write(plan.trailer));
    }
    if (!complete || conn.closed) return false;
    return await new Promise<boolean>((resolve) => {
      res.end(() => resolve(true));
      res.once('close', () => resolve(res.writableFinished));
    });
  } finally {
    buffers.release();
    await source.close();
  }
}

/** One transfer's read buffers: a small one from the start, the large pair while it has earned it. */
class TransferBuffers {
  readonly pace = new PaceTracker();
  #small: Buffer | null = null;
  #pair: [Buffer, Buffer] | null = null;

  constructor(
    readonly pool: LargeBufferPool,
    /** Bytes of the whole answer's item: a small item never needs a full small buffer. */
    readonly size: number,
    readonly now: () => number,
  ) {}

  /** The buffers to read into now: the large pair, or the small one alone. */
  current(): readonly Buffer[] {
    if (this.#pair) return this.#pair;
    this.#small ??= Buffer.allocUnsafe(Math.max(1, Math.min(SMALL_BUFFER, this.size)));
    return [this.#small];
  }

  get large(): boolean {
    return this.#pair !== null;
  }

  /** Takes the large pair if the pool has one (else stays small, and asks again later). */
  grow(): void {
    this.#pair ??= this.pool.takePair();
  }

  /** Gives the large pair back; only when no read or write uses it. */
  release(): void {
    if (this.#pair) this.pool.givePair(this.#pair);
    this.#pair = null;
  }
}

/** Writes item bytes `[start, end)`. */
async function sendRange(
  conn: Connection,
  source: Source,
  start: number,
  end: number,
  onBytes: (start: number, end: number) => void,
  buffers: TransferBuffers,
): Promise<boolean> {
  if (source.body) {
    for (let pos = start; pos < end; pos += WRITE_SLICE) {
      const stop = Math.min(end, pos + WRITE_SLICE);
      if (!(await conn.write(source.body.subarray(pos, stop)))) return false;
      onBytes(pos, stop);
    }
    return true;
  }
  if (end <= start) return true;
  let set = buffers.current();
  let which = 0;
  let pos = start;
  // Set at a slow write while holding the large pair: no more read-ahead, give the pair back.
  let shrinking = false;
  const readInto = (buf: Buffer) => source.read(buf, pos, Math.min(buf.length, end - pos));
  let reading: Promise<number> | null = readInto(set[0] as Buffer);
  try {
    while (reading) {
      const n = await reading;
      reading = null;
      if (n === 0) throw new ItemChangedError('item', 'shrank while being sent');
      const buf = set[which] as Buffer;
      const chunkStart = pos;
      pos += n;
      // Read ahead into the other buffer while this one is written (the large pair only).
      if (pos < end && set.length === 2 && !shrinking) {
        which ^= 1;
        reading = readInto(set[which] as Buffer);
      }
      for (let off = 0; off < n; off += WRITE_SLICE) {
        const len = Math.min(WRITE_SLICE, n - off);
        const asked = buffers.now();
        if (!(await conn.write(buf.subarray(off, off + len)))) return false;
        if (buffers.pace.wrote(len, buffers.now() - asked) && buffers.large) shrinking = true;
        onBytes(chunkStart + off, chunkStart + off + len);
      }
      if (pos >= end || reading) continue;
      // Nothing reads or is written now: the moment to change buffers.
      if (shrinking) {
        buffers.release();
        shrinking = false;
      } else if (!buffers.large && buffers.pace.fast) {
        buffers.grow();
      }
      set = buffers.current();
      which = 0;
      reading = readInto(set[0] as Buffer);
    }
    return true;
  } finally {
    // Never leave a read running on a handle that is about to be closed.
    if (reading) await reading.catch(() => 0);
  }
}
