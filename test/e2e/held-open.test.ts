/**
 * Admission without delay (CONTRACT §3), end to end: a real reception and one real content server
 * of capacity 1. Retries sent with `Prefer: wait` are held open and answered with their ticket
 * the moment a download ends and frees the slot — the earlier waiter first — and a held retry
 * whose wait runs out gets the busy answer with `Preference-Applied`. Then `line_full`.
 * Every assertion is about order and outcome, not about time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, type Cluster, postOrder, startCluster } from './reception-cluster.js';

const ITEM = '/held/app.bin';
const BYTES = Buffer.alloc(64 * 1024, 7);

async function download(url: string): Promise<number> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return (await res.arrayBuffer()).byteLength;
}

/** One content server with one slot, the reception polling it often; `reception` adds to that. */
const oneSlotCluster = (reception: Record<string, unknown>) =>
  startCluster({
    servers: 1,
    items: { [ITEM]: BYTES },
    server: () => ({ capacity: 1 }),
    reception: {
      rateLimit: null,
      monitor: { intervalMs: 200, timeoutMs: 2000, failuresBeforeDown: 3 },
      ...reception,
    },
  });

/** Held retries (5 s each, at most 12, so bounded) until one is answered with its ticket. */
async function heldUntilTicketed(
  c: Cluster,
  queueToken: string,
  item = ITEM,
): Promise<Awaited<ReturnType<typeof postOrder>>> {
  let got = await postOrder(c.pub, { item, queueToken }, { prefer: 'wait=5' });
  for (let i = 1; i < 12 && got.status !== 201; i++)
    got = await postOrder(c.pub, { item, queueToken }, { prefer: 'wait=5' });
  return got;
}

/** Until every slot is free again: the downloads of the test before have been heard of. */
const slotsFreed = (c: Cluster) =>
  waitUntil(
    async () => (await c.status()).every((s) => s.outstanding === 0),
    20_000,
    'the last download to free its slot',
  );

describe('held-open retries (Prefer: wait)', { timeout: 120_000 }, () => {
  let c: Cluster;

  before(async () => {
    c = await oneSlotCluster({
      queue: { holdSeconds: 15, maxRetryAfterSeconds: 30, abandonSeconds: 120, maxLength: 3 },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('answers held retries with their tickets as slots free, in line order', async () => {
    const first = await postOrder(c.pub, { item: ITEM });
    assert.equal(first.status, 201, JSON.stringify(first.json));
    const b = await postOrder(c.pub, { item: ITEM });
    const cc = await postOrder(c.pub, { item: ITEM });
    assert.equal(b.status, 503);
    assert.equal(cc.status, 503);
    assert.ok(b.json.queueToken && cc.json.queueToken);

    const answered: string[] = [];
    const held = (name: string, token: string) =>
      postOrder(c.pub, { item: ITEM, queueToken: token }, { prefer: 'wait=25' }).then((r) => {
        answered.push(name);
        return r;
      });
    // The later waiter asks first: holding open must not change the line's order.
    const heldC = held('c', cc.json.queueToken);
    const heldB = held('b', b.json.queueToken);
    // Both are held open: nothing is answered until a slot frees.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(answered, []);

    assert.equal(await download(first.json.ticket.url), BYTES.length);
    const gotB = await heldB;
    assert.equal(gotB.status, 201, JSON.stringify(gotB.json));
    assert.deepEqual(answered, ['b'], 'the earlier waiter is admitted first; the later one still waits');

    assert.equal(await download(gotB.json.ticket.url), BYTES.length);
    const gotC = await heldC;
    assert.equal(gotC.status, 201, JSON.stringify(gotC.json));
    assert.deepEqual(answered, ['b', 'c']);
    assert.equal(await download(gotC.json.ticket.url), BYTES.length);
  });

  it('answers a held retry whose wait runs out with the busy answer and Preference-Applied', async () => {
    await slotsFreed(c);
    const holder = await postOrder(c.pub, { item: ITEM });
    assert.equal(holder.status, 201);
    const w = await postOrder(c.pub, { item: ITEM });
    assert.equal(w.status, 503);
    const again = await postOrder(c.pub, { item: ITEM, queueToken: w.json.queueToken }, { prefer: 'wait=1' });
    assert.equal(again.status, 503);
    assert.equal(again.headers.get('preference-applied'), 'wait=1');
    assert.equal(again.json.queueToken, w.json.queueToken, 'it keeps its place');
    assert.equal(again.json.position, 1);
    const metrics = await (await fetch(`${c.internal}/metrics`)).text();
    assert.match(metrics, /rushgate_reception_held_open_requests 0/);

    // Without a token there is no place to hold: a newcomer is answered at once.
    const newcomer = await postOrder(c.pub, { item: ITEM }, { prefer: 'wait=20' });
    assert.equal(newcomer.status, 503);
    assert.equal(newcomer.headers.get('preference-applied'), null);
    assert.equal(newcomer.json.position, 2);
  });

  it('refuses a newcomer with line_full once queue.maxLength places are taken', async () => {
    // Two are in line from the test before; the third place is the last one.
    const third = await postOrder(c.pub, { item: ITEM });
    assert.equal(third.status, 503);
    assert.equal((third.json as ApiJson).position, 3);
    const fourth = await postOrder(c.pub, { item: ITEM });
    assert.equal(fourth.status, 503, JSON.stringify(fourth.json));
    assert.equal(fourth.json.error.code, 'line_full');
    assert.ok(Number(fourth.headers.get('retry-after')) >= 1);
    const status = await (await fetch(`${c.internal}/status`)).json();
    assert.equal((status as { queue: { length: number } }).queue.length, 3);
  });
});

describe('a waiter that never comes back (CONTRACT §3 "Busy")', { timeout: 120_000 }, () => {
  let c: Cluster;

  before(async () => {
    c = await oneSlotCluster({
      // A hold far longer than this test may run: only the absent waiter's lateness can pass
      // its slot on, and it is told to come back within 5 s.
      queue: { holdSeconds: 600, maxRetryAfterSeconds: 5, abandonSeconds: 900 },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('does not idle a slot for holdSeconds: once it is overdue the next waiter gets it, and it keeps its place', async () => {
    const holder = await postOrder(c.pub, { item: ITEM });
    assert.equal(holder.status, 201, JSON.stringify(holder.json));
    const absent = await postOrder(c.pub, { item: ITEM });
    const honest = await postOrder(c.pub, { item: ITEM });
    assert.equal(absent.status, 503);
    assert.equal(honest.status, 503);
    assert.ok(Number(absent.headers.get('retry-after')) <= 5);

    // The slot frees while the absent waiter, ahead, never comes back; the honest one holds its
    // retries open (at most 5 s each, so the loop is bounded by the attempts).
    assert.equal(await download(holder.json.ticket.url), BYTES.length);
    const got = await heldUntilTicketed(c, honest.json.queueToken);
    assert.equal(got.status, 201, `the honest waiter was admitted: ${JSON.stringify(got.json)}`);

    // The absent waiter kept its place, and is first again when it comes back.
    const place = await fetch(`${c.pub}/api/queue/${encodeURIComponent(absent.json.queueToken)}`);
    assert.equal(place.status, 200);
    assert.equal(((await place.json()) as { position: number }).position, 1);
    assert.equal(await download(got.json.ticket.url), BYTES.length);
    const back = await heldUntilTicketed(c, absent.json.queueToken);
    assert.equal(back.status, 201, JSON.stringify(back.json));
  });
});

describe('an unused ticket while others wait (fair shares)', { timeout: 120_000 }, () => {
  let c: Cluster;

  before(async () => {
    c = await oneSlotCluster({
      tickets: { policy: 'expiring', claimSeconds: 600, claimSecondsWhileWaiting: 1 },
      queue: { holdSeconds: 5, maxRetryAfterSeconds: 5, abandonSeconds: 900 },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('keeps its slot with nobody waiting; frees it after claimSecondsWhileWaiting once someone does', async () => {
    const hoarder = await postOrder(c.pub, { item: ITEM });
    assert.equal(hoarder.status, 201, JSON.stringify(hoarder.json));
    // Longer than claimSecondsWhileWaiting, with nobody in line: the ticket keeps its slot.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await c.status())[0]?.outstanding, 1);
    const order = async () =>
      (await (await fetch(`${c.pub}/api/orders/${hoarder.json.orderId}`)).json()) as ApiJson;
    assert.equal((await order()).status, 'ticketed');

    const waiter = await postOrder(c.pub, { item: ITEM });
    assert.equal(waiter.status, 503, 'the slot is still taken');
    const got = await heldUntilTicketed(c, waiter.json.queueToken);
    assert.equal(got.status, 201, `the waiter got the unused ticket's slot: ${JSON.stringify(got.json)}`);
    assert.equal((await order()).status, 'lapsed');

    // The freed ticket is revoked, so its late claim cannot take the room given to the waiter
    // (nor count past the hoarder's cap). A probe that arrives before the revocation is a
    // one-byte range, served and gone at once.
    const hoarderUrl = hoarder.json.ticket.url as string;
    let late = 0;
    await waitUntil(
      async () => {
        const res = await fetch(hoarderUrl, { headers: { range: 'bytes=0-0' } });
        late = res.status;
        await res.arrayBuffer();
        return late === 410;
      },
      20_000,
      'the freed ticket to be refused',
    );
    assert.equal(late, 410);
    assert.equal(await download(got.json.ticket.url), BYTES.length);

    // The hoarder is not shut out: like after any lapse, its order gets a fresh ticket.
    let fresh: Response | undefined;
    await waitUntil(
      async () => {
        fresh = await fetch(`${c.pub}/api/orders/${hoarder.json.orderId}/tickets`, { method: 'POST' });
        return fresh.status === 201;
      },
      20_000,
      'a fresh ticket for the hoarder',
      250,
    );
    const freshJson = (await fresh!.json()) as ApiJson;
    assert.notEqual(freshJson.ticket.url, hoarderUrl);
    assert.equal(await download(freshJson.ticket.url), BYTES.length);
  });
});

describe('a fresh ticket for an order whose ticket went unused (CONTRACT §3)', { timeout: 120_000 }, () => {
  const BIG = '/held/big.bin';
  // Large enough that a transfer whose client stops reading stays in progress (loopback buffers).
  const BIG_BYTES = Buffer.alloc(32 * 1024 * 1024, 3);
  let c: Cluster;

  before(async () => {
    c = await startCluster({
      servers: 1,
      items: { [ITEM]: BYTES, [BIG]: BIG_BYTES },
      server: () => ({ capacity: 1 }),
      reception: {
        rateLimit: null,
        monitor: { intervalMs: 200, timeoutMs: 2000, failuresBeforeDown: 3 },
        tickets: { policy: 'expiring', claimSeconds: 600, claimSecondsWhileWaiting: 1 },
        queue: { holdSeconds: 15, maxRetryAfterSeconds: 30, abandonSeconds: 120 },
      },
    });
  });

  after(async () => {
    await c?.stop();
  });

  const freshTicket = async (orderId: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${c.pub}/api/orders/${orderId}/tickets`, { method: 'POST', headers });
    return { status: res.status, json: (await res.json()) as ApiJson, headers: res.headers };
  };
  const orderStatus = async (orderId: string) =>
    ((await (await fetch(`${c.pub}/api/orders/${orderId}`)).json()) as ApiJson).status;

  it('comes before the line: it takes the slot held for the first waiter, who is next', async () => {
    const slow = await postOrder(c.pub, { item: ITEM });
    assert.equal(slow.status, 201, JSON.stringify(slow.json));
    const waiter = await postOrder(c.pub, { item: ITEM });
    assert.equal(waiter.status, 503);
    // Someone waits, so the unused ticket lapses after claimSecondsWhileWaiting; its slot is
    // then held for the waiter, who does not come back yet.
    await waitUntil(async () => (await orderStatus(slow.json.orderId)) === 'lapsed', 20_000, 'the lapse');
    const again = await freshTicket(slow.json.orderId);
    assert.equal(again.status, 201, `the admitted order is served first: ${JSON.stringify(again.json)}`);
    const still = await postOrder(c.pub, { item: ITEM, queueToken: waiter.json.queueToken });
    assert.equal(still.status, 503, 'the waiter waits for the next slot');
    assert.equal(still.json.position, 1, 'and is still first in line');
    assert.equal(await download(again.json.ticket.url), BYTES.length);
    const got = await heldUntilTicketed(c, waiter.json.queueToken);
    assert.equal(got.status, 201, JSON.stringify(got.json));
    assert.equal(await download(got.json.ticket.url), BYTES.length);
  });

  it('is held open with Prefer: wait, and answered before the waiters held open with it', async () => {
    await slotsFreed(c);
    const slow = await postOrder(c.pub, { item: ITEM });
    assert.equal(slow.status, 201, JSON.stringify(slow.json));
    const w1 = await postOrder(c.pub, { item: BIG });
    const w2 = await postOrder(c.pub, { item: ITEM });
    assert.equal(w1.status, 503);
    assert.equal(w2.status, 503);
    await waitUntil(async () => (await orderStatus(slow.json.orderId)) === 'lapsed', 20_000, 'the lapse');
    const first = await heldUntilTicketed(c, w1.json.queueToken, BIG);
    assert.equal(first.status, 201, JSON.stringify(first.json));
    // w1's download starts and stalls: its client reads one chunk, so the only slot stays taken.
    const big = await fetch(first.json.ticket.url);
    assert.equal(big.status, 200);
    const reader = big.body!.getReader();
    let read = (await reader.read()).value?.byteLength ?? 0;
    await waitUntil(
      async () => (await orderStatus(first.json.orderId)) === 'downloading',
      20_000,
      'the stalled download to be seen',
    );

    const answered: string[] = [];
    const heldFresh = freshTicket(slow.json.orderId, { prefer: 'wait=25' }).then((r) => {
      answered.push('fresh');
      return r;
    });
    const heldW2 = postOrder(
      c.pub,
      { item: ITEM, queueToken: w2.json.queueToken },
      { prefer: 'wait=25' },
    ).then((r) => {
      answered.push('w2');
      return r;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(answered, [], 'both are held while the slot is taken');

    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      read += chunk.value.byteLength;
    }
    assert.equal(read, BIG_BYTES.length);
    const gotFresh = await heldFresh;
    assert.equal(gotFresh.status, 201, JSON.stringify(gotFresh.json));
    assert.deepEqual(answered, ['fresh'], 'the admitted order first; the waiter still waits');
    assert.equal(await download(gotFresh.json.ticket.url), BYTES.length);
    const gotW2 = await heldW2;
    assert.equal(gotW2.status, 201, JSON.stringify(gotW2.json));
    assert.deepEqual(answered, ['fresh', 'w2']);
    assert.equal(await download(gotW2.json.ticket.url), BYTES.length);
  });
});
