/**
 * The event reporter (src/content/event-reporter.ts) against a fake transport: batching, unique
 * ids, retry with backoff after failures (nothing lost, nothing duplicated once accepted),
 * dropping a batch the reception refuses as invalid, the bounded outbox dropping `started` first,
 * and flush on shutdown.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildEventReporter, type NewEvent } from '../../src/content/event-reporter.js';
import type { EventBatch } from '../../src/protocol/internal.js';
import { silentLogger } from '../../src/util/log.js';

const ev = (type: NewEvent['type'], jti: string): NewEvent => ({
  type,
  jti,
  oid: `o-${jti}`,
  path: '/x',
  at: 1,
  delivered: 0,
  size: 10,
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function fakeReception() {
  const batches: EventBatch[] = [];
  let failNext = 0;
  let status = 200;
  return {
    batches,
    accepted: () => batches.flatMap((b) => b.events),
    failFor(n: number) {
      failNext = n;
    },
    setStatus(s: number) {
      status = s;
    },
    transport: async (body: string) => {
      if (failNext > 0) {
        failNext--;
        throw new Error('ECONNREFUSED');
      }
      if (status === 200) batches.push(JSON.parse(body) as EventBatch);
      return status;
    },
  };
}

const fast = { flushDelayMs: 10, initialBackoffMs: 5, maxBackoffMs: 20, logger: silentLogger };

describe('event reporter', () => {
  test('batches events reported close together, with unique ids', async () => {
    const rec = fakeReception();
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      ...fast,
    });
    for (let i = 0; i < 5; i++) r.report(ev('started', `j${i}`));
    await until(() => rec.accepted().length === 5);
    assert.equal(rec.batches.length, 1);
    assert.equal(rec.batches[0]?.serverId, 'a');
    assert.equal(new Set(rec.accepted().map((e) => e.id)).size, 5);
    assert.equal(r.pending(), 0);
    await r.close();
  });

  test('an end frees a slot, so it goes at once, with the starts waiting before it', async () => {
    const rec = fakeReception();
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      ...fast,
      // Were ends held like starts, nothing would arrive before the test's bound.
      flushDelayMs: 60_000,
    });
    r.report(ev('started', 's1'));
    r.report(ev('fulfilled', 'f1'));
    await until(() => rec.accepted().length === 2);
    assert.equal(rec.batches.length, 1, 'one request for both');
    assert.deepEqual(
      rec.accepted().map((e) => e.jti),
      ['s1', 'f1'],
    );
    await r.close();
  });

  test('retries through an outage without losing or reordering events', async () => {
    const rec = fakeReception();
    let failures = 0;
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      onBatchFailed: () => failures++,
      ...fast,
    });
    rec.failFor(4);
    r.report(ev('started', 'j1'));
    r.report(ev('fulfilled', 'j1'));
    await until(() => rec.accepted().length === 2);
    assert.equal(failures, 4);
    assert.deepEqual(
      rec.accepted().map((e) => e.type),
      ['started', 'fulfilled'],
    );
    await r.close();
  });

  test('a batch refused as invalid (4xx) is dropped, not retried forever', async () => {
    const rec = fakeReception();
    let dropped = 0;
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      onDropped: (n) => {
        dropped += n;
      },
      ...fast,
    });
    rec.setStatus(400);
    r.report(ev('started', 'j1'));
    await until(() => dropped === 1);
    assert.equal(r.pending(), 0);
    rec.setStatus(200);
    r.report(ev('started', 'j2'));
    await until(() => rec.accepted().length === 1);
    await r.close();
  });

  test('a 503 is retried', async () => {
    const rec = fakeReception();
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      ...fast,
    });
    rec.setStatus(503);
    r.report(ev('fulfilled', 'j1'));
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(r.pending(), 1);
    rec.setStatus(200);
    await until(() => rec.accepted().length === 1);
    await r.close();
  });

  test('a full outbox drops the oldest started event first', async () => {
    const rec = fakeReception();
    let dropped = 0;
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      maxOutbox: 3,
      onDropped: (n) => {
        dropped += n;
      },
      ...fast,
      flushDelayMs: 10_000,
    });
    r.report(ev('fulfilled', 'f1'));
    r.report(ev('started', 's1'));
    r.report(ev('fulfilled', 'f2'));
    r.report(ev('fulfilled', 'f3'));
    assert.equal(dropped, 1);
    assert.equal(await r.flush(2000), true);
    assert.deepEqual(
      rec.accepted().map((e) => e.jti),
      ['f1', 'f2', 'f3'],
    );
    await r.close();
  });

  test('flush sends what is left and gives up at its deadline', async () => {
    const rec = fakeReception();
    const r = buildEventReporter({
      serverId: 'a',
      receptionUrl: 'x',
      token: 't',
      transport: rec.transport,
      ...fast,
      flushDelayMs: 10_000,
    });
    r.report(ev('fulfilled', 'j1'));
    assert.equal(await r.flush(2000), true);
    rec.failFor(1_000_000);
    r.report(ev('fulfilled', 'j2'));
    assert.equal(await r.flush(100), false);
    assert.equal(r.pending(), 1);
    await r.close();
  });
});
