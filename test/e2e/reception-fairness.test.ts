/**
 * The waiting line's fairness story with a real content server of capacity 1: a holder, two
 * waiters, the holder's download ends, a newcomer (and the second waiter) is refused while the
 * freed slot is held for the first waiter, and the first waiter is admitted and downloads.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, type Cluster, postOrder, startCluster } from './reception-cluster.js';

describe('reception waiting line', { timeout: 180_000 }, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({
      servers: 1,
      items: { '/f.bin': 'f'.repeat(50_000) },
      server: () => ({ capacity: 1 }),
      reception: {
        rateLimit: null,
        monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 3 },
        // Long enough that the hold cannot run out while this test takes its steps.
        queue: { holdSeconds: 60, maxRetryAfterSeconds: 30, abandonSeconds: 120 },
      },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('holds the freed slot for the first waiter and refuses a newcomer meanwhile', async () => {
    const holder = await postOrder(c.pub, { item: '/f.bin' });
    assert.equal(holder.status, 201);

    const w1 = await postOrder(c.pub, { item: '/f.bin' });
    assert.equal(w1.status, 503);
    assert.equal(w1.json.position, 1);
    assert.ok(Number(w1.headers.get('retry-after')) >= 1);
    assert.match(w1.headers.get('set-cookie') ?? '', /^rushgate_queue=/);
    const w2 = await postOrder(c.pub, { item: '/f.bin' });
    assert.equal(w2.status, 503);
    assert.equal(w2.json.position, 2);

    // The holder downloads; once the reception hears the transfer finished, the slot is free.
    const dl = await fetch(holder.json.ticket.url);
    assert.equal((await dl.arrayBuffer()).byteLength, 50_000);
    await waitUntil(
      async () =>
        ((await (await fetch(`${c.pub}/api/orders/${holder.json.orderId}`)).json()) as ApiJson).status ===
        'fulfilled',
      30_000,
      'the holder’s order to be fulfilled',
    );

    const newcomer = await postOrder(c.pub, { item: '/f.bin' });
    assert.equal(newcomer.status, 503, 'a newcomer without a token waits behind the line');
    assert.equal(newcomer.json.position, 3);

    // A fresh ticket for the holder's fulfilled order is no line bypass: the freed slot is held
    // for the first waiter, so the fresh ticket is busy too (it used to take the held slot).
    const fresh = await fetch(`${c.pub}/api/orders/${holder.json.orderId}/tickets`, { method: 'POST' });
    const freshJson = (await fresh.json()) as ApiJson;
    assert.equal(fresh.status, 503, `a fresh ticket honours the hold: ${JSON.stringify(freshJson)}`);
    assert.equal(freshJson.status, 'busy');

    const w2again = await fetch(`${c.pub}/f.bin`, {
      redirect: 'manual',
      headers: { cookie: `rushgate_queue=${w2.json.queueToken}`, accept: 'application/json' },
    });
    assert.equal(w2again.status, 503, 'the second waiter is not first');
    assert.equal(((await w2again.json()) as ApiJson).position, 2);

    const queue = (await (await fetch(`${c.pub}/api/queue/${w1.json.queueToken}`)).json()) as ApiJson;
    assert.equal(queue.position, 1);

    const w1again = await postOrder(
      c.pub,
      { item: '/f.bin' },
      { 'rushgate-queue-token': w1.json.queueToken },
    );
    assert.equal(w1again.status, 201, JSON.stringify(w1again.json));
    const got = await fetch(w1again.json.ticket.url);
    assert.equal((await got.arrayBuffer()).byteLength, 50_000);

    const metrics = await (await fetch(`${c.internal}/metrics`)).text();
    assert.match(metrics, /rushgate_reception_admissions_total 1/);
    assert.match(metrics, /rushgate_reception_wait_calibration_samples 1/);
  });
});
