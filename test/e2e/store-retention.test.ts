/**
 * Retention keeps every store bounded (issue 8, item 4): 100,000 orders through the store API
 * with a fake clock (20 orders per simulated second, so 5,000 s pass: longer than the hour for
 * which applied-event ids are kept, whose own bound then shows too), each ticketed, started and
 * fulfilled, a 60 s retention, and the reception's own sweeper once per simulated second. The
 * orders alive at the end are exactly those of the last retention plus the ticket's validity,
 * and the process's heap and RSS (memory:) or the database file (sqlite:) stop growing: from
 * 80,000 to 100,000 orders they stay flat. Redis runs the same with 20,000 orders and counts its keys.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { buildRetentionSweeper } from '../../src/reception/retention-sweeper.js';
import { openStore, type Store } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { deleteKeys, REDIS_URL } from '../helpers/redis.js';

const T0 = 1_700_000_000_000;
const RETENTION_MS = 60_000;
const PER_SECOND = 20;
const TICKET_MS = 30_000;
/** Alive at most: one retention plus the ticket's validity plus one sweep interval, at the rate. */
const BOUND = PER_SECOND * ((RETENTION_MS + TICKET_MS) / 1000 + 1);

interface Sample {
  orders: number;
  rss: number;
  heap: number;
}

async function rush(store: Store, total: number, sample: (s: Sample) => void): Promise<string[]> {
  const sweeper = buildRetentionSweeper({ store, retentionMs: RETENTION_MS, logger: silentLogger });
  const ids: string[] = [];
  for (let i = 0; i < total; i++) {
    const at = T0 + Math.floor((i * 1000) / PER_SECOND);
    const id = `o${i}`;
    ids.push(id);
    await store.createOrder(
      {
        id,
        item: '/x.bin',
        clientAddress: '192.0.2.7',
        createdAt: at,
        email: `b${i}@example.com`,
        idempotencyKey: `k${i}`,
      },
      24 * 3600_000,
    );
    const r = await store.reserveTicket(
      {
        id: `t${i}`,
        orderId: id,
        server: 'a',
        url: `http://127.0.0.1:1/t/t-${i}/x.bin`,
        issuedAt: at,
        notBefore: at,
        expiresAt: at + TICKET_MS,
        claimBy: at + 10_000,
      },
      { capacity: 1_000_000, untracked: 0, maxTicketsPerOrder: 5 },
    );
    assert.equal(r.kind, 'reserved');
    await store.applyTransferEvent({
      eventId: `s${i}`,
      ticketId: `t${i}`,
      type: 'started',
      delivered: 0,
      at,
    });
    await store.applyTransferEvent({
      eventId: `f${i}`,
      ticketId: `t${i}`,
      type: 'fulfilled',
      delivered: 1,
      at: at + 5,
    });
    if ((i + 1) % PER_SECOND === 0) await sweeper.sweep(at);
    if ((i + 1) % 10_000 === 0) {
      gc();
      const m = process.memoryUsage();
      sample({ orders: i + 1, rss: m.rss, heap: m.heapUsed });
    }
  }
  return ids;
}

async function alive(store: Store, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) if (await store.getOrder(id)) n++;
  return n;
}

const MB = 1024 * 1024;

// Samples are taken after a full collection, so they measure what is kept, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('memory: 100,000 orders with a 60 s retention keep the store and the process bounded', {
  timeout: 300_000,
}, async () => {
  const store = await openStore('memory:', { logger: silentLogger });
  const samples: Sample[] = [];
  const ids = await rush(store, 100_000, (s) => samples.push(s));
  const n = await alive(store, ids);
  console.log(
    `memory: ${n} of ${ids.length} orders alive; heap/RSS MB by orders:`,
    samples.map((s) => `${s.orders}:${(s.heap / MB).toFixed(0)}/${(s.rss / MB).toFixed(0)}`).join(' '),
  );
  assert.ok(n <= BOUND, `${n} orders alive, bound ${BOUND}`);
  assert.ok(n >= BOUND - 2 * PER_SECOND, `${n} alive: retention must not purge early`);
  // Once the oldest event ids age out too (after 3,600 simulated s, 72,000 orders) nothing grows:
  // measured ~1 MB of heap from 80k to 100k orders. With no purging, the heap grows ~75 MB and
  // RSS ~76 MB from 30k to 100k orders (100 orders/s, same run otherwise).
  const at80 = samples.find((s) => s.orders === 80_000)!;
  const at100 = samples.find((s) => s.orders === 100_000)!;
  assert.ok(at100.heap - at80.heap < 5 * MB, `heap grew ${((at100.heap - at80.heap) / MB).toFixed(1)} MB`);
  assert.ok(at100.rss - at80.rss < 20 * MB, `RSS grew ${((at100.rss - at80.rss) / MB).toFixed(1)} MB`);
  await store.close();
});

test('sqlite: 100,000 orders with a 60 s retention keep the database file bounded', {
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-retention-'));
  const file = path.join(dir, 'reception.db');
  try {
    const store = await openStore(`sqlite:${file}`, { logger: silentLogger });
    const sizes = new Map<number, number>();
    const ids = await rush(store, 100_000, (s) => sizes.set(s.orders, statSync(file).size));
    const n = await alive(store, ids);
    console.log(
      `sqlite: ${n} of ${ids.length} orders alive; database file MB by orders (the WAL beside it is bounded by its checkpoints):`,
      [...sizes].map(([k, v]) => `${k}:${(v / MB).toFixed(1)}`).join(' '),
    );
    await store.close();
    assert.ok(n <= BOUND, `${n} orders alive, bound ${BOUND}`);
    assert.ok(n >= BOUND - 2 * PER_SECOND, `${n} alive: retention must not purge early`);
    // Freed pages are reused: once the event ids age out too, the file stops growing.
    const at80 = sizes.get(80_000)!;
    const at100 = sizes.get(100_000)!;
    assert.ok(
      at100 <= at80 * 1.05,
      `file ${(at80 / MB).toFixed(2)} MB at 80k orders, ${(at100 / MB).toFixed(2)} MB at 100k`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('redis: 20,000 orders with a 60 s retention keep the key count bounded', {
  timeout: 300_000,
}, async () => {
  const prefix = `rushgate-test-${randomUUID()}:`;
  const store = await openStore(REDIS_URL, { logger: silentLogger, keyPrefix: prefix });
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const ids = await rush(store, 20_000, () => {});
    const n = await alive(store, ids);
    let keys = 0;
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys += found.filter((k) => /:(order|ticket|idem):/.test(k)).length;
    } while (cursor !== '0');
    console.log(`redis: ${n} of ${ids.length} orders alive, ${keys} order/ticket/idempotency keys`);
    assert.ok(n <= BOUND, `${n} orders alive, bound ${BOUND}`);
    assert.ok(n >= BOUND - 2 * PER_SECOND, `${n} alive: retention must not purge early`);
    assert.equal(keys, 3 * n, 'each order alive keeps exactly its order, ticket and idempotency key');
    assert.equal(await redis.zcard(`${prefix}activity`), n);
  } finally {
    await store.close();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  }
});
