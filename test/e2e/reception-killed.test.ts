/**
 * The reception SIGKILLed in the middle of a rush on the `sqlite:` store (issue 8, item 6): every
 * order that was answered `201` exists after a restart with the ticket it was given, and the
 * outstanding tickets are rebuilt from the file, so the restarted reception never puts a content
 * server over its capacity.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { type ApiJson, type Cluster, startCluster } from './reception-cluster.js';

const CAPACITY = 60;
const SERVERS = 3;
const RUSH = 500;
const CONCURRENCY = 40;

interface Answered {
  orderId: string;
  ticketId: string;
  server: string;
}

describe('the reception killed under load', { timeout: 240_000 }, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({
      servers: SERVERS,
      items: { '/rush.bin': 'x'.repeat(1000) },
      server: () => ({ capacity: CAPACITY }),
      reception: {
        rateLimit: null,
        // One address sends every order: this test is about durability, not fair shares.
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        // Long claims: no ticket lapses during the test, so every 201 still holds its slot after
        // the restart and the capacity check below is exact.
        tickets: { claimSeconds: 600, claimSecondsWhileWaiting: 600 },
        monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 3 },
      },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it(`keeps every 201 of a ${RUSH}-order rush across a SIGKILL, and no server is overrun after the restart`, async () => {
    const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 0 });
    const answered: Answered[] = [];
    let sent = 0;
    let failed = 0;
    let killed = false;
    // A random moment, but after some tickets and before the rush ends.
    const killAfter = randomInt(40, 160);
    const order = async (): Promise<void> => {
      try {
        const res = await fetch(`${c.pub}/api/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ item: '/rush.bin' }),
          // @ts-expect-error undici's dispatcher option is not in the DOM fetch types
          dispatcher,
        });
        const text = await res.text();
        if (res.status === 201) {
          const json = JSON.parse(text) as ApiJson;
          answered.push({ orderId: json.orderId, ticketId: json.ticket.id, server: json.ticket.server });
        }
      } catch {
        failed++; // the connection died with the reception: no answer, so no promise was made
      }
      if (!killed && answered.length >= killAfter) {
        killed = true;
        c.reception.child.kill('SIGKILL');
      }
    };
    const worker = async (): Promise<void> => {
      while (sent < RUSH && !killed) {
        sent++;
        await order();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await dispatcher.close();
    assert.ok(killed, `the reception was killed (after ${answered.length} tickets)`);
    await c.reception.exited;
    console.log(`# killed after ${answered.length} answered 201, ${sent} sent, ${failed} cut off`);

    await c.startReception();

    // Every 201 survives, with the very ticket it named.
    for (const a of answered) {
      const res = await fetch(`${c.pub}/api/orders/${a.orderId}`);
      assert.equal(res.status, 200, `order ${a.orderId} answered 201 before the kill`);
      const json = (await res.json()) as ApiJson;
      const t = json.tickets.find((x) => x.id === a.ticketId);
      assert.ok(t, `order ${a.orderId} keeps ticket ${a.ticketId}`);
      assert.equal(t.server, a.server);
    }

    // The slots those tickets hold are counted again: the restarted reception hands out only
    // what is left, and no server goes over its capacity.
    const before = await c.status();
    for (const s of before) {
      const mine = answered.filter((a) => a.server === s.id).length;
      assert.ok(
        s.outstanding >= mine,
        `${s.id}: ${s.outstanding} outstanding, ${mine} answered before the kill`,
      );
    }
    const more = new Agent({ connections: CONCURRENCY, pipelining: 0 });
    const after: number[] = await Promise.all(
      Array.from({ length: SERVERS * CAPACITY }, async () => {
        const res = await fetch(`${c.pub}/api/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ item: '/rush.bin' }),
          // @ts-expect-error undici's dispatcher option is not in the DOM fetch types
          dispatcher: more,
        });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    await more.close();
    const servedAfter = after.filter((s) => s === 201).length;
    assert.ok(
      after.every((s) => s === 201 || s === 503),
      `only 201 or 503 after the restart: ${[...new Set(after)]}`,
    );
    const total = before.reduce((n, s) => n + s.outstanding, 0);
    assert.ok(
      total + servedAfter <= SERVERS * CAPACITY,
      `${total} rebuilt + ${servedAfter} new ≤ ${SERVERS * CAPACITY}`,
    );
    for (const s of await c.status()) {
      assert.ok(s.outstanding <= s.capacity, `${s.id}: ${s.outstanding} > ${s.capacity}`);
    }
  });
});
