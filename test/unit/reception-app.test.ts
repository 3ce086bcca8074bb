/**
 * The reception end to end in one process: the real order desk, line, allocator, issuer and HTTP
 * apps driven with `inject()`, the memory store, a fake clock, and a fake internal network whose
 * content servers report what each test says. Exact and fast; the real-process tests are in
 * test/e2e/reception-*.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { RushgateError } from '../../src/errors.js';
import type { LoadReport, Notice, Revocation } from '../../src/protocol/internal.js';
import { buildReception, type Reception } from '../../src/reception/app.js';
import type { InternalClient } from '../../src/reception/internal-client.js';
import type { Mailer } from '../../src/reception/mailer.js';
import { statusViewSchema } from '../../src/reception/status-view.js';
import { createMemoryStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';

const SHA = 'ab'.repeat(32);

/** The fields of the reception's JSON answers these tests read. */
interface ApiJson {
  orderId: string;
  status: string;
  item: string;
  createdAt: string;
  ticket: { id: string; url: string; server: string; notBefore: string; expiresAt: string };
  tickets: { id: string; server: string; status: string }[];
  position: number;
  estimatedWaitSeconds: number;
  retryAfterSeconds: number;
  queueToken: string;
  error: { code: string; message: string };
  revokedTickets: number;
}

interface FakeServer {
  up: boolean;
  draining: boolean;
  failNotices: boolean;
  items: Record<string, number>;
  activeTickets: string[];
  serviceTimesMs: number[];
  notices: Notice[];
  revocations: Revocation[];
  /** While set, notices wait for it (a slow internal network); `noticeWaiting` resolves on the first. */
  noticeGate?: Promise<void>;
  noticeWaiting?: () => void;
}

function fakeNetwork(ids: string[]) {
  const servers = new Map<string, FakeServer>(
    ids.map((id) => [
      id,
      {
        up: true,
        draining: false,
        failNotices: false,
        items: { '/x.bin': 100, '/y.bin': 5 },
        activeTickets: [],
        serviceTimesMs: [],
        notices: [],
        revocations: [],
      },
    ]),
  );
  const client: InternalClient = {
    async load(serverId, catalogSince): Promise<LoadReport> {
      const s = servers.get(serverId)!;
      if (!s.up) throw new Error('ECONNREFUSED');
      const version = JSON.stringify(s.items);
      return {
        serverId,
        at: Date.now(),
        active: s.activeTickets.length,
        activeTickets: s.activeTickets,
        untrackedActive: 0,
        capacity: 1,
        rssBytes: 1,
        memoryLimitBytes: null,
        bytesPerSecond: 0,
        serviceTimesMs: s.serviceTimesMs,
        draining: s.draining,
        catalogVersion: version,
        ...(catalogSince === version
          ? {}
          : { catalog: Object.entries(s.items).map(([path, size]) => ({ path, size, sha256: SHA })) }),
      };
    },
    async notices(serverId, notices) {
      const s = servers.get(serverId)!;
      if (!s.up || s.failNotices) throw new Error('notice refused');
      if (s.noticeGate) {
        s.noticeWaiting?.();
        await s.noticeGate;
      }
      s.notices.push(...notices);
    },
    async revocations(serverId, revocations) {
      const s = servers.get(serverId)!;
      if (!s.up) throw new Error('ECONNREFUSED');
      s.revocations.push(...revocations);
    },
    async close() {},
  };
  return { servers, client };
}

interface Harness {
  faulty: { down: boolean };
  reception: Reception;
  net: ReturnType<typeof fakeNetwork>;
  clock: { t: number; now(): number };
  token: string;
  mails: { to: string; url: string }[];
  order(
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: ApiJson; headers: Record<string, unknown> }>;
  event(server: string, type: 'started' | 'fulfilled' | 'abandoned', jti: string, oid: string): Promise<void>;
}

let open: Harness[] = [];
afterEach(async () => {
  for (const h of open) await h.reception.stop();
  open = [];
});

async function harness(
  opts: {
    servers?: { id: string; capacity?: number; distance?: number }[];
    reception?: Record<string, unknown>;
  } = {},
): Promise<Harness> {
  const servers = opts.servers ?? [
    { id: 'a', capacity: 2 },
    { id: 'b', capacity: 2 },
  ];
  const internalToken = randomBytes(18).toString('base64url');
  const config = parseConfig({
    secrets: { ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }], internalToken },
    reception: {
      listen: '127.0.0.1:0',
      internalListen: '127.0.0.1:0',
      publicUrl: 'http://rushgate.test',
      store: 'memory:',
      rateLimit: null,
      ...opts.reception,
    },
    contentServers: servers.map((s, i) => ({
      id: s.id,
      publicUrl: `http://content-${s.id}.test`,
      internalUrl: `http://127.0.0.1:${9100 + i}`,
      listen: `127.0.0.1:${8100 + i}`,
      internalListen: `127.0.0.1:${9100 + i}`,
      capacity: s.capacity ?? 2,
      ...(s.distance !== undefined ? { distance: s.distance } : {}),
    })),
  });
  const net = fakeNetwork(servers.map((s) => s.id));
  const clock = {
    t: 1_700_000_000_000,
    now() {
      return this.t;
    },
  };
  const mails: { to: string; url: string }[] = [];
  const mailer: Mailer = {
    stats: { sent: 0, failed: 0 },
    async sendTicketLink(m) {
      mails.push({ to: m.to, url: m.url });
    },
    close() {},
  };
  const inner = createMemoryStore();
  const faulty = { down: false };
  // A store whose every call fails as an unreachable backend's does while `faulty.down`.
  const store = Object.fromEntries(
    Object.entries(inner).map(([k, fn]) => [
      k,
      async (...a: unknown[]) => {
        if (faulty.down && k !== 'close') throw new RushgateError('store_unavailable');
        return (fn as (...x: unknown[]) => unknown)(...a);
      },
    ]),
  ) as unknown as typeof inner;
  const reception = buildReception({
    config,
    store,
    logger: silentLogger,
    mailer,
    clock,
    random: () => 0.5,
    client: net.client,
  });
  let n = 0;
  const h: Harness = {
    faulty,
    reception,
    net,
    clock,
    token: internalToken,
    mails,
    async order(body, headers = {}) {
      const res = await reception.publicApp.inject({
        method: 'POST',
        url: '/api/orders',
        headers: { 'content-type': 'application/json', ...headers },
        payload: JSON.stringify(body),
      });
      return { status: res.statusCode, json: res.json(), headers: res.headers };
    },
    async event(server, type, jti, oid) {
      const res = await reception.internalApp.inject({
        method: 'POST',
        url: '/events',
        headers: { authorization: `Bearer ${internalToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify({
          serverId: server,
          events: [
            {
              id: `e${++n}`,
              type,
              jti,
              oid,
              path: '/x.bin',
              at: clock.t,
              delivered: type === 'fulfilled' ? 100 : 0,
              size: 100,
            },
          ],
        }),
      });
      assert.equal(res.statusCode, 200, res.body);
    },
  };
  open.push(h);
  return h;
}

describe('reception app (inject, fake content servers)', () => {
  it('answers 503 until a load report arrives, then takes orders', async () => {
    const h = await harness();
    const health = await h.reception.publicApp.inject('/healthz');
    assert.equal(health.statusCode, 503);
    assert.equal(health.json().error.code, 'unavailable');
    assert.equal((await h.order({ item: '/x.bin' })).status, 503);
    await h.reception.monitor.pollAll();
    assert.equal((await h.reception.publicApp.inject('/healthz')).statusCode, 200);
  });

  it('issues a ticket: 201, ISO times, no-store, the notice acknowledged first', async () => {
    const h = await harness({
      reception: { mail: { smtp: 'smtp://127.0.0.1:1', from: 'shop@example.com' } },
    });
    await h.reception.monitor.pollAll();
    const r = await h.order({ item: '/x.bin', email: 'buyer@example.com' });
    assert.equal(r.status, 201);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.json.status, 'ticketed');
    assert.match(r.json.orderId, /^[A-Za-z0-9_-]{22}$/);
    const t = r.json.ticket;
    assert.match(t.url, new RegExp(`^http://content-${t.server}\\.test/t/[A-Za-z0-9_.-]+/x\\.bin$`));
    assert.equal(t.notBefore, new Date(h.clock.t - (h.clock.t % 1000)).toISOString());
    assert.equal(Date.parse(t.expiresAt) - Date.parse(t.notBefore), 600_000);
    const notices = h.net.servers.get(t.server)!.notices;
    assert.deepEqual(
      notices.map((n) => [n.jti, n.oid, n.path]),
      [[t.id, r.json.orderId, '/x.bin']],
    );
    assert.deepEqual(h.mails, [{ to: 'buyer@example.com', url: t.url }]);
    const got = await h.reception.publicApp.inject(`/api/orders/${r.json.orderId}`);
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().item, '/x.bin');
    assert.equal(got.json().tickets[0].status, 'issued');
    assert.equal(got.json().createdAt, new Date(h.clock.t).toISOString());
  });

  it('sends a browser 303 to the ticket URL, and HEAD takes no slot', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    const head = await h.reception.publicApp.inject({ method: 'HEAD', url: '/x.bin' });
    assert.equal(head.statusCode, 200);
    assert.equal(h.reception.ledger.totalOutstanding(), 0);
    const res = await h.reception.publicApp.inject({ url: '/x.bin', headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 303);
    assert.match(String(res.headers.location), /^http:\/\/content-[ab]\.test\/t\/.+\/x\.bin$/);
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('refuses bad input with the contract’s codes, and never reaches the store', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    const app = h.reception.publicApp;
    const code = async (
      p: Promise<{ statusCode: number; json(): ApiJson; headers: Record<string, unknown> }>,
    ) => {
      const r = await p;
      assert.equal(r.headers['cache-control'], 'no-store');
      return [r.statusCode, r.json().error.code];
    };
    assert.deepEqual(await code(app.inject('/nope.bin')), [404, 'unknown_item']);
    // inject() resolves "/../" and "/%2e%2e/" itself; test/e2e sends those over a raw socket.
    for (const bad of ['/x%00.bin', '/a%5cx.bin', '/a%2fx.bin', '/%zz']) {
      const [status] = await code(app.inject(bad));
      assert.ok(status === 400 || status === 404, `${bad}: ${status}`);
    }
    assert.deepEqual(await code(app.inject('/api/nothing')), [404, 'not_found']);
    const post = (payload: string, type?: string) =>
      app.inject({
        method: 'POST',
        url: '/api/orders',
        payload,
        headers: type ? { 'content-type': type } : {},
      });
    assert.deepEqual(await code(post('{"item":"/x.bin"}', 'text/plain')), [415, 'unsupported_media_type']);
    assert.deepEqual(await code(post('{"item":"/x.bin"}')), [415, 'unsupported_media_type']);
    assert.deepEqual(await code(post('{"item":', 'application/json')), [400, 'bad_request']);
    assert.deepEqual(await code(post('[1]', 'application/json')), [400, 'bad_request']);
    assert.deepEqual(await code(post('{"item":"/x.bin","email":"nope"}', 'application/json')), [
      400,
      'bad_request',
    ]);
    assert.deepEqual(await code(post('{"item":"x.bin"}', 'application/json')), [400, 'invalid_item_path']);
    assert.deepEqual(await code(post('{"item":"/../etc/passwd"}', 'application/json')), [
      400,
      'invalid_item_path',
    ]);
    assert.deepEqual(
      await code(post(JSON.stringify({ item: '/x.bin', pad: 'x'.repeat(17_000) }), 'application/json')),
      [413, 'body_too_large'],
    );
    assert.equal(h.reception.ledger.totalOutstanding(), 0);
    // The rate limit: burst 2, then 429 with Retry-After.
    const limited = await harness({ reception: { rateLimit: { perSecond: 1, burst: 2 } } });
    await limited.reception.monitor.pollAll();
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await limited.reception.publicApp.inject('/api/orders/unknown')).statusCode);
    assert.deepEqual(statuses, [404, 404, 429]);
    const r = await limited.reception.publicApp.inject('/api/orders/unknown');
    assert.equal(r.json().error.code, 'rate_limited');
    assert.equal(r.headers['retry-after'], '1');
  });

  it('answers the same order for the same Idempotency-Key, 409 for another item', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    const first = await h.order({ item: '/x.bin' }, { 'idempotency-key': 'k-1' });
    assert.equal(first.status, 201);
    const again = await h.order({ item: '/x.bin' }, { 'idempotency-key': 'k-1' });
    assert.equal(again.status, 200);
    assert.equal(again.json.orderId, first.json.orderId);
    assert.equal(again.json.ticket.id, first.json.ticket.id);
    const other = await h.order({ item: '/y.bin' }, { 'idempotency-key': 'k-1' });
    assert.equal(other.status, 409);
    assert.equal(other.json.error.code, 'idempotency_conflict');
    assert.equal(h.reception.ledger.totalOutstanding(), 1);
  });

  it('breaks load ties by the configured distance', async () => {
    const h = await harness({
      servers: [
        { id: 'a', capacity: 10, distance: 3 },
        { id: 'b', capacity: 10, distance: 1 },
        { id: 'c', capacity: 10, distance: 2 },
      ],
      reception: { allocation: { tieTolerance: 0.25 } },
    });
    await h.reception.monitor.pollAll();
    const servers = [];
    for (let i = 0; i < 6; i++) servers.push((await h.order({ item: '/x.bin' })).json.ticket.server);
    // b (nearest) until its load (0.3) is above the least (0) + 0.25; then c, the nearer of a and c.
    assert.deepEqual(servers, ['b', 'b', 'b', 'c', 'c', 'c']);
  });

  it('is busy when every server is full: 503, Retry-After, queue token, cookie; HTML for browsers', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 1 }] });
    await h.reception.monitor.pollAll();
    assert.equal((await h.order({ item: '/x.bin' })).status, 201);
    const busy = await h.order({ item: '/x.bin' });
    assert.equal(busy.status, 503);
    assert.equal(busy.json.status, 'busy');
    assert.equal(busy.json.position, 1);
    assert.ok(busy.json.estimatedWaitSeconds >= 1);
    assert.equal(String(busy.headers['retry-after']), String(busy.json.retryAfterSeconds));
    assert.ok(busy.json.retryAfterSeconds >= 1 && busy.json.retryAfterSeconds <= 14);
    assert.match(
      String(busy.headers['set-cookie']),
      /^rushgate_queue=q1\.[^;]+; Path=\/; HttpOnly; SameSite=Lax/,
    );
    assert.equal(busy.headers['cache-control'], 'no-store');
    const page = await h.reception.publicApp.inject({
      url: '/x.bin',
      headers: { accept: 'text/html,*/*;q=0.8' },
    });
    assert.equal(page.statusCode, 503);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /http-equiv="refresh"/);
    const status = await h.reception.publicApp.inject(`/api/queue/${busy.json.queueToken}`);
    assert.equal(status.statusCode, 200);
    assert.equal(status.json().position, 1);
    assert.ok(status.json().estimatedWaitSeconds >= 1);
    assert.equal((await h.reception.publicApp.inject('/api/queue/q1.bogus.token')).statusCode, 404);
  });

  it('tells the fairness story: the freed slot is held for the first waiter, not for a newcomer', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 1 }] });
    await h.reception.monitor.pollAll();
    const holder = await h.order({ item: '/x.bin' });
    const w1 = await h.order({ item: '/x.bin' });
    const w2 = await h.order({ item: '/x.bin' });
    assert.deepEqual([w1.json.position, w2.json.position], [1, 2]);
    await h.event('a', 'started', holder.json.ticket.id, holder.json.orderId);
    await h.event('a', 'fulfilled', holder.json.ticket.id, holder.json.orderId);
    const fulfilled = await h.reception.publicApp.inject(`/api/orders/${holder.json.orderId}`);
    assert.equal(fulfilled.json().status, 'fulfilled');
    h.clock.t += 1000;
    const newcomer = await h.order({ item: '/x.bin' });
    assert.equal(newcomer.status, 503);
    assert.equal(newcomer.json.position, 3);
    const w2again = await h.order({ item: '/x.bin' }, { 'rushgate-queue-token': w2.json.queueToken });
    assert.equal(w2again.status, 503);
    assert.equal(w2again.json.position, 2);
    assert.equal(w2again.json.queueToken, w2.json.queueToken);
    const w1again = await h.order({ item: '/x.bin', queueToken: w1.json.queueToken });
    assert.equal(w1again.status, 201);
    const metrics = await h.reception.internalApp.inject('/metrics');
    assert.match(metrics.body, /rushgate_reception_admissions_total 1/);
    assert.match(metrics.body, /rushgate_reception_wait_calibration_samples 1/);
  });

  it('a fresh ticket after an unused one comes before the line, once per order (CONTRACT §3)', async () => {
    const h = await harness({
      servers: [{ id: 'a', capacity: 1 }],
      reception: { tickets: { claimSeconds: 600, claimSecondsWhileWaiting: 1 } },
    });
    await h.reception.monitor.pollAll();
    const fresh = (orderId: string) =>
      h.reception.publicApp.inject({ method: 'POST', url: `/api/orders/${orderId}/tickets` });
    const slow = await h.order({ item: '/x.bin' });
    assert.equal(slow.status, 201);
    const waiter = await h.order({ item: '/x.bin' });
    assert.equal(waiter.status, 503);
    const token = { 'rushgate-queue-token': waiter.json.queueToken };
    // Someone waits: the unused ticket lapses after claimSecondsWhileWaiting, and its slot is
    // held for the waiter.
    h.clock.t += 1500;
    await h.reception.housekeeping();
    const first = await fresh(slow.json.orderId);
    assert.equal(first.statusCode, 201, 'the admitted order takes the held slot: it was served once');
    const still = await h.order({ item: '/x.bin' }, token);
    assert.equal(still.status, 503);
    assert.equal(still.json.position, 1, 'the waiter is next');
    // The second ticket goes unused too: now the order is behind the line like a newcomer.
    h.clock.t += 1500;
    await h.reception.housekeeping();
    const order = await h.reception.publicApp.inject(`/api/orders/${slow.json.orderId}`);
    assert.deepEqual(
      order.json().tickets.map((t: { status: string }) => t.status),
      ['lapsed', 'lapsed'],
    );
    const second = await fresh(slow.json.orderId);
    assert.equal(second.statusCode, 503, `the slot stays held for the waiter: ${second.body}`);
    assert.equal(second.json().queueToken, null);
    const admitted = await h.order({ item: '/x.bin' }, token);
    assert.equal(admitted.status, 201);
  });

  it('a waiter whose notice is on its way is not held a second slot: the next waiter gets the other', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 2 }] });
    await h.reception.monitor.pollAll();
    const holders = [await h.order({ item: '/x.bin' }), await h.order({ item: '/x.bin' })];
    const w1 = await h.order({ item: '/x.bin' });
    const w2 = await h.order({ item: '/x.bin' });
    assert.deepEqual([w1.json.position, w2.json.position], [1, 2]);
    for (const holder of holders) {
      await h.event('a', 'started', holder.json.ticket.id, holder.json.orderId);
      await h.event('a', 'fulfilled', holder.json.ticket.id, holder.json.orderId);
    }
    const a = h.net.servers.get('a')!;
    let release: () => void = () => {};
    a.noticeGate = new Promise<void>((r) => {
      release = r;
    });
    const w1Notified = new Promise<void>((r) => {
      a.noticeWaiting = r;
    });
    const w1again = h.order({ item: '/x.bin', queueToken: w1.json.queueToken });
    await w1Notified;
    // w1 has its slot reserved and its notice in flight; one slot is left, and w2 is next.
    const w2Notified = new Promise<void>((r) => {
      a.noticeWaiting = r;
    });
    const w2again = h.order({ item: '/x.bin', queueToken: w2.json.queueToken });
    // w2 either reaches its own notice (admitted while w1's is in flight) or is answered busy.
    await Promise.race([w2Notified, w2again]);
    release();
    assert.deepEqual([(await w1again).status, (await w2again).status], [201, 201]);
  });

  it('a slot the overdue front leaves over goes to the next waiter due one, not to whoever asks', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 1 }] });
    await h.reception.monitor.pollAll();
    // Each buyer from its own address, as in a rush: one address's share of the line is small.
    const order = async (i: number, token?: string) => {
      const res = await h.reception.publicApp.inject({
        method: 'POST',
        url: '/api/orders',
        remoteAddress: `127.0.1.${i}`,
        headers: { 'content-type': 'application/json', ...(token ? { 'rushgate-queue-token': token } : {}) },
        payload: JSON.stringify({ item: '/x.bin' }),
      });
      return { status: res.statusCode, json: res.json() as ApiJson };
    };
    const holder = await order(0);
    assert.equal(holder.status, 201);
    // 40 waiters join and do not come back when told: more than one free slot's first read of
    // the line's front (36 entries) holds.
    for (let i = 1; i <= 40; i++) assert.equal((await order(i)).status, 503);
    h.clock.t += 60_000; // all 40 are overdue, none abandoned yet
    const w41 = await order(41);
    const w42 = await order(42);
    assert.deepEqual([w41.json.position, w42.json.position], [41, 42]);
    await h.event('a', 'fulfilled', holder.json.ticket.id, holder.json.orderId);
    const behind = await order(42, w42.json.queueToken);
    assert.equal(behind.status, 503, 'the slot is held for w41, the first waiter not overdue');
    const ahead = await order(41, w41.json.queueToken);
    assert.equal(ahead.status, 201);
  });

  it('passes over an absent first waiter after holdSeconds, who keeps its place', async () => {
    const h = await harness({
      servers: [{ id: 'a', capacity: 1 }],
      reception: { queue: { holdSeconds: 5 } },
    });
    await h.reception.monitor.pollAll();
    const holder = await h.order({ item: '/x.bin' });
    const w1 = await h.order({ item: '/x.bin' });
    const w2 = await h.order({ item: '/x.bin' });
    await h.event('a', 'fulfilled', holder.json.ticket.id, holder.json.orderId);
    await h.reception.housekeeping(); // the hold for w1 starts
    h.clock.t += 5_000;
    assert.equal(
      (await h.order({ item: '/x.bin', queueToken: w2.json.queueToken })).status,
      503,
      'still held',
    );
    h.clock.t += 1_500; // hold + grace are over: w1 is passed over
    const w2in = await h.order({ item: '/x.bin', queueToken: w2.json.queueToken });
    assert.equal(w2in.status, 201);
    const w1back = await h.order({ item: '/x.bin', queueToken: w1.json.queueToken });
    assert.equal(w1back.status, 503);
    assert.equal(w1back.json.position, 1, 'kept its place');
  });

  it('drops a waiter not seen for abandonSeconds', async () => {
    const h = await harness({
      servers: [{ id: 'a', capacity: 1 }],
      // The first ticket keeps its slot meanwhile (unused, it would be freed after 5 s otherwise).
      reception: { queue: { abandonSeconds: 10 }, tickets: { claimSecondsWhileWaiting: 30 } },
    });
    await h.reception.monitor.pollAll();
    await h.order({ item: '/x.bin' });
    const w1 = await h.order({ item: '/x.bin' });
    h.clock.t += 11_000;
    await h.reception.housekeeping();
    assert.equal((await h.reception.publicApp.inject(`/api/queue/${w1.json.queueToken}`)).statusCode, 404);
    const newcomer = await h.order({ item: '/x.bin' });
    assert.equal(newcomer.json.position, 1);
  });

  it('frees the slot of a ticket unused for claimSeconds', async () => {
    const h = await harness({
      servers: [{ id: 'a', capacity: 1 }],
      reception: { tickets: { claimSeconds: 5 } },
    });
    await h.reception.monitor.pollAll();
    const first = await h.order({ item: '/x.bin' });
    assert.equal(first.status, 201);
    h.clock.t += 5_000;
    await h.reception.housekeeping();
    const order = await h.reception.publicApp.inject(`/api/orders/${first.json.orderId}`);
    assert.equal(order.json().status, 'lapsed');
    assert.equal((await h.order({ item: '/x.bin' })).status, 201);
  });

  it('a failed notice frees the slot, makes the server suspect and tries the next one', async () => {
    const h = await harness({
      servers: [
        { id: 'a', distance: 1 },
        { id: 'b', distance: 2 },
      ],
    });
    await h.reception.monitor.pollAll();
    h.net.servers.get('a')!.failNotices = true;
    const r = await h.order({ item: '/x.bin' });
    assert.equal(r.status, 201);
    assert.equal(r.json.ticket.server, 'b');
    assert.equal(h.reception.ledger.outstanding('a'), 0);
    assert.equal(h.reception.monitor.server('a')!.health.suspect, true);
    const order = await h.reception.publicApp.inject(`/api/orders/${r.json.orderId}`);
    assert.deepEqual(
      order.json().tickets.map((t: { status: string }) => t.status),
      ['failed', 'issued'],
    );
    const metrics = await h.reception.internalApp.inject('/metrics');
    assert.match(metrics.body, /rushgate_reception_notice_failures_total\{server="a"\} 1/);
  });

  it('a fresh ticket goes to another server, and 409 after maxTicketsPerOrder', async () => {
    const h = await harness({ reception: { tickets: { maxTicketsPerOrder: 2 } } });
    await h.reception.monitor.pollAll();
    const r = await h.order({ item: '/x.bin' });
    const first = r.json.ticket.server;
    // While the first ticket is live on an up server there is no second one (CONTRACT §3)...
    const early = await h.reception.publicApp.inject({
      method: 'POST',
      url: `/api/orders/${r.json.orderId}/tickets`,
    });
    assert.equal(early.statusCode, 409);
    assert.equal(early.json().error.code, 'ticket_live');
    // ...so its transfer breaks off first, as when the client lost its server.
    const broke = await h.reception.internalApp.inject({
      method: 'POST',
      url: '/events',
      headers: { authorization: `Bearer ${h.token}` },
      payload: {
        serverId: first,
        events: [
          {
            id: 'e1',
            type: 'abandoned',
            jti: r.json.ticket.id,
            oid: r.json.orderId,
            path: '/x.bin',
            at: Date.now(),
            delivered: 3,
            size: 10,
          },
        ],
      },
    });
    assert.equal(broke.statusCode, 200);
    const fresh = await h.reception.publicApp.inject({
      method: 'POST',
      url: `/api/orders/${r.json.orderId}/tickets`,
    });
    assert.equal(fresh.statusCode, 201);
    assert.notEqual(fresh.json().ticket.server, first);
    assert.equal(h.reception.ledger.totalOutstanding(), 1, 'only the fresh ticket holds a slot');
    const third = await h.reception.publicApp.inject({
      method: 'POST',
      url: `/api/orders/${r.json.orderId}/tickets`,
      headers: { 'content-type': 'application/json' },
      payload: '{}',
    });
    assert.equal(third.statusCode, 409);
    assert.equal(third.json().error.code, 'ticket_limit_reached');
    const unknown = await h.reception.publicApp.inject({ method: 'POST', url: '/api/orders/nope/tickets' });
    assert.equal(unknown.statusCode, 404);
  });

  it('a fulfilled order whose last bytes were lost gets a fresh ticket and stays fulfilled (CONTRACT §3)', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    const r = await h.order({ item: '/x.bin' });
    const t = r.json.ticket;
    const done = await h.reception.internalApp.inject({
      method: 'POST',
      url: '/events',
      headers: { authorization: `Bearer ${h.token}` },
      payload: {
        serverId: t.server,
        events: [
          {
            id: 'e1',
            type: 'fulfilled',
            jti: t.id,
            oid: r.json.orderId,
            path: '/x.bin',
            at: Date.now(),
            delivered: 10,
            size: 10,
          },
        ],
      },
    });
    assert.equal(done.statusCode, 200);
    const before = await h.reception.publicApp.inject(`/api/orders/${r.json.orderId}`);
    assert.equal(before.json().status, 'fulfilled');
    const fresh = await h.reception.publicApp.inject({
      method: 'POST',
      url: `/api/orders/${r.json.orderId}/tickets`,
    });
    assert.equal(fresh.statusCode, 201);
    assert.equal(fresh.json().orderId, r.json.orderId);
    const after = await h.reception.publicApp.inject(`/api/orders/${r.json.orderId}`);
    assert.equal(after.json().status, 'fulfilled');
    assert.equal(after.json().tickets.length, 2);
  });

  it('takes a down server out after failuresBeforeDown polls and sends orders to the others', async () => {
    const h = await harness({ reception: { monitor: { failuresBeforeDown: 2, intervalMs: 50 } } });
    await h.reception.monitor.pollAll();
    h.net.servers.get('a')!.up = false;
    await h.reception.monitor.pollAll();
    assert.equal(h.reception.monitor.server('a')!.health.status, 'up');
    await h.reception.monitor.pollAll();
    assert.equal(h.reception.monitor.server('a')!.health.status, 'down');
    for (let i = 0; i < 2; i++) assert.equal((await h.order({ item: '/x.bin' })).json.ticket.server, 'b');
    assert.equal((await h.order({ item: '/x.bin' })).status, 503);
  });

  it('does not use a draining server, and 404s an item no up server holds', async () => {
    const h = await harness();
    h.net.servers.get('a')!.draining = true;
    h.net.servers.get('b')!.items = { '/y.bin': 5 };
    await h.reception.monitor.pollAll();
    assert.equal((await h.order({ item: '/x.bin' })).status, 503, 'only a draining server holds it');
    h.net.servers.get('a')!.up = false;
    for (let i = 0; i < 3; i++) await h.reception.monitor.pollAll();
    assert.equal((await h.order({ item: '/x.bin' })).status, 404);
  });

  it('counts transfers no known ticket covers against capacity, but never drops reservations', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 2 }] });
    await h.reception.monitor.pollAll();
    const r = await h.order({ item: '/x.bin' });
    h.net.servers.get('a')!.activeTickets = ['foreign-ticket'];
    await h.reception.monitor.pollAll();
    assert.equal(h.reception.monitor.server('a')!.untracked, 1);
    assert.equal(
      h.reception.ledger.outstanding('a'),
      1,
      'the report does not list our ticket, it still counts',
    );
    assert.equal((await h.order({ item: '/x.bin' })).status, 503);
    h.net.servers.get('a')!.activeTickets = [r.json.ticket.id];
    await h.reception.monitor.pollAll();
    assert.equal(h.reception.monitor.server('a')!.untracked, 0);
  });

  it('revokes an order on every content server through the internal API, with the token', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    const r = await h.order({ item: '/x.bin' });
    const api = h.reception.internalApp;
    const noToken = await api.inject({ method: 'POST', url: `/orders/${r.json.orderId}/revoke` });
    assert.equal(noToken.statusCode, 401);
    assert.equal(noToken.json().error.code, 'unauthorized');
    const res = await api.inject({
      method: 'POST',
      url: `/orders/${r.json.orderId}/revoke`,
      headers: { authorization: `Bearer ${h.token}` },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().orderId, r.json.orderId);
    assert.equal(res.json().revokedTickets, 1);
    for (const id of ['a', 'b']) {
      assert.deepEqual(
        h.net.servers.get(id)!.revocations.map((v) => v.kind === 'order' && v.orderId),
        [r.json.orderId],
      );
    }
    assert.equal(h.reception.ledger.totalOutstanding(), 0);
    const fresh = await h.reception.publicApp.inject({
      method: 'POST',
      url: `/api/orders/${r.json.orderId}/tickets`,
    });
    assert.equal(fresh.statusCode, 409);
    const unknown = await api.inject({
      method: 'POST',
      url: '/orders/nope/revoke',
      headers: { authorization: `Bearer ${h.token}` },
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'unknown_order');
  });

  it('the internal port wants the bearer token for everything but GET/HEAD, OPTIONS and unknown paths included', async () => {
    const h = await harness();
    const api = h.reception.internalApp;
    for (const [method, url] of [
      ['POST', '/events'],
      ['OPTIONS', '/events'],
      ['DELETE', '/anything'],
      ['PUT', '/metrics'],
    ] as const) {
      const res = await api.inject({ method, url });
      assert.equal(res.statusCode, 401, `${method} ${url}`);
      const wrong = await api.inject({ method, url, headers: { authorization: 'Bearer wrong' } });
      assert.equal(wrong.statusCode, 401, `${method} ${url} with a wrong token`);
    }
    assert.equal((await api.inject('/metrics')).statusCode, 200);
    assert.equal((await api.inject({ method: 'HEAD', url: '/metrics' })).statusCode, 200);
    assert.equal((await api.inject('/status')).statusCode, 200);
    const bad = await api.inject({
      method: 'POST',
      url: '/events',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      payload: '{"serverId":"zz","events":[]}',
    });
    assert.equal(bad.statusCode, 400);
  });

  it('estimates the wait from the record of service times once there is one', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 1 }] });
    h.net.servers.get('a')!.serviceTimesMs = [20_000, 20_000, 20_000];
    await h.reception.monitor.pollAll();
    const holder = await h.order({ item: '/x.bin' });
    await h.event('a', 'started', holder.json.ticket.id, holder.json.orderId);
    h.clock.t += 5_000;
    const busy = await h.order({ item: '/x.bin' });
    assert.equal(busy.json.estimatedWaitSeconds, 15);
    const second = await h.order({ item: '/x.bin' });
    assert.equal(second.json.estimatedWaitSeconds, 35);
    assert.equal(second.json.retryAfterSeconds, 30, 'capped at maxRetryAfterSeconds');
  });
  it('purges an order past reception.retention, never while its ticket is outstanding', async () => {
    const h = await harness({ reception: { retention: '60s' } });
    await h.reception.monitor.pollAll();
    const done = await h.order({ item: '/x.bin', email: 'buyer@example.com' }, { 'idempotency-key': 'k-1' });
    const open = await h.order({ item: '/x.bin' });
    assert.equal(done.status, 201);
    assert.equal(open.status, 201);
    await h.event(done.json.ticket.server, 'started', done.json.ticket.id, done.json.orderId);
    await h.event(done.json.ticket.server, 'fulfilled', done.json.ticket.id, done.json.orderId);
    await h.event(open.json.ticket.server, 'started', open.json.ticket.id, open.json.orderId);
    const get = (id: string) => h.reception.publicApp.inject(`/api/orders/${id}`);
    // The ticket's validity (10 minutes) counts as activity: a minute later both are kept.
    h.clock.t += 61_000;
    await h.reception.housekeeping();
    assert.equal((await get(done.json.orderId)).statusCode, 200);
    // Past its expiry plus the retention the fulfilled order goes; the downloading one stays.
    h.clock.t += 600_000;
    await h.reception.housekeeping();
    assert.equal((await get(done.json.orderId)).statusCode, 404);
    assert.equal((await get(open.json.orderId)).statusCode, 200);
    // Its Idempotency-Key went with it: the same key now makes a new order.
    const again = await h.order({ item: '/x.bin' }, { 'idempotency-key': 'k-1' });
    assert.equal(again.status, 201);
    assert.notEqual(again.json.orderId, done.json.orderId);
  });
  it('answers 503 store_unavailable with Retry-After while the store is away, and recovers by itself', async () => {
    const h = await harness();
    await h.reception.monitor.pollAll();
    h.faulty.down = true;
    const r = await h.order({ item: '/x.bin' });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'store_unavailable');
    assert.equal(r.headers['retry-after'], '2');
    assert.equal((await h.reception.internalApp.inject('/healthz')).statusCode, 503);
    assert.equal((await h.reception.publicApp.inject('/healthz')).statusCode, 503);
    h.faulty.down = false;
    await h.reception.housekeeping();
    assert.equal((await h.reception.internalApp.inject('/healthz')).statusCode, 200);
    assert.equal((await h.order({ item: '/x.bin' })).status, 201);
  });

  it('GET /status matches the schema the dashboard reads, and measures slot use while anyone waits', async () => {
    const h = await harness({ servers: [{ id: 'a', capacity: 1 }] });
    await h.reception.monitor.pollAll();
    const holder = await h.order({ item: '/x.bin' });
    assert.equal(holder.status, 201);
    assert.equal((await h.order({ item: '/x.bin' })).status, 503);
    // Two ticks with the one slot taken and one client waiting: fully used.
    await h.reception.housekeeping();
    h.clock.t += 1000;
    await h.reception.housekeeping();
    const json = (await h.reception.internalApp.inject('/status')).json();
    // parse() strips what the schema does not name: equality means the producer adds nothing unnamed.
    assert.deepEqual(statusViewSchema.parse(json), json);
    assert.equal(json.now, new Date(h.clock.t).toISOString());
    assert.ok(
      Date.parse(json.servers[0].healthSince) <= h.clock.t,
      'healthSince is an instant, not a number',
    );
    assert.equal(json.lastAllocation.at, new Date(h.clock.t - 1000).toISOString());
    assert.equal(json.queue.length, 1);
    assert.equal(json.queue.heldOpen, 0);
    assert.deepEqual(json.queue.slotUse, { windowSeconds: 60, window: 1, run: 1 });
    const metrics = (await h.reception.internalApp.inject('/metrics')).body;
    assert.match(metrics, /^rushgate_reception_slot_use_while_waiting_ratio 1$/m);
    assert.match(metrics, /^rushgate_reception_held_open_requests 0$/m);
    // The slot frees (held for the waiter, who has not come back) and stays free for a second.
    await h.event('a', 'started', holder.json.ticket.id, holder.json.orderId);
    await h.event('a', 'fulfilled', holder.json.ticket.id, holder.json.orderId);
    h.clock.t += 1000;
    await h.reception.housekeeping();
    h.clock.t += 1000;
    await h.reception.housekeeping();
    const later = statusViewSchema.parse((await h.reception.internalApp.inject('/status')).json());
    assert.equal(later.queue.length, 1);
    // Each sample's state holds until the next: two seconds full, then one idle.
    assert.ok(Math.abs((later.queue.slotUse.window ?? 0) - 2 / 3) < 1e-9, `${later.queue.slotUse.window}`);
  });
});
