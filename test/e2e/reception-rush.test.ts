/**
 * The reception under a rush, with three real content servers: the distance tie-break, then 500
 * orders at once — no content server ever has more outstanding tickets than its capacity, and
 * no slot is left unused while clients are turned away.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { type ApiJson, type Cluster, postOrder, startCluster } from './reception-cluster.js';

const CAPACITY = 10;
const RUSH = 500;

async function diagnostics(c: Cluster): Promise<string> {
  const metrics = await (await fetch(`${c.internal}/metrics`)).text();
  const status = await (await fetch(`${c.internal}/status`)).text();
  return `${metrics
    .split('\n')
    .filter((l) => /notice_failures|server_health|orders_total/.test(l) && !l.startsWith('#'))
    .join('\n')}\n${status}`;
}

describe('reception under a rush', { timeout: 180_000 }, () => {
  let c: Cluster;
  const issued: { server: string; orderId: string }[] = [];

  before(async () => {
    c = await startCluster({
      servers: 3,
      items: { '/rush.bin': 'x'.repeat(1000) },
      server: (i) => ({ capacity: CAPACITY, distance: i + 1 }),
      reception: {
        rateLimit: null,
        // Every order comes from one address here: this test is about capacity, not fair shares.
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        allocation: { tieTolerance: 0.25 },
        monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 3 },
      },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('breaks load ties by the configured distance', async () => {
    const servers: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await postOrder(c.pub, { item: '/rush.bin' });
      assert.equal(r.status, 201);
      servers.push(r.json.ticket.server);
      issued.push({ server: r.json.ticket.server, orderId: r.json.orderId });
    }
    // a (distance 1) wins while its load is within 0.25 of the least (0); at 0.3 it is not, and b
    // (distance 2) is nearer than c.
    assert.deepEqual(servers, ['a', 'a', 'a', 'b'], await diagnostics(c));
  });

  it(`never gives a content server more outstanding tickets than its capacity under ${RUSH} concurrent orders`, async () => {
    const dispatcher = new Agent({ connections: RUSH, pipelining: 0 });
    try {
      const answers = await Promise.all(
        Array.from({ length: RUSH }, async () => {
          const res = await fetch(`${c.pub}/api/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ item: '/rush.bin' }),
            // @ts-expect-error undici's dispatcher option is not in the DOM fetch types
            dispatcher,
          });
          return { status: res.status, json: (await res.json()) as ApiJson };
        }),
      );
      const byStatus = new Map<number, number>();
      for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
      for (const a of answers) {
        if (a.status === 201) issued.push({ server: a.json.ticket.server, orderId: a.json.orderId });
        else assert.equal(a.status, 503, JSON.stringify(a.json));
      }
      const perServer = new Map<string, number>();
      for (const t of issued) perServer.set(t.server, (perServer.get(t.server) ?? 0) + 1);
      for (const [server, n] of perServer) assert.ok(n <= CAPACITY, `server ${server} got ${n} tickets`);
      // Every slot is used: 30 tickets in all, and everyone else was told to wait.
      assert.equal(
        issued.length,
        3 * CAPACITY,
        `answers: ${JSON.stringify([...byStatus])}\n${await diagnostics(c)}`,
      );
      assert.equal(byStatus.get(503), RUSH - (3 * CAPACITY - 4));
      const busy = answers.find((a) => a.status === 503)!.json;
      assert.equal(busy.status, 'busy');
      assert.ok(busy.position >= 1 && typeof busy.queueToken === 'string');
    } finally {
      await dispatcher.close();
    }
    // The reception's own books agree, and so does the store behind GET /api/orders.
    for (const s of await c.status()) assert.ok(s.outstanding <= s.capacity, `${s.id}: ${s.outstanding}`);
    const orders = await Promise.all(
      issued.map(async (t) => (await (await fetch(`${c.pub}/api/orders/${t.orderId}`)).json()) as ApiJson),
    );
    const outstanding = new Map<string, number>();
    for (const o of orders) {
      for (const t of o.tickets) {
        if (t.status === 'issued' || t.status === 'downloading')
          outstanding.set(t.server, (outstanding.get(t.server) ?? 0) + 1);
      }
    }
    for (const [server, n] of outstanding) assert.ok(n <= CAPACITY, `${server}: ${n} outstanding`);
    const metrics = await (await fetch(`${c.internal}/metrics`)).text();
    for (const id of ['a', 'b', 'c']) {
      const m = new RegExp(`rushgate_reception_tickets_issued_total\\{server="${id}"\\} (\\d+)`).exec(
        metrics,
      );
      assert.equal(Number(m?.[1]), CAPACITY, `tickets issued for ${id}`);
    }
    assert.match(metrics, /rushgate_reception_queue_length \d+/);
  });
});
