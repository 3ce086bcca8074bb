/**
 * The transmitter's read buffers (src/content/read-buffers.ts, transmitter.ts): the large-buffer
 * pool never allocates past its cap and reuses what comes back; a transfer starts small, takes
 * the large pair only after GROW_AFTER_BYTES sent without a slow write, gives it back at a slow
 * write, and stays small when the pool is empty — with the exact bytes sent in every case. Time
 * is a fake clock that the fake connection advances, so nothing here depends on the machine's pace.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { CatalogItem } from '../../src/content/catalog.js';
import { planRange } from '../../src/content/range-plan.js';
import {
  GROW_AFTER_BYTES,
  LARGE_BUFFER,
  LargeBufferPool,
  PaceTracker,
  SLOW_WRITE_MS,
} from '../../src/content/read-buffers.js';
import { openSource, transmit } from '../../src/content/transmitter.js';

const MiB = 1024 * 1024;

describe('LargeBufferPool', () => {
  test('hands out pairs up to its cap, then none; reuses what is given back', () => {
    const pool = new LargeBufferPool({ bufferBytes: 1024, capBytes: 5 * 1024 });
    const a = pool.takePair();
    const b = pool.takePair();
    assert.ok(a && b);
    assert.equal(pool.takePair(), null, 'one buffer left is not a pair');
    assert.equal(pool.inUse, 4);
    pool.givePair(a);
    assert.equal(pool.inUse, 2);
    const c = pool.takePair();
    assert.ok(c);
    assert.deepEqual(new Set(c), new Set(a), 'the same buffers again, not new ones');
    assert.equal(pool.takePair(), null);
  });
});

describe('PaceTracker', () => {
  test('fast after GROW_AFTER_BYTES without a slow write; a slow write starts over', () => {
    const pace = new PaceTracker();
    assert.equal(pace.wrote(GROW_AFTER_BYTES - 1, 0), false);
    assert.equal(pace.fast, false);
    assert.equal(pace.wrote(1, SLOW_WRITE_MS), false, 'exactly SLOW_WRITE_MS is not slow');
    assert.equal(pace.fast, true);
    assert.equal(pace.wrote(1, SLOW_WRITE_MS + 1), true);
    assert.equal(pace.fast, false);
  });
});

/**
 * Enough of a ServerResponse for `transmit`: keeps a copy of every write (the real socket has
 * taken the bytes by the time the callback runs, and the transmitter reuses its buffers after
 * that), and advances the fake clock by `waitMs(bytesSoFar)` per write.
 */
class FakeResponse extends EventEmitter {
  readonly chunks: Buffer[] = [];
  received = 0;
  writableFinished = false;
  /** Large buffers in use, seen at each write. */
  readonly seen: number[] = [];

  constructor(
    readonly clock: { t: number },
    readonly waitMs: (received: number) => number,
    readonly pool: LargeBufferPool,
  ) {
    super();
  }

  write(chunk: Buffer | string, cb: (err?: Error | null) => void): boolean {
    const copy = Buffer.from(chunk);
    this.chunks.push(copy);
    this.seen.push(this.pool.inUse);
    this.clock.t += this.waitMs(this.received);
    this.received += copy.length;
    setImmediate(() => cb(null));
    return true;
  }

  end(cb: () => void): void {
    this.writableFinished = true;
    setImmediate(() => {
      cb();
      this.emit('close');
    });
  }
}

const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-transmitter-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const content = randomBytes(20 * MiB);
const file = path.join(dir, 'item.bin');
writeFileSync(file, content);
const st = statSync(file);
const item = {
  file,
  size: st.size,
  dev: st.dev,
  ino: st.ino,
  mtimeMs: st.mtimeMs,
  body: null,
  etag: '"x"',
} as unknown as CatalogItem;

async function send(
  waitMs: (received: number) => number,
  pool: LargeBufferPool,
  range?: string,
): Promise<FakeResponse> {
  const clock = { t: 0 };
  const res = new FakeResponse(clock, waitMs, pool);
  const plan = planRange(item.size, { range }, { etag: '"x"', lastModifiedMs: item.mtimeMs }, 'b0undary');
  if (plan.kind === 'unsatisfiable') throw new Error('unsatisfiable');
  const complete = await transmit({
    res: res as unknown as ServerResponse,
    source: await openSource(item),
    size: item.size,
    plan,
    onBytes() {},
    pool,
    now: () => clock.t,
  });
  assert.equal(complete, true);
  assert.equal(pool.inUse, 0, 'the large pair is back in the pool when the transfer ends');
  return res;
}

const pairPool = () => new LargeBufferPool({ bufferBytes: LARGE_BUFFER, capBytes: 2 * LARGE_BUFFER });

describe('transmit: read buffers by the client pace', () => {
  test('a fast client gets the large pair after GROW_AFTER_BYTES; the bytes are exact', async () => {
    const res = await send(() => 0, pairPool());
    assert.ok(Buffer.concat(res.chunks).equals(content));
    const firstLarge = res.seen.indexOf(2);
    assert.ok(firstLarge > 0, 'grew');
    const before = res.chunks.slice(0, firstLarge).reduce((n, c) => n + c.length, 0);
    assert.ok(
      before >= GROW_AFTER_BYTES && before < GROW_AFTER_BYTES + 2 * LARGE_BUFFER,
      `grew at ${before}`,
    );
    assert.ok(
      res.chunks.slice(0, firstLarge).every((c) => c.length <= 64 * 1024),
      'small reads first',
    );
  });

  test('a slow client never holds the large pair', async () => {
    const res = await send(() => SLOW_WRITE_MS + 5, pairPool());
    assert.ok(Buffer.concat(res.chunks).equals(content));
    assert.equal(Math.max(...res.seen), 0);
  });

  test('a client that slows down gives the pair back and goes on from the small buffer', async () => {
    const slowFrom = 12 * MiB;
    const res = await send((received) => (received >= slowFrom ? SLOW_WRITE_MS + 5 : 0), pairPool());
    assert.ok(Buffer.concat(res.chunks).equals(content));
    const grewAt = res.seen.indexOf(2);
    assert.ok(grewAt > 0, 'grew');
    assert.equal(res.seen.at(-1), 0, 'released before the end');
  });

  test('an empty pool keeps every transfer on its small buffer', async () => {
    const pool = new LargeBufferPool({ bufferBytes: LARGE_BUFFER, capBytes: LARGE_BUFFER });
    const res = await send(() => 0, pool);
    assert.ok(Buffer.concat(res.chunks).equals(content));
    assert.equal(Math.max(...res.seen), 0);
  });

  test('ranges and multipart bodies are exact across a change of buffers', async () => {
    const single = await send(() => 0, pairPool(), 'bytes=1000-15000000');
    assert.ok(Buffer.concat(single.chunks).equals(content.subarray(1000, 15_000_001)));
    const multi = await send(() => 0, pairPool(), 'bytes=0-99,5000000-18000000');
    const body = Buffer.concat(multi.chunks).toString('latin1');
    assert.ok(body.includes(content.subarray(0, 100).toString('latin1')));
    assert.ok(body.includes(content.subarray(5_000_000, 18_000_001).toString('latin1')));
    assert.ok(body.endsWith('--b0undary--\r\n'));
  });
});
