/**
 * Store throughput, every backend side by side in one run: orders created per second (the
 * durable step before a `201`), reserve+fulfil cycles per second (one allocation and one
 * transfer report), and the hot reads the allocator makes on every order (`outstanding()`,
 * `lineFront(10)` with 1000 waiting; bench/line.ts measures the line as it grows). For sqlite it also measures the question of group commit: one
 * transaction per order versus 100 orders per transaction on the same schema. Redis runs when
 * reachable at REDIS_URL (default redis://127.0.0.1:6379), under a random key prefix it deletes.
 * Run with `node --import tsx bench/store.ts`, or import `runStoreBench()`. Numbers only.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { openStore, type Store } from '../src/store/index.js';
import { silentLogger } from '../src/util/log.js';
import { ratePerSecondFor } from './rate.js';

const ROUND_MS = 1000;
const LIMITS = { capacity: 1_000_000, untracked: 0, maxTicketsPerOrder: 5 };

/** Ops per second of `fn`, run `concurrency` at a time for about ROUND_MS. */
const measure = (fn: (i: number) => Promise<unknown>, concurrency = 1) =>
  ratePerSecondFor(ROUND_MS, concurrency, fn);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);

async function benchStore(name: string, store: Store): Promise<void> {
  const run = randomUUID().slice(0, 8);
  const t0 = Date.now();
  const create = (i: number) =>
    store.createOrder(
      { id: `${run}-o${i}`, item: '/x.bin', clientAddress: '127.0.0.1', createdAt: t0 + i },
      86_400_000,
    );
  const created = await measure(create);
  let k = 0;
  const createdConcurrent = await measure((i) => create(1_000_000 + i), 50);
  const cycle = async () => {
    const n = k++;
    const orderId = `${run}-c${n}`;
    await store.createOrder(
      { id: orderId, item: '/x.bin', clientAddress: '127.0.0.1', createdAt: t0 },
      86_400_000,
    );
    const ticketId = `${run}-t${n}`;
    await store.reserveTicket(
      {
        id: ticketId,
        orderId,
        server: 'a',
        url: 'http://x',
        issuedAt: t0,
        notBefore: t0,
        expiresAt: t0 + 600_000,
        claimBy: t0 + 30_000,
      },
      LIMITS,
    );
    await store.applyTransferEvent({
      eventId: `${run}-e${n}`,
      ticketId,
      type: 'fulfilled',
      delivered: 1,
      at: t0 + 1,
    });
  };
  const cycles = await measure(cycle, 10);
  for (let i = 0; i < 1000; i++)
    await store.joinLine({ token: `${run}-q${i}`, now: t0, firstEstimateSeconds: 1 }, 1_000_000);
  const outstanding = await measure(() => store.outstanding());
  const line = await measure(() => store.lineFront(10));
  console.log(
    `${name.padEnd(8)} createOrder/s ${fmt(created)} (×50 concurrent ${fmt(createdConcurrent)})` +
      `   order+reserve+fulfil/s ${fmt(cycles)}   outstanding()/s ${fmt(outstanding)}   line(1000)/s ${fmt(line)}`,
  );
}

/** The group-commit question on bare better-sqlite3, same pragmas as the store. */
function groupCommit(file: string, synchronous: 'NORMAL' | 'FULL'): { single: number; grouped: number } {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE IF NOT EXISTS o (id TEXT PRIMARY KEY, item TEXT, at INTEGER) WITHOUT ROWID');
  const insert = db.prepare('INSERT INTO o VALUES (?, ?, ?)');
  const one = db.transaction((id: string) => insert.run(id, '/x.bin', 1));
  const many = db.transaction((ids: string[]) => {
    for (const id of ids) insert.run(id, '/x.bin', 1);
  });
  const time = (n: number, fn: () => void) => {
    const start = performance.now();
    fn();
    return n / ((performance.now() - start) / 1000);
  };
  const single = time(5000, () => {
    for (let i = 0; i < 5000; i++) one.immediate(randomUUID());
  });
  const grouped = time(50_000, () => {
    for (let b = 0; b < 500; b++) many.immediate(Array.from({ length: 100 }, () => randomUUID()));
  });
  db.close();
  return { single, grouped };
}

export async function runStoreBench(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-bench-'));
  try {
    const memory = await openStore('memory:', { logger: silentLogger });
    await benchStore('memory:', memory);
    await memory.close();

    const sqlite = await openStore(`sqlite:${path.join(dir, 'reception.db')}`, { logger: silentLogger });
    await benchStore('sqlite:', sqlite);
    await sqlite.close();

    for (const sync of ['NORMAL', 'FULL'] as const) {
      const g = groupCommit(path.join(dir, `group-${sync}.db`), sync);
      console.log(
        `sqlite synchronous=${sync.padEnd(6)} inserts/s: one per transaction ${fmt(g.single)}` +
          `   100 per transaction ${fmt(g.grouped)}`,
      );
    }

    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const reachable = await probe.connect().then(
      () => true,
      () => false,
    );
    probe.disconnect();
    if (!reachable) {
      console.log(`redis:   skipped, Redis unreachable at ${url}`);
      return;
    }
    const keyPrefix = `rushgate-bench-${randomUUID().slice(0, 8)}:`;
    const redis = await openStore(url, { logger: silentLogger, keyPrefix });
    try {
      await benchStore('redis:', redis);
    } finally {
      await redis.close();
      const cleaner = new Redis(url);
      let cursor = '0';
      do {
        const [next, keys] = await cleaner.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await cleaner.del(...keys);
      } while (cursor !== '0');
      cleaner.disconnect();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runStoreBench();
}
