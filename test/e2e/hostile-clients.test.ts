/**
 * Hostile clients against a real reception and content server on loopback (CONTRACT §3 "Fair
 * shares", §4): one prefix rotating its addresses, junk input, respelled queue tokens, one client
 * trying to hold more than its share, reused idempotency keys. Each attacker speaks from its own
 * IPv6 /64 through X-Forwarded-For (the test is the trusted proxy), so the cases do not share
 * buckets and their order does not matter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { respellings } from '../helpers/respell.js';
import { type SmtpListener, startSmtpListener } from '../helpers/smtp.js';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, type Cluster, postOrder, rawGet, startCluster } from './reception-cluster.js';

const ITEM = '/f.bin';
const BURST = 10;
let net = 0;
/** A fresh /64 for each case; `host` picks an address inside it. */
function prefix(): (host: number) => string {
  net += 1;
  return (host) => `2001:db8:${net.toString(16)}:0::${host.toString(16)}`;
}
const from = (addr: string) => ({ 'x-forwarded-for': addr });

async function getStatus(url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  return res.status;
}

describe('hostile clients', { timeout: 180_000 }, () => {
  let c: Cluster;
  let smtp: SmtpListener;

  before(async () => {
    smtp = await startSmtpListener();
    c = await startCluster({
      servers: 1,
      items: { [ITEM]: 'f'.repeat(10_000) },
      server: () => ({ capacity: 14 }),
      reception: {
        trustProxy: ['127.0.0.1'],
        // Slow refill: a case's requests run in well under the time one token takes to return
        // ten times over, so the counts below hold on a slow machine too.
        rateLimit: { perSecond: 0.2, burst: BURST },
        limits: { ticketsPerClient: 1, placesPerClient: 1 },
        mail: { smtp: smtp.url, from: 'downloads@example.com' },
        monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 3 },
        queue: { holdSeconds: 60, maxRetryAfterSeconds: 30, abandonSeconds: 120 },
      },
    });
  });

  after(async () => {
    await c?.stop();
    await smtp?.close();
  });

  // First, while the server (capacity 14) has room: one slot goes to this case, two to the next,
  // nine to the mail case, two to the holders below (after which it is full).
  it('gives one client no more live tickets than ticketsPerClient, whichever of its addresses asks', async () => {
    const addr = prefix();
    const first = await postOrder(c.pub, { item: ITEM }, from(addr(1)));
    assert.equal(first.status, 201);
    for (const host of [1, 2, 3]) {
      const more = await postOrder(c.pub, { item: ITEM }, from(addr(host)));
      assert.equal(more.status, 429, JSON.stringify(more.json));
      assert.equal(more.json.error.code, 'client_limit');
      assert.ok(Number(more.headers.get('retry-after')) >= 1);
    }
  });

  it('scopes an Idempotency-Key to its client: reused from another address, it is another key', async () => {
    const a = prefix()(1);
    const b = prefix()(1);
    const key = 'order-42';
    const mine = await postOrder(c.pub, { item: ITEM }, { ...from(a), 'idempotency-key': key });
    const theirs = await postOrder(c.pub, { item: ITEM }, { ...from(b), 'idempotency-key': key });
    assert.equal(mine.status, 201);
    assert.equal(theirs.status, 201, 'another client never gets the first client’s order');
    assert.notEqual(theirs.json.orderId, mine.json.orderId);
    assert.notEqual(theirs.json.ticket.url, mine.json.ticket.url);
    const again = await postOrder(c.pub, { item: ITEM }, { ...from(a), 'idempotency-key': key });
    assert.equal(again.status, 200);
    assert.equal(again.json.orderId, mine.json.orderId);
  });
  it('mails one recipient a bounded number of ticket links, however many clients name it', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await postOrder(c.pub, { item: ITEM, email: 'victim@example.com' }, from(prefix()(1)));
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
    const marker = await postOrder(c.pub, { item: ITEM, email: 'marker@example.com' }, from(prefix()(1)));
    assert.equal(marker.status, 201);
    const victims = () => smtp.mails.filter((m) => m.to.includes('victim@example.com')).length;
    // Mails go out concurrently, so the marker may arrive before the last allowed one.
    await waitUntil(
      () => smtp.mails.some((m) => m.to.includes('marker@example.com')) && victims() >= 5,
      30_000,
      'the marker mail and the five allowed ones',
    );
    const victim = victims();
    assert.equal(victim, 5, `${victim} mails to one recipient`);
  });

  it('limits one /64 as one client however many of its addresses it rotates through', async () => {
    const addr = prefix();
    const statuses: number[] = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) =>
        getStatus(`${c.pub}/api/orders/no-such-order`, from(addr(i + j + 1))),
      );
      statuses.push(...(await Promise.all(batch)));
    }
    const limited = statuses.filter((s) => s === 429).length;
    assert.ok(limited >= 1000 - BURST - 5, `only ${limited} of 1000 were limited`);
    // Another client is not affected.
    assert.equal(await getStatus(`${c.pub}/api/orders/no-such-order`, from(prefix()(1))), 404);
  });

  it('counts malformed JSON, 413 and 415 against the client like any request', async () => {
    const addr = prefix()(7);
    const statuses: number[] = [];
    const send = async (body: string, type: string | undefined) => {
      const res = await fetch(`${c.pub}/api/orders`, {
        method: 'POST',
        headers: { ...from(addr), ...(type ? { 'content-type': type } : {}) },
        body,
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    };
    for (let i = 0; i < 10; i++) {
      await send('{"item": ', 'application/json');
      await send('x'.repeat(20_000), 'application/json');
      await send('item=/f.bin', 'application/x-www-form-urlencoded');
    }
    assert.ok(
      statuses.slice(0, BURST).every((s) => [400, 413, 415].includes(s)),
      String(statuses),
    );
    assert.ok(
      statuses.slice(BURST + 2).every((s) => s === 429),
      `bad input past the burst is limited: ${statuses.join(',')}`,
    );
  });

  it('never refuses a waiter that comes back with its token, even after its prefix spent its allowance', async () => {
    const addr = prefix();
    // Fill the server (its last two slots) from two clients, then queue from a third.
    const holders = [prefix()(1), prefix()(1)];
    for (const h of holders) assert.equal((await postOrder(c.pub, { item: ITEM }, from(h))).status, 201);
    const waiter = await postOrder(c.pub, { item: ITEM }, from(addr(1)));
    assert.equal(waiter.status, 503);
    const token = waiter.json.queueToken;
    // A neighbour in the same /64 spends the ordinary allowance.
    for (let i = 0; i < BURST + 5; i++) await getStatus(`${c.pub}/api/orders/x`, from(addr(2)));
    assert.equal(await getStatus(`${c.pub}/api/orders/x`, from(addr(2))), 429);
    for (let i = 0; i < 5; i++) {
      const again = await postOrder(c.pub, { item: ITEM, queueToken: token }, from(addr(1)));
      assert.equal(again.status, 503, JSON.stringify(again.json));
      assert.equal(again.json.position, 1);
      const q = await getStatus(`${c.pub}/api/queue/${token}`, from(addr(1)));
      assert.equal(q, 200);
    }
  });

  it('accepts no respelled queue token: none is the token, none gets a bucket or a place of its own', async () => {
    const addr = prefix()(1);
    const holders = [prefix()(1), prefix()(1)];
    for (const h of holders) await postOrder(c.pub, { item: ITEM }, from(h));
    const waiter = await postOrder(c.pub, { item: ITEM }, from(addr));
    assert.equal(waiter.status, 503);
    const token = waiter.json.queueToken;
    const variants = respellings(token).filter((v) => !/[\s]/.test(v));
    assert.ok(variants.length >= 20);
    const answers: { status: number; json: ApiJson }[] = [];
    for (const v of variants) {
      const res = await fetch(`${c.pub}/api/queue/${encodeURIComponent(v)}`, { headers: from(addr) });
      answers.push({ status: res.status, json: (await res.json()) as ApiJson });
    }
    assert.ok(
      answers.every((a) => a.status === 404 || a.status === 429),
      `no respelling is the token: ${answers.map((a) => a.status).join(',')}`,
    );
    // They drew on the ordinary allowance (one bucket for the prefix), not a waiter's bucket each.
    assert.ok(answers.filter((a) => a.status === 429).length >= variants.length - BURST - 1);
    // The real token still holds its place.
    const q = await fetch(`${c.pub}/api/queue/${token}`, { headers: from(addr) });
    assert.equal(q.status, 200);
    assert.equal(((await q.json()) as ApiJson).position >= 1, true);
  });

  it('gives one client no more places in line than placesPerClient', async () => {
    const addr = prefix();
    const first = await postOrder(c.pub, { item: ITEM }, from(addr(1)));
    assert.equal(first.status, 503, 'the server is full by now');
    for (const host of [1, 2, 3]) {
      const more = await postOrder(c.pub, { item: ITEM }, from(addr(host)));
      assert.equal(more.status, 429, JSON.stringify(more.json));
      assert.equal(more.json.error.code, 'client_limit');
      assert.ok(Number(more.headers.get('retry-after')) >= 1);
    }
    // Its one place is kept.
    const again = await postOrder(c.pub, { item: ITEM, queueToken: first.json.queueToken }, from(addr(2)));
    assert.equal(again.status, 503);
    assert.equal(again.json.queueToken, first.json.queueToken);
  });

  it('checks reserved prefixes after decoding: /%61pi/… never reaches item lookup', async () => {
    for (const path of [
      '/%61pi/x/y.bin',
      '/%61pi/orders/x',
      '/%5f%72ushgate/a/b',
      '/%68ealthz/x',
      '/_rushgat%65/a/b',
    ]) {
      const res = await rawGet(c.pub, path, from(prefix()(1)));
      assert.equal(res.status, 404, path);
      // Reserved, not an item: never `unknown_item` (the item lookup's answer).
      assert.notEqual((JSON.parse(res.body) as ApiJson).error.code, 'unknown_item', `${path}: ${res.body}`);
    }
  });
});
