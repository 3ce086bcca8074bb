/**
 * Two real receptions sharing one Redis (CONTRACT §2, last paragraph): two `rushgate reception`
 * processes run from deployment files that differ only in the reception's `listen`,
 * `internalListen` and `publicUrl`, in front of three real `rushgate content` servers of
 * capacity 1 (N = 3 slots in all), all on one `redis://` store under a random key prefix
 * (`?prefix=`) that is deleted afterwards. Content servers a and b run from the first file, so
 * they report transfer events to reception 1 only; c runs from the second and reports to
 * reception 2 only: whatever one reception learns of a finished download, the other learns
 * through the store. The story: an order made at 1 is read, given a fresh ticket and revoked at
 * 2; a download reported to 1 frees a slot that 2 holds for the client that queued first (at 1)
 * and refuses to a newcomer; a client busy at 2 is admitted there after a download reported to 1,
 * and the newcomer at 1 after a download reported to 2; a retry held open (`Prefer: wait`) at 2
 * is answered with its ticket when a download reported to 1 frees a slot; a burst of 4×N orders split across both
 * gets exactly N tickets and one line of 3×N places. When Redis is unreachable the suite FAILS
 * with "Redis unreachable at <url>" (CONTRACT §1), and so does a reception pointed at it.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { splitPrefix } from '../../src/store/redis.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { holdDeadPort, readReadyFile } from '../helpers/ports.js';
import { type Proc, runRushgate, startRushgate, waitForHttp } from '../helpers/proc.js';
import { deleteKeys, REDIS_URL } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, postOrder } from './reception-cluster.js';

const REDIS_BASE = REDIS_URL;
/** REDIS_URL with a database number: the one it names, else `/0`. */
const REDIS_DB_URL = (() => {
  const u = new URL(REDIS_BASE);
  if (!/^\/\d+$/.test(u.pathname)) u.pathname = '/0';
  u.search = '';
  return u.toString();
})();
const PREFIX = `rushgate-test-${randomUUID()}:`;
const STORE_URL = `${REDIS_DB_URL}?prefix=${PREFIX}`;

const ITEM = '/apps/editor-2.1.bin';
const BYTES = randomBytes(200_000);
const SERVERS = ['a', 'b', 'c'];
/** Total capacity: three servers of one slot each. */
const N = 3;
/** The content server run from the second deployment file: its events go to reception 2. */
const REPORTS_TO_2 = 'c';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const GRANT_ISS = 'https://shop.example.com';
const GRANT_SECRET = randomBytes(32).toString('base64url');

/** An HS256 grant made with node:crypto alone. */
function hsGrant(sub: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: GRANT_ISS, sub, items: '**', iat: now, exp: now + 600 })}`;
  return `${input}.${createHmac('sha256', GRANT_SECRET).update(input).digest('base64url')}`;
}

interface StatusServer {
  id: string;
  health: string;
  outstanding: number;
  untracked: number;
  usableCapacity: number;
}

interface Rec {
  name: string;
  pub: string;
  internal: string;
  proc: Proc;
}

/** Opens a plain client on the test's Redis; a clear failure when it is not there. */
async function redisClient(): Promise<Redis> {
  const redis = new Redis(REDIS_DB_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause = err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(
      `Redis unreachable at ${REDIS_DB_URL}: ${(cause ?? (err as Error)).message} — these tests need a Redis ` +
        '(start one, or point REDIS_URL at one); they fail rather than skip (CONTRACT §1)',
    );
  }
  return redis;
}

async function status(rec: Rec): Promise<StatusServer[]> {
  const res = await fetch(`${rec.internal}/status`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { servers: StatusServer[] }).servers;
}

/** Slots the reception believes free (its mirror of the store, refreshed every monitor interval). */
async function freeAt(rec: Rec): Promise<number> {
  return (await status(rec))
    .filter((s) => s.health === 'up')
    .reduce((n, s) => n + Math.max(0, s.usableCapacity - s.outstanding - s.untracked), 0);
}

async function outstandingAt(rec: Rec): Promise<number> {
  return (await status(rec)).reduce((n, s) => n + s.outstanding, 0);
}

async function getOrder(rec: Rec, orderId: string): Promise<{ status: number; json: ApiJson }> {
  const res = await fetch(`${rec.pub}/api/orders/${orderId}`);
  return { status: res.status, json: (await res.json()) as ApiJson };
}

async function queuePosition(rec: Rec, token: string): Promise<number> {
  const res = await fetch(`${rec.pub}/api/queue/${encodeURIComponent(token)}`);
  assert.equal(res.status, 200, `queue status of a token at reception ${rec.name}`);
  return ((await res.json()) as ApiJson).position;
}

/** Retries held open at this reception now. */
async function heldAt(rec: Rec): Promise<number> {
  const text = await (await fetch(`${rec.internal}/metrics`)).text();
  return Number(/^rushgate_reception_held_open_requests (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

/** A retry with its queue token, held open (`Prefer: wait=25`); returns once `rec` holds it. */
async function heldRetry(rec: Rec, token: string): Promise<{ answer: ReturnType<typeof postOrder> }> {
  const before = await heldAt(rec);
  const answer = postOrder(rec.pub, { item: ITEM, queueToken: token }, { prefer: 'wait=25' });
  await waitUntil(
    async () => (await heldAt(rec)) > before,
    20_000,
    `reception ${rec.name} to hold the retry open`,
  );
  return { answer };
}

test('the store URL’s ?prefix= names the key prefix and is not passed on to the Redis client', () => {
  assert.deepEqual(splitPrefix('redis://h:6379/2?prefix=shop:'), {
    url: 'redis://h:6379/2',
    prefix: 'shop:',
  });
  assert.deepEqual(splitPrefix('redis://h:6379/2?family=6&prefix=a%3Ab:'), {
    url: 'redis://h:6379/2?family=6',
    prefix: 'a:b:',
  });
  assert.deepEqual(splitPrefix('redis://h:6379/2'), { url: 'redis://h:6379/2', prefix: undefined });
  assert.throws(() => splitPrefix('redis://h:6379/2?prefix='), /prefix must be/);
});

describe('several receptions sharing one Redis', { timeout: 120_000 }, () => {
  let redis: Redis;
  let d: TestDeployment;
  let r1: Rec;
  let r2: Rec;
  let token: string;
  const content: Proc[] = [];

  const revoke = async (rec: Rec, orderId: string) => {
    const res = await fetch(`${rec.internal}/orders/${orderId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, `revoking ${orderId} at reception ${rec.name}`);
    return (await res.json()) as { revokedTickets: number; notified: string[]; pending: string[] };
  };

  const download = async (url: string) => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), sha(BYTES));
  };

  const fulfilledAt = (rec: Rec, orderId: string) =>
    waitUntil(
      async () => (await getOrder(rec, orderId)).json.status === 'fulfilled',
      20_000,
      `order ${orderId} fulfilled as seen by reception ${rec.name}`,
    );

  const logs = () =>
    [r1, r2]
      .filter(Boolean)
      .map((r) => `--- reception ${r.name}\n${r.proc.output()}`)
      .concat(content.map((p, i) => `--- content ${SERVERS[i]}\n${p.output()}`))
      .join('\n');

  before(async () => {
    redis = await redisClient();
    d = await makeDeployment({
      servers: SERVERS.length,
      server: () => ({ capacity: 1 }),
      reception: {
        store: STORE_URL,
        rateLimit: null,
        // Many orders from one address: this test is not about fair shares.
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 3 },
        // Generous, so that no ticket lapses and no hold runs out between the test's steps.
        tickets: { claimSeconds: 120, claimSecondsWhileWaiting: 120 },
        queue: { holdSeconds: 60, maxRetryAfterSeconds: 30, abandonSeconds: 300 },
        // CONTRACT §7: no item here needs a grant, but one sent is checked and its purchase recorded.
        grants: { required: ['/paid/**'], issuers: [{ iss: GRANT_ISS, secret: GRANT_SECRET }] },
      },
    });
    d.writeItem(ITEM, BYTES);
    token = d.config.secrets.internalToken;

    // The second reception's file: the first one with its own three addresses, nothing else.
    // The second reception's file: the first one with its own addresses, on port 0. It starts
    // first and reports the ports it got in its ready file; content server c is then told to
    // report to it.
    const second = parse(readFileSync(d.configPath, 'utf8')) as { reception: Record<string, unknown> };
    second.reception.listen = '127.0.0.1:0';
    second.reception.internalListen = '127.0.0.1:0';
    second.reception.publicUrl = 'http://127.0.0.1:0';
    const config2 = path.join(d.dir, 'deployment-2.yaml');
    writeFileSync(config2, stringify(second));
    const ready2 = path.join(d.dir, 'reception-2.ready.json');
    const proc2 = startRushgate(['reception', '--config', config2, '--ready-file', ready2]);
    const bound2 = (await readReadyFile(ready2, 60_000)).reception!;
    second.reception.internalUrl = bound2.internal;
    const forC = path.join(d.dir, 'deployment-c.yaml');
    writeFileSync(forC, stringify(second));

    // Content servers a and b report transfer events to reception 1, c to reception 2: an event
    // reported to either must count for both.
    for (const id of SERVERS) {
      const file = id === REPORTS_TO_2 ? forC : d.configPath;
      content.push(startRushgate(['content', '--config', file, '--id', id]));
    }
    r1 = {
      name: '1',
      pub: d.config.reception.publicUrl,
      internal: d.config.reception.internalUrl,
      proc: startRushgate(['reception', '--config', d.configPath]),
    };
    r2 = { name: '2', pub: bound2.public, internal: bound2.internal, proc: proc2 };
    try {
      for (const rec of [r1, r2]) {
        await waitForHttp(`${rec.pub}/healthz`, { proc: rec.proc, timeoutMs: 60_000 });
        await waitUntil(
          async () => {
            const s = await status(rec);
            return SERVERS.every((id) => {
              const x = s.find((y) => y.id === id);
              return x?.health === 'up' && x.usableCapacity === 1;
            });
          },
          60_000,
          `reception ${rec.name} to see every content server up`,
        );
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs()}`);
    }
  });

  after(async () => {
    await Promise.all([r1?.proc.kill(), r2?.proc.kill(), ...content.map((p) => p.kill())]);
    if (redis) {
      await deleteKeys(redis, PREFIX);
      redis.disconnect();
    }
    d?.cleanup();
  });

  it('reads, re-tickets and revokes at reception 2 an order made at reception 1', async () => {
    const made = await postOrder(r1.pub, { item: ITEM });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const orderId = made.json.orderId;
    const first = made.json.ticket;

    const read = await getOrder(r2, orderId);
    assert.equal(read.status, 200);
    assert.equal(read.json.orderId, orderId);
    assert.equal(read.json.item, ITEM);
    assert.equal(read.json.status, 'ticketed');
    assert.deepEqual(
      read.json.tickets.map((t) => t.id),
      [first.id],
    );

    // While the first ticket is live, reception 2 knows it too: no second ticket (CONTRACT §3).
    const early = await fetch(`${r2.pub}/api/orders/${orderId}/tickets`, { method: 'POST' });
    assert.equal(early.status, 409);
    assert.equal(((await early.json()) as ApiJson).error.code, 'ticket_live');
    // Download it whole: a fulfilled order may still ask for a fresh ticket (its end was lost).
    const whole = await fetch(first.url);
    assert.equal(whole.status, 200);
    await whole.arrayBuffer();
    await waitUntil(
      async () => (await getOrder(r2, orderId)).json.tickets[0]?.status === 'fulfilled',
      20_000,
      'reception 2 to see the first ticket fulfilled',
    );

    const fresh = await fetch(`${r2.pub}/api/orders/${orderId}/tickets`, { method: 'POST' });
    assert.equal(fresh.status, 201);
    const second = ((await fresh.json()) as ApiJson).ticket;
    // Reception 2 noticed the content server; the fresh ticket works there.
    const probe = await fetch(second.url, { headers: { range: 'bytes=0-0' } });
    assert.equal(probe.status, 206);
    await probe.arrayBuffer();

    const seenAt1 = (await getOrder(r1, orderId)).json.tickets;
    assert.deepEqual(
      seenAt1.map((t) => t.id),
      [first.id, second.id],
    );
    assert.equal(seenAt1[0]?.status, 'fulfilled', 'the first ticket keeps its end');
    assert.ok(['issued', 'downloading'].includes(seenAt1[1]?.status ?? ''), seenAt1[1]?.status);

    const revoked = await revoke(r2, orderId);
    assert.deepEqual(revoked.notified, SERVERS);
    assert.deepEqual(revoked.pending, []);
    for (const url of [second.url, first.url]) {
      const res = await fetch(url);
      assert.equal(res.status, 410, `a revoked ticket is refused: ${url}`);
      assert.equal(((await res.json()) as ApiJson).error.code, 'revoked');
    }
    const after1 = await getOrder(r1, orderId);
    assert.equal(after1.json.tickets.at(-1)?.status, 'revoked');
    const again = await fetch(`${r1.pub}/api/orders/${orderId}/tickets`, { method: 'POST' });
    assert.equal(again.status, 409, 'reception 1 knows the order was revoked at 2');
    await again.arrayBuffer();

    await waitUntil(
      async () => (await outstandingAt(r1)) === 0 && (await outstandingAt(r2)) === 0,
      20_000,
      'both receptions to see no outstanding ticket',
    );
  });

  it('a refund at reception 2 revokes the order made at reception 1 and refuses its grant at both', async () => {
    const grant = hsGrant(`purchase-${randomUUID()}`);
    const made = await postOrder(r1.pub, { item: ITEM, grant });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const again = await postOrder(r2.pub, { item: ITEM, grant });
    assert.equal(again.status, 200, 'the same grant and item is the same order at the other reception');
    assert.equal(again.json.orderId, made.json.orderId);
    const sub = JSON.parse(Buffer.from(grant.split('.')[1]!, 'base64url').toString()).sub as string;
    const res = await fetch(`${r2.internal}/grants/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ iss: GRANT_ISS, sub }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { orders: string[]; notified: string[] };
    assert.deepEqual(body.orders, [made.json.orderId]);
    assert.deepEqual(body.notified, SERVERS);
    const ticket = await fetch(made.json.ticket.url);
    assert.equal(ticket.status, 410);
    await ticket.arrayBuffer();
    for (const rec of [r1, r2]) {
      const refused = await postOrder(rec.pub, { item: ITEM, grant });
      assert.equal(refused.status, 403, `reception ${rec.name}`);
      assert.equal(refused.json.error.code, 'bad_grant');
    }
    await waitUntil(
      async () => (await outstandingAt(r1)) === 0 && (await outstandingAt(r2)) === 0,
      20_000,
      'both receptions to see no outstanding ticket',
    );
  });

  it('keeps one waiting line and one set of slots across both receptions', async () => {
    // Fill the three slots from both sides; the store refuses a server the other side just filled.
    const fills: ApiJson[] = [];
    for (const rec of [r1, r2, r1]) {
      const r = await postOrder(rec.pub, { item: ITEM });
      assert.equal(r.status, 201, `fill at reception ${rec.name}: ${JSON.stringify(r.json)}`);
      fills.push(r.json);
    }
    assert.deepEqual(fills.map((f) => f.ticket.server).sort(), SERVERS, 'one ticket per server');
    const on = (server: string) => fills.find((f) => f.ticket.server === server)!;
    await waitUntil(
      async () => (await freeAt(r1)) === 0 && (await freeAt(r2)) === 0,
      20_000,
      'both receptions to see every slot taken',
    );

    // W1 queues at reception 1, W2 at reception 2: one line, in arrival order.
    const w1 = await postOrder(r1.pub, { item: ITEM });
    assert.equal(w1.status, 503);
    assert.equal(w1.json.status, 'busy');
    assert.equal(w1.json.position, 1);
    const w2 = await postOrder(r2.pub, { item: ITEM });
    assert.equal(w2.status, 503);
    assert.equal(w2.json.position, 2, 'reception 2 counts the client that queued at 1');
    assert.equal(await queuePosition(r2, w1.json.queueToken), 1);
    assert.equal(await queuePosition(r1, w2.json.queueToken), 2);
    assert.equal(await redis.hlen(`${PREFIX}linedata`), 2, 'the line lives under the store URL’s prefix');

    // A newcomer at 2 joins behind both.
    const newcomer = await postOrder(r2.pub, { item: ITEM });
    assert.equal(newcomer.status, 503, 'no slot is free');
    assert.equal(newcomer.json.position, 3);

    // Each waiter comes back as `rushgate get` does, holding its retry open before its slot frees
    // (a waiter that comes back late past its Retry-After is passed over, and how long this
    // test's own steps take is not what it is about).
    // W1 holds its retry open at reception 2 with the token it got at 1; the download on a is
    // reported to reception 1, and reception 2 admits W1 into the slot.
    const w1in = await heldRetry(r2, w1.json.queueToken);
    await download(on('a').ticket.url);
    const w1got = await w1in.answer;
    assert.equal(w1got.status, 201, JSON.stringify(w1got.json));
    assert.equal(w1got.json.ticket.server, 'a');
    await fulfilledAt(r2, on('a').orderId);
    assert.equal(await queuePosition(r1, w2.json.queueToken), 1);
    assert.equal(await queuePosition(r1, newcomer.json.queueToken), 2);
    const w2early = await postOrder(r2.pub, { item: ITEM, queueToken: w2.json.queueToken });
    assert.equal(w2early.status, 503, 'W1 took the slot: W2 waits on');
    assert.equal(w2early.json.position, 1);
    assert.equal(w2early.json.queueToken, w2.json.queueToken);

    // The download on b is reported to reception 1; W2, holding its retry open at 2, is admitted
    // there — before the newcomer, who holds its own retry open at reception 1.
    const w2in = await heldRetry(r2, w2.json.queueToken);
    const newcomerIn = await heldRetry(r1, newcomer.json.queueToken);
    let newcomerAnswered = false;
    void newcomerIn.answer.then(() => {
      newcomerAnswered = true;
    });
    await download(on('b').ticket.url);
    const w2got = await w2in.answer;
    assert.equal(w2got.status, 201, JSON.stringify(w2got.json));
    assert.equal(w2got.json.ticket.server, 'b');
    await fulfilledAt(r1, on('b').orderId);
    assert.equal(newcomerAnswered, false, 'the newcomer is behind W2 and no other slot is free');

    // The other way round: the download on c is reported to reception 2 only, and reception 1
    // admits the newcomer (who queued at 2) into the slot it freed.
    await download(on(REPORTS_TO_2).ticket.url);
    const newcomerGot = await newcomerIn.answer;
    assert.equal(newcomerGot.status, 201, JSON.stringify(newcomerGot.json));
    assert.equal(newcomerGot.json.ticket.server, REPORTS_TO_2);
    assert.equal(await redis.hlen(`${PREFIX}linedata`), 0, 'everybody in line was admitted');
    const w1inJson = w1got.json;
    const w2inJson = w2got.json;
    const newcomerInJson = newcomerGot.json;

    // Clear the stage for the burst: revoke the three tickets just issued, from either side.
    await revoke(r1, w1inJson.orderId);
    await revoke(r2, w2inJson.orderId);
    await revoke(r1, newcomerInJson.orderId);
  });

  it('answers a retry held open at reception 2 when a download reported to reception 1 frees a slot', async () => {
    await waitUntil(
      async () => (await freeAt(r1)) === N && (await freeAt(r2)) === N,
      20_000,
      'both receptions to see every slot free',
    );
    const fills: ApiJson[] = [];
    for (const rec of [r1, r2, r1]) {
      const r = await postOrder(rec.pub, { item: ITEM });
      assert.equal(r.status, 201, `fill at reception ${rec.name}: ${JSON.stringify(r.json)}`);
      fills.push(r.json);
    }
    const on = (server: string) => fills.find((f) => f.ticket.server === server)!;
    await waitUntil(
      async () => (await freeAt(r1)) === 0 && (await freeAt(r2)) === 0,
      20_000,
      'both receptions to see every slot taken',
    );
    const w = await postOrder(r1.pub, { item: ITEM });
    assert.equal(w.status, 503);
    let answered = false;
    const held = postOrder(r2.pub, { item: ITEM, queueToken: w.json.queueToken }, { prefer: 'wait=25' }).then(
      (r) => {
        answered = true;
        return r;
      },
    );
    await waitUntil(
      async () =>
        /rushgate_reception_held_open_requests 1/.test(await (await fetch(`${r2.internal}/metrics`)).text()),
      20_000,
      'reception 2 to hold the retry open',
    );
    assert.equal(answered, false, 'no slot is free: the retry stays open');

    // Reported to reception 1 only; the client holding its retry open at 2 gets the slot.
    await download(on('a').ticket.url);
    const got = await held;
    assert.equal(got.status, 201, JSON.stringify(got.json));
    assert.equal(got.json.ticket.server, 'a');
    assert.equal(
      got.headers.get('preference-applied'),
      null,
      'answered by admission, not by its wait running out',
    );

    for (const orderId of [got.json.orderId, on('b').orderId, on(REPORTS_TO_2).orderId])
      await revoke(r1, orderId);
  });

  it(`gives exactly N tickets to a burst of 4×N orders split across both receptions`, async () => {
    await waitUntil(
      async () => (await freeAt(r1)) === N && (await freeAt(r2)) === N,
      20_000,
      'both receptions to see every slot free',
    );
    const answers = await Promise.all(
      Array.from({ length: 4 * N }, (_, i) => postOrder((i % 2 === 0 ? r1 : r2).pub, { item: ITEM })),
    );
    const ticketed = answers.filter((a) => a.status === 201);
    const busy = answers.filter((a) => a.status === 503);
    assert.equal(ticketed.length, N, `statuses: ${answers.map((a) => a.status).join(',')}`);
    assert.equal(busy.length, 3 * N);
    assert.deepEqual(ticketed.map((t) => t.json.ticket.server).sort(), SERVERS);
    for (const b of busy) {
      assert.equal(b.json.status, 'busy');
      assert.ok(Number.isInteger(b.json.position) && b.json.position >= 1, `position ${b.json.position}`);
      assert.ok(Number(b.headers.get('retry-after')) >= 1);
      assert.equal(typeof b.json.queueToken, 'string');
    }
    // The line is one: asked at either reception, the 3N waiters hold the places 1…3N.
    const positions = await Promise.all(
      busy.map((b, i) => queuePosition(i % 2 === 0 ? r2 : r1, b.json.queueToken)),
    );
    assert.deepEqual(
      positions.sort((x, y) => x - y),
      Array.from({ length: 3 * N }, (_, i) => i + 1),
    );
    await waitUntil(
      async () => (await outstandingAt(r1)) === N && (await outstandingAt(r2)) === N,
      20_000,
      'both receptions to count N outstanding tickets',
    );
  });

  it('fails with a clear message when Redis is unreachable', async () => {
    // A port this test holds and on which every connection is reset: no Redis answers there.
    const dead = await holdDeadPort();
    const port = dead.port;
    const broken = parse(readFileSync(d.configPath, 'utf8')) as { reception: Record<string, unknown> };
    broken.reception.listen = '127.0.0.1:0';
    broken.reception.internalListen = '127.0.0.1:0';
    broken.reception.publicUrl = 'http://127.0.0.1:0';
    broken.reception.store = `redis://127.0.0.1:${port}/0?prefix=${PREFIX}`;
    const file = path.join(d.dir, 'deployment-broken.yaml');
    writeFileSync(file, stringify(broken));
    const run = await runRushgate(['reception', '--config', file], { timeoutMs: 30_000 });
    await dead.close();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`Redis unreachable at redis://127\\.0\\.0\\.1:${port}/0`));
  });
});
