/**
 * The `redis://` store against the shared store contract (test/store-contract.ts), on the Redis
 * at REDIS_URL (default redis://127.0.0.1:6379). Every store gets its own random key prefix and
 * its keys are deleted afterwards. The concurrency case races two connections, as two
 * receptions would. When Redis is unreachable the tests FAIL with "Redis unreachable at <url>"
 * (CONTRACT §1): a store we cannot test is not a store we can call working.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { openStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { deleteKeys, REDIS_URL } from '../helpers/redis.js';
import { storeContract } from '../store-contract.js';

async function deleteKeysOf(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    return await deleteKeys(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

function open(keyPrefix: string) {
  return openStore(REDIS_URL, { logger: silentLogger, keyPrefix });
}

storeContract('redis://', async () => {
  const keyPrefix = `rushgate-test-${randomUUID()}:`;
  const s = {
    store: await open(keyPrefix),
    reopen: () => open(keyPrefix),
    peer: () => open(keyPrefix),
    async cleanup() {
      await s.store.close();
      await deleteKeysOf(keyPrefix);
    },
  };
  return s;
});

test('redis: keys live under the prefix and are all removed by cleanup', async () => {
  const keyPrefix = `rushgate-test-${randomUUID()}:`;
  const store = await open(keyPrefix);
  try {
    await store.createOrder(
      { id: 'o1', item: '/x', clientAddress: '127.0.0.1', createdAt: 1, idempotencyKey: 'k' },
      60_000,
    );
    await store.joinLine({ token: 'q', now: 1, firstEstimateSeconds: 1 }, 1000);
  } finally {
    await store.close();
  }
  assert.ok((await deleteKeysOf(keyPrefix)) >= 4);
  assert.equal(await deleteKeysOf(keyPrefix), 0);
});

test('redis: byte counts beyond 14 digits survive the Lua round trip exactly', async () => {
  const keyPrefix = `rushgate-test-${randomUUID()}:`;
  const store = await open(keyPrefix);
  try {
    await store.createOrder({ id: 'o', item: '/big', clientAddress: '127.0.0.1', createdAt: 1 }, 60_000);
    const r = await store.reserveTicket(
      { id: 't', orderId: 'o', server: 'a', url: 'u', issuedAt: 1, notBefore: 1, expiresAt: 2, claimBy: 3 },
      { capacity: 1, untracked: 0, maxTicketsPerOrder: 1 },
    );
    assert.equal(r.kind, 'reserved');
    const big = 2 ** 53 - 1;
    const e = await store.applyTransferEvent({
      eventId: 'e',
      ticketId: 't',
      type: 'started',
      delivered: big,
      at: 4,
    });
    assert.equal(e.ticket?.delivered, big);
    assert.equal((await store.getOrder('o'))?.tickets[0]?.delivered, big);
  } finally {
    await store.close();
    await deleteKeysOf(keyPrefix);
  }
});

test('redis: a line written by an older rushgate (the linedata hash alone) is indexed at open', async () => {
  const keyPrefix = `rushgate-test-${randomUUID()}:`;
  const redis = new Redis(REDIS_URL);
  try {
    const entry = (token: string, seq: number, lastSeenAt: number) =>
      JSON.stringify({ token, seq, joinedAt: 1, lastSeenAt, firstEstimateSeconds: 2 });
    await redis.hset(`${keyPrefix}linedata`, 'old-b', entry('old-b', 2, 5), 'old-a', entry('old-a', 1, 9));
    await redis.set(`${keyPrefix}lineseq`, '2');
    const store = await open(keyPrefix);
    try {
      assert.deepEqual(
        (await store.lineFront(5)).map((e) => e.token),
        ['old-a', 'old-b'],
      );
      assert.equal((await store.findInLine('old-b'))?.position, 2);
      const next = await store.joinLine({ token: 'new', now: 10, firstEstimateSeconds: 1 }, 100);
      assert.equal(next.kind === 'joined' && next.entry.seq, 3);
      assert.deepEqual(
        (await store.sweepLine(10, 5)).map((e) => e.token),
        ['old-b', 'old-a'],
        'least recently seen first',
      );
    } finally {
      await store.close();
    }
  } finally {
    redis.disconnect();
    await deleteKeysOf(keyPrefix);
  }
});

test('redis: an unreachable Redis is reported as such', async () => {
  await assert.rejects(
    openStore('redis://127.0.0.1:1/0', { logger: silentLogger }),
    /Redis unreachable at redis:\/\/127\.0\.0\.1:1\/0/,
  );
});
