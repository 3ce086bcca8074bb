/**
 * The one conformance suite every store backend passes (memory:, sqlite:, redis://), in the
 * manner of bullmq's adapter tests: each method and each invariant of src/store/types.ts, with
 * exact times (the store never reads the clock), plus persistence across a reopen and a race of
 * 500 concurrent reservations for 50 slots. A backend's test file calls `storeContract` once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { LineEntry, ReserveLimits, Store, TicketRecord } from '../src/store/index.js';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
  /**
   * Persistent backends: closes nothing itself; opens the same data again (the caller closes
   * `store` first). Absent for `memory:`, whose reopen test is skipped.
   */
  reopen?(): Promise<Store>;
  /**
   * Backends shared by several receptions: another, independent store over the same data (a
   * second reception). The concurrency case then races both.
   */
  peer?(): Promise<Store>;
}

const T0 = 1_700_000_000_000;
const DAY = 24 * 60 * 60 * 1000;
const ROOMY: ReserveLimits = { capacity: 100, untracked: 0, maxTicketsPerOrder: 5 };

let n = 0;
const uid = (p: string) => `${p}-${++n}-${randomUUID().slice(0, 8)}`;

async function newOrder(store: Store, over: { item?: string; at?: number; key?: string } = {}) {
  const r = await store.createOrder(
    {
      id: uid('o'),
      item: over.item ?? '/apps/editor.dmg',
      clientAddress: '192.0.2.7',
      createdAt: over.at ?? T0,
      ...(over.key === undefined ? {} : { idempotencyKey: over.key }),
    },
    DAY,
  );
  assert.equal(r.kind, 'created');
  return r.order;
}

function ticketFor(orderId: string, server: string, at = T0, claimMs = 30_000) {
  const id = uid('t');
  return {
    id,
    orderId,
    server,
    url: `http://127.0.0.1:1/t/${id}/apps/editor.dmg`,
    issuedAt: at,
    notBefore: at,
    expiresAt: at + 600_000,
    claimBy: at + claimMs,
  };
}

async function reserve(
  store: Store,
  orderId: string,
  server: string,
  limits = ROOMY,
  at = T0,
): Promise<TicketRecord> {
  const r = await store.reserveTicket(ticketFor(orderId, server, at), limits);
  assert.equal(r.kind, 'reserved', `reservation on ${server} should succeed`);
  if (r.kind !== 'reserved') throw new Error('unreachable');
  return r.ticket;
}

function event(ticketId: string, type: 'started' | 'fulfilled' | 'abandoned', delivered = 0, at = T0 + 1000) {
  return { eventId: uid('e'), ticketId, type, delivered, at };
}

/** A line with room for everyone in these tests. */
const LONG = 1_000_000;

async function join(store: Store, token: string, now = T0, firstEstimateSeconds = 1): Promise<LineEntry> {
  const r = await store.joinLine({ token, now, firstEstimateSeconds }, LONG);
  assert.equal(r.kind, 'joined', `${token} should join`);
  if (r.kind !== 'joined') throw new Error('unreachable');
  return r.entry;
}

async function tokensInFront(store: Store, limit = 10): Promise<string[]> {
  return (await store.lineFront(limit)).map((e) => e.token);
}

async function countOn(store: Store, server: string): Promise<number> {
  return (await store.outstanding()).get(server)?.size ?? 0;
}

export function storeContract(name: string, make: () => Promise<StoreUnderTest>): void {
  /** Runs `body` with a fresh store and always cleans up. */
  function withStore(title: string, body: (s: StoreUnderTest) => Promise<void>) {
    test(title, { timeout: 60_000 }, async () => {
      const s = await make();
      try {
        await body(s);
      } finally {
        await s.cleanup();
      }
    });
  }

  describe(`store contract: ${name}`, () => {
    withStore(
      'purgeInactive purges orders, tickets and idempotency keys past retention',
      async ({ store }) => {
        const RET = 60_000;
        const keyed = await newOrder(store, { key: uid('k') });
        const plain = await newOrder(store, { at: T0 + 10 });
        const withTicket = await newOrder(store);
        const t = await reserve(store, withTicket.id, 'a');
        await store.applyTransferEvent(event(t.id, 'started', 10, T0 + 1000));
        await store.applyTransferEvent(event(t.id, 'fulfilled', 100, T0 + 2000));
        const recent = await newOrder(store, { at: T0 + RET });
        // Nothing is due one ms early.
        assert.deepEqual(await store.purgeInactive(T0 + RET - 1, RET, 100), { purged: 0, more: false });
        assert.ok(await store.getOrder(keyed.id));
        // At T0 + RET the two ticketless orders are due; the ticketed one counts from its expiry.
        const first = await store.purgeInactive(T0 + RET + 10, RET, 100);
        assert.equal(first.purged, 2);
        assert.equal(await store.getOrder(keyed.id), undefined);
        assert.equal(await store.getOrder(plain.id), undefined);
        assert.ok(await store.getOrder(withTicket.id), 'its ticket was valid until expiresAt');
        assert.ok(await store.getOrder(recent.id));
        // The purged key is free again: the same key makes a new order, not the old one.
        const again = await store.createOrder(
          {
            id: uid('o'),
            item: '/other',
            clientAddress: '192.0.2.7',
            createdAt: T0 + RET + 20,
            idempotencyKey: keyed.idempotencyKey!,
          },
          DAY,
        );
        assert.equal(again.kind, 'created');
        const dueTicketed = t.expiresAt + RET;
        assert.equal(
          (await store.purgeInactive(dueTicketed - 1, RET, 100)).purged,
          2,
          '`recent` and `again`',
        );
        assert.ok(await store.getOrder(withTicket.id));
        assert.equal((await store.purgeInactive(dueTicketed, RET, 100)).purged, 1);
        assert.equal(await store.getOrder(withTicket.id), undefined);
        assert.deepEqual(await store.ticketsOfOrder(withTicket.id), []);
        // Events for a purged ticket are ignored, never an error.
        const late = await store.applyTransferEvent(event(t.id, 'fulfilled', 100, dueTicketed + 1));
        assert.equal(late.applied, false);
      },
    );

    withStore('purgeInactive never purges an order with an outstanding ticket', async ({ store }) => {
      const RET = 60_000;
      const order = await newOrder(store);
      const t = await reserve(store, order.id, 'a');
      await store.applyTransferEvent(event(t.id, 'started', 10, T0 + 1000));
      // Long past expiry and retention, but still downloading (its server never reported the end).
      const late = t.expiresAt + 10 * RET;
      assert.equal((await store.purgeInactive(late, RET, 100)).purged, 0);
      assert.equal((await store.getOrder(order.id))?.status, 'downloading');
      assert.equal(await countOn(store, 'a'), 1);
      await store.applyTransferEvent(event(t.id, 'abandoned', 10, late + 1));
      // It is looked at again a retention after the sweep that found it outstanding.
      assert.equal((await store.purgeInactive(late + RET - 1, RET, 100)).purged, 0);
      assert.equal((await store.purgeInactive(late + RET + 1, RET, 100)).purged, 1);
      assert.equal(await store.getOrder(order.id), undefined);
      assert.equal(await countOn(store, 'a'), 0);
    });

    withStore('purgeInactive works in batches of at most `limit`', async ({ store }) => {
      const RET = 60_000;
      for (let i = 0; i < 25; i++) await newOrder(store, { at: T0 + i });
      const a = await store.purgeInactive(T0 + DAY, RET, 10);
      assert.deepEqual(a, { purged: 10, more: true });
      const b = await store.purgeInactive(T0 + DAY, RET, 10);
      assert.deepEqual(b, { purged: 10, more: true });
      const c = await store.purgeInactive(T0 + DAY, RET, 10);
      assert.deepEqual(c, { purged: 5, more: false });
    });

    withStore('createOrder creates a waiting order that getOrder returns', async ({ store }) => {
      const r = await store.createOrder(
        {
          id: 'order-1',
          item: '/a/b.iso',
          clientAddress: '2001:db8::1',
          createdAt: T0,
          email: 'x@example.com',
          idempotencyKey: 'k-1',
        },
        DAY,
      );
      assert.equal(r.kind, 'created');
      const expected = {
        id: 'order-1',
        item: '/a/b.iso',
        status: 'waiting',
        createdAt: T0,
        clientAddress: '2001:db8::1',
        email: 'x@example.com',
        idempotencyKey: 'k-1',
        tickets: [],
      };
      assert.deepEqual(r.order, expected);
      assert.deepEqual(await store.getOrder('order-1'), expected);
      assert.equal(await store.getOrder('no-such-order'), undefined);
      const plain = await newOrder(store);
      assert.equal('email' in plain, false);
      assert.equal('idempotencyKey' in plain, false);
    });

    withStore(
      'findByIdempotencyKey reads the order a key names while it is kept, and writes nothing',
      async ({ store }) => {
        assert.equal(await store.findByIdempotencyKey('idem-find', T0), undefined);
        const first = await newOrder(store, { key: 'idem-find', item: '/x.bin' });
        const found = await store.findByIdempotencyKey('idem-find', T0 + 5);
        assert.equal(found?.id, first.id);
        assert.equal(found?.item, '/x.bin');
        assert.equal(await store.findByIdempotencyKey('idem-other', T0 + 5), undefined);
        // Kept for its TTL (a day here), then forgotten.
        assert.equal((await store.findByIdempotencyKey('idem-find', T0 + DAY - 1))?.id, first.id);
        assert.equal(await store.findByIdempotencyKey('idem-find', T0 + DAY), undefined);
      },
    );

    withStore('idempotency key: same item → existing, other item → conflict, expiry', async ({ store }) => {
      const first = await newOrder(store, { key: 'idem-1', item: '/x.bin' });
      const again = await store.createOrder(
        {
          id: uid('o'),
          item: '/x.bin',
          clientAddress: '192.0.2.1',
          createdAt: T0 + 5,
          idempotencyKey: 'idem-1',
        },
        DAY,
      );
      assert.equal(again.kind, 'existing');
      assert.equal(again.order.id, first.id);
      const other = await store.createOrder(
        {
          id: uid('o'),
          item: '/y.bin',
          clientAddress: '192.0.2.1',
          createdAt: T0 + 6,
          idempotencyKey: 'idem-1',
        },
        DAY,
      );
      assert.equal(other.kind, 'conflict');
      assert.equal(other.order.id, first.id);
      // One ms before the key's 24 h are up it still answers; at 24 h it is forgotten.
      const late = await store.createOrder(
        {
          id: uid('o'),
          item: '/x.bin',
          clientAddress: '192.0.2.1',
          createdAt: T0 + DAY - 1,
          idempotencyKey: 'idem-1',
        },
        DAY,
      );
      assert.equal(late.kind, 'existing');
      const fresh = await store.createOrder(
        {
          id: 'after-expiry',
          item: '/y.bin',
          clientAddress: '192.0.2.1',
          createdAt: T0 + DAY,
          idempotencyKey: 'idem-1',
        },
        DAY,
      );
      assert.equal(fresh.kind, 'created');
      const afterwards = await store.createOrder(
        {
          id: uid('o'),
          item: '/y.bin',
          clientAddress: '192.0.2.1',
          createdAt: T0 + DAY + 1,
          idempotencyKey: 'idem-1',
        },
        DAY,
      );
      assert.equal(afterwards.kind, 'existing');
      assert.equal(afterwards.order.id, 'after-expiry');
      // Orders without a key never collide.
      const a = await newOrder(store);
      const b = await newOrder(store);
      assert.notEqual(a.id, b.id);
    });

    withStore('reserveTicket issues a ticket and makes the order ticketed', async ({ store }) => {
      const order = await newOrder(store);
      const input = ticketFor(order.id, 'a');
      const r = await store.reserveTicket(input, ROOMY);
      assert.equal(r.kind, 'reserved');
      if (r.kind !== 'reserved') return;
      assert.deepEqual(r.ticket, { ...input, status: 'issued', delivered: 0 });
      assert.equal(r.order.status, 'ticketed');
      assert.deepEqual(r.order.tickets, [r.ticket]);
      const stored = await store.getOrder(order.id);
      assert.equal(stored?.status, 'ticketed');
      assert.deepEqual(stored?.tickets, [r.ticket]);
      assert.deepEqual([...((await store.outstanding()).get('a') ?? [])], [input.id]);
      assert.deepEqual(await store.reserveTicket(ticketFor('no-such-order', 'a'), ROOMY), {
        kind: 'unknown_order',
      });
    });

    withStore('reserveTicket is full at capacity, counting untracked load', async ({ store }) => {
      const limits = { capacity: 3, untracked: 1, maxTicketsPerOrder: 5 };
      const t1 = await reserve(store, (await newOrder(store)).id, 'a', limits);
      await reserve(store, (await newOrder(store)).id, 'a', limits);
      const third = await newOrder(store);
      assert.deepEqual(await store.reserveTicket(ticketFor(third.id, 'a'), limits), { kind: 'full' });
      assert.equal(
        (await store.getOrder(third.id))?.status,
        'waiting',
        'a refused reservation changes nothing',
      );
      assert.equal((await store.getOrder(third.id))?.tickets.length, 0);
      // Without the untracked load there is room for exactly one more.
      await reserve(store, third.id, 'a', { ...limits, untracked: 0 });
      assert.deepEqual(
        await store.reserveTicket(ticketFor((await newOrder(store)).id, 'a'), { ...limits, untracked: 0 }),
        {
          kind: 'full',
        },
      );
      // Another server is unaffected; a freed slot can be taken again.
      await reserve(store, (await newOrder(store)).id, 'b', limits);
      assert.ok(await store.endTicket(t1.id, 'failed', T0 + 1));
      await reserve(store, (await newOrder(store)).id, 'a', { ...limits, untracked: 0 });
      assert.equal(await countOn(store, 'a'), 3);
      // untracked alone can fill the server.
      assert.deepEqual(
        await store.reserveTicket(ticketFor((await newOrder(store)).id, 'c'), { ...limits, untracked: 3 }),
        { kind: 'full' },
      );
    });

    withStore('reserveTicket stops at maxTicketsPerOrder, on any server', async ({ store }) => {
      const limits = { capacity: 10, untracked: 0, maxTicketsPerOrder: 2 };
      const order = await newOrder(store);
      await reserve(store, order.id, 'a', limits);
      await reserve(store, order.id, 'b', limits);
      assert.deepEqual(await store.reserveTicket(ticketFor(order.id, 'c'), limits), { kind: 'ticket_limit' });
      assert.equal((await store.ticketsOfOrder(order.id)).length, 2);
    });

    withStore('a fresh ticket lapses the order’s earlier outstanding tickets', async ({ store }) => {
      const order = await newOrder(store);
      const t1 = await reserve(store, order.id, 'a');
      await store.applyTransferEvent(event(t1.id, 'started', 10));
      const t2input = ticketFor(order.id, 'b', T0 + 5000);
      const r = await store.reserveTicket(t2input, ROOMY);
      assert.equal(r.kind, 'reserved');
      if (r.kind !== 'reserved') return;
      assert.equal(r.order.status, 'ticketed');
      assert.deepEqual(
        r.order.tickets.map((t) => [t.id, t.status]),
        [
          [t1.id, 'lapsed'],
          [t2input.id, 'issued'],
        ],
      );
      assert.equal(r.order.tickets[0]?.finishedAt, T0 + 5000);
      const out = await store.outstanding();
      assert.equal(out.get('a')?.has(t1.id) ?? false, false);
      assert.equal(out.get('b')?.has(t2input.id), true);
      assert.deepEqual(
        (await store.ticketsOfOrder(order.id)).map((t) => t.id),
        [t1.id, t2input.id],
        'oldest first',
      );
    });

    withStore(
      'an order’s own outstanding ticket does not keep its fresh ticket off that server',
      async ({ store }) => {
        const limits = { capacity: 1, untracked: 0, maxTicketsPerOrder: 5 };
        const order = await newOrder(store);
        const t1 = await reserve(store, order.id, 'a', limits);
        const t2 = await reserve(store, order.id, 'a', limits, T0 + 1);
        assert.deepEqual([...((await store.outstanding()).get('a') ?? [])], [t2.id]);
        assert.equal((await store.ticketsOfOrder(order.id)).find((t) => t.id === t1.id)?.status, 'lapsed');
      },
    );

    withStore(
      'started → downloading, fulfilled → order fulfilled and closed; repeats ignored',
      async ({ store }) => {
        const order = await newOrder(store);
        const t = await reserve(store, order.id, 'a');
        const started = event(t.id, 'started', 100, T0 + 1000);
        const s = await store.applyTransferEvent(started);
        assert.equal(s.applied, true);
        assert.equal(s.freedSlot, false);
        assert.equal(s.ticket?.status, 'downloading');
        assert.equal(s.ticket?.startedAt, T0 + 1000);
        assert.equal(s.ticket?.delivered, 100);
        assert.equal(s.order?.status, 'downloading');
        assert.equal(await countOn(store, 'a'), 1, 'a downloading ticket still holds its slot');

        const repeat = await store.applyTransferEvent({ ...started, delivered: 500 });
        assert.deepEqual(repeat, { applied: false, freedSlot: false });
        assert.equal((await store.ticketsOfOrder(order.id))[0]?.delivered, 100, 'a repeat changes nothing');

        const done = event(t.id, 'fulfilled', 1000, T0 + 2000);
        const f = await store.applyTransferEvent(done);
        assert.equal(f.applied, true);
        assert.equal(f.freedSlot, true);
        assert.equal(f.ticket?.status, 'fulfilled');
        assert.equal(f.ticket?.finishedAt, T0 + 2000);
        assert.equal(f.ticket?.delivered, 1000);
        assert.equal(f.order?.status, 'fulfilled');
        assert.equal(await countOn(store, 'a'), 0);
        assert.deepEqual(await store.applyTransferEvent(done), { applied: false, freedSlot: false });

        // Fulfilled is final: later events change nothing.
        for (const type of ['abandoned', 'started', 'fulfilled'] as const) {
          const late = await store.applyTransferEvent(event(t.id, type, 5, T0 + 3000));
          assert.equal(late.freedSlot, false);
          assert.equal(late.ticket?.status, 'fulfilled');
          assert.equal(late.ticket?.finishedAt, T0 + 2000);
          assert.equal(late.order?.status, 'fulfilled');
        }
        assert.equal(await countOn(store, 'a'), 0);
        assert.equal(await store.endTicket(t.id, 'revoked', T0 + 4000), undefined);
        // A client that lost the end of the download may ask again (CONTRACT §3): a fresh ticket
        // holds a slot like any other, and the order stays fulfilled.
        const again = await store.reserveTicket(ticketFor(order.id, 'b'), ROOMY);
        assert.equal(again.kind, 'reserved');
        assert.equal(again.kind === 'reserved' && again.order.status, 'fulfilled');
        assert.equal(await countOn(store, 'b'), 1);
        assert.equal((await store.getOrder(order.id))?.status, 'fulfilled');
      },
    );

    withStore(
      'fulfilled straight from issued frees the slot; unknown tickets apply nothing',
      async ({ store }) => {
        const order = await newOrder(store);
        const t = await reserve(store, order.id, 'a');
        const f = await store.applyTransferEvent(event(t.id, 'fulfilled', 42));
        assert.equal(f.freedSlot, true);
        assert.equal(f.order?.status, 'fulfilled');
        const unknown = await store.applyTransferEvent(event('no-such-ticket', 'started'));
        assert.equal(unknown.applied, false);
        assert.equal(unknown.freedSlot, false);
        assert.equal(unknown.ticket, undefined);
      },
    );

    withStore('abandoned → ticket lapsed, order lapsed; freedSlot exactly once', async ({ store }) => {
      const order = await newOrder(store);
      const t = await reserve(store, order.id, 'a');
      await store.applyTransferEvent(event(t.id, 'started', 5));
      const a = await store.applyTransferEvent(event(t.id, 'abandoned', 50, T0 + 7000));
      assert.equal(a.applied, true);
      assert.equal(a.freedSlot, true);
      assert.equal(a.ticket?.status, 'lapsed');
      assert.equal(a.ticket?.finishedAt, T0 + 7000);
      assert.equal(a.ticket?.delivered, 50);
      assert.equal(a.order?.status, 'lapsed');
      assert.equal(await countOn(store, 'a'), 0);
      const again = await store.applyTransferEvent(event(t.id, 'abandoned', 60));
      assert.equal(again.applied, true);
      assert.equal(again.freedSlot, false);
      assert.equal(again.ticket?.delivered, 60, 'delivered still grows');
      const lower = await store.applyTransferEvent(event(t.id, 'abandoned', 7));
      assert.equal(lower.ticket?.delivered, 60, 'delivered never shrinks');
      // A lapsed order takes a fresh ticket.
      await reserve(store, order.id, 'b');
      assert.equal((await store.getOrder(order.id))?.status, 'ticketed');
    });

    withStore(
      'a lapsed ticket that starts again holds a slot again, even over capacity',
      async ({ store }) => {
        const limits = { capacity: 1, untracked: 0, maxTicketsPerOrder: 5 };
        const early = await newOrder(store);
        const t1 = await reserve(store, early.id, 'a', limits);
        assert.equal((await store.lapseUnclaimed(t1.claimBy)).length, 1);
        assert.equal((await store.getOrder(early.id))?.status, 'lapsed');
        const t2 = await reserve(store, (await newOrder(store)).id, 'a', limits);
        const back = await store.applyTransferEvent(event(t1.id, 'started', 1, t1.claimBy + 10));
        assert.equal(back.applied, true);
        assert.equal(back.freedSlot, false);
        assert.equal(back.ticket?.status, 'downloading');
        assert.equal(back.ticket?.finishedAt, undefined);
        assert.equal(back.order?.status, 'downloading');
        assert.deepEqual([...((await store.outstanding()).get('a') ?? [])].sort(), [t1.id, t2.id].sort());
        assert.deepEqual(
          await store.reserveTicket(ticketFor((await newOrder(store)).id, 'a'), { ...limits, capacity: 2 }),
          {
            kind: 'full',
          },
        );
        const end = await store.applyTransferEvent(event(t1.id, 'fulfilled', 9, t1.claimBy + 20));
        assert.equal(end.freedSlot, true);
        assert.equal(end.order?.status, 'fulfilled');
        assert.equal(await countOn(store, 'a'), 1);
      },
    );

    withStore('abandoning a revived older ticket leaves the order on its newer ticket', async ({ store }) => {
      const order = await newOrder(store);
      const t1 = await reserve(store, order.id, 'a');
      const t2 = await reserve(store, order.id, 'b', ROOMY, T0 + 1);
      await store.applyTransferEvent(event(t1.id, 'started'));
      assert.equal((await store.getOrder(order.id))?.status, 'downloading');
      const a = await store.applyTransferEvent(event(t1.id, 'abandoned'));
      assert.equal(a.freedSlot, true);
      assert.equal(a.order?.status, 'ticketed', 'its newer ticket is still outstanding');
      assert.equal((await store.outstanding()).get('b')?.has(t2.id), true);
    });

    withStore('a revoked ticket stays revoked when a transfer event arrives', async ({ store }) => {
      const order = await newOrder(store);
      const t = await reserve(store, order.id, 'a');
      await store.endTicket(t.id, 'revoked', T0 + 1);
      const s = await store.applyTransferEvent(event(t.id, 'started', 3));
      assert.equal(s.ticket?.status, 'revoked');
      assert.equal(s.freedSlot, false);
      assert.equal(await countOn(store, 'a'), 0);
    });

    withStore('endTicket ends only outstanding tickets and frees their slot', async ({ store }) => {
      const order = await newOrder(store);
      const t = await reserve(store, order.id, 'a');
      const ended = await store.endTicket(t.id, 'failed', T0 + 100);
      assert.equal(ended?.id, t.id);
      assert.equal(ended?.status, 'failed');
      assert.equal(ended?.finishedAt, T0 + 100);
      assert.equal(await countOn(store, 'a'), 0);
      assert.equal((await store.getOrder(order.id))?.status, 'lapsed');
      assert.equal(await store.endTicket(t.id, 'revoked', T0 + 200), undefined, 'already final');
      assert.equal((await store.ticketsOfOrder(order.id))[0]?.status, 'failed');
      assert.equal(await store.endTicket('no-such-ticket', 'lapsed', T0), undefined);
      for (const status of ['lapsed', 'revoked'] as const) {
        const o = await newOrder(store);
        const tt = await reserve(store, o.id, 'b');
        await store.applyTransferEvent(event(tt.id, 'started'));
        assert.equal(
          (await store.endTicket(tt.id, status, T0 + 300))?.status,
          status,
          'downloading ends too',
        );
        assert.equal((await store.getOrder(o.id))?.status, 'lapsed');
      }
      assert.equal(await countOn(store, 'b'), 0);
    });

    withStore(
      'lapseUnclaimed lapses issued tickets at exactly claimBy, not started ones before expiresAt',
      async ({ store }) => {
        const o1 = await newOrder(store);
        const t1 = await reserve(store, o1.id, 'a'); // claimBy T0 + 30 000
        const o2 = await newOrder(store);
        const t2 = await reserve(store, o2.id, 'a');
        await store.applyTransferEvent(event(t2.id, 'started'));
        const o3 = await newOrder(store);
        const t3 = await store.reserveTicket(ticketFor(o3.id, 'b', T0, 60_000), ROOMY);
        assert.equal(t3.kind, 'reserved');
        assert.deepEqual(await store.lapseUnclaimed(t1.claimBy - 1), []);
        const lapsed = await store.lapseUnclaimed(t1.claimBy);
        assert.deepEqual(
          lapsed.map((t) => [t.id, t.status, t.finishedAt]),
          [[t1.id, 'lapsed', t1.claimBy]],
        );
        assert.equal((await store.getOrder(o1.id))?.status, 'lapsed');
        assert.equal((await store.getOrder(o2.id))?.status, 'downloading');
        assert.deepEqual([...((await store.outstanding()).get('a') ?? [])], [t2.id]);
        assert.deepEqual(await store.lapseUnclaimed(t1.claimBy), [], 'nothing twice');
        assert.equal((await store.lapseUnclaimed(T0 + 60_000)).length, 1);
        assert.equal(await countOn(store, 'b'), 0);
      },
    );

    withStore(
      'lapseUnclaimed ends a downloading ticket at exactly its expiresAt and frees its slot',
      async ({ store }) => {
        // Its server died mid-transfer: no fulfilled or abandoned event will ever come.
        const o = await newOrder(store);
        const t = await reserve(store, o.id, 'a');
        await store.applyTransferEvent(event(t.id, 'started'));
        assert.deepEqual(await store.lapseUnclaimed(t.expiresAt - 1), [], 'not before expiresAt');
        const ended = await store.lapseUnclaimed(t.expiresAt);
        assert.deepEqual(
          ended.map((x) => [x.id, x.status, x.finishedAt]),
          [[t.id, 'lapsed', t.expiresAt]],
        );
        assert.equal(await countOn(store, 'a'), 0, 'the slot is free');
        assert.deepEqual(await store.lapseUnclaimed(t.expiresAt + 1), [], 'nothing twice');
        // A fulfilled ticket is never touched, even long after its expiresAt.
        const o2 = await newOrder(store);
        const t2 = await reserve(store, o2.id, 'a');
        await store.applyTransferEvent(event(t2.id, 'started'));
        await store.applyTransferEvent(event(t2.id, 'fulfilled', 100));
        assert.deepEqual(await store.lapseUnclaimed(t2.expiresAt + 1), []);
        assert.equal((await store.getOrder(o2.id))?.status, 'fulfilled');
      },
    );

    withStore('outstanding maps each server to its outstanding ticket ids', async ({ store }) => {
      assert.equal(
        [...(await store.outstanding()).values()].reduce((s, x) => s + x.size, 0),
        0,
      );
      const ids: Record<string, string[]> = { a: [], b: [], c: [] };
      for (const server of ['a', 'b', 'b', 'c', 'c', 'c']) {
        ids[server]!.push((await reserve(store, (await newOrder(store)).id, server)).id);
      }
      const fin = ids.c![0]!;
      await store.applyTransferEvent(event(fin, 'fulfilled'));
      const out = await store.outstanding();
      assert.deepEqual([...(out.get('a') ?? [])].sort(), ids.a!.sort());
      assert.deepEqual([...(out.get('b') ?? [])].sort(), ids.b!.sort());
      assert.deepEqual([...(out.get('c') ?? [])].sort(), ids.c!.slice(1).sort());
      // The returned map is a snapshot: changing it changes nothing in the store.
      out.get('a')?.clear();
      assert.equal(await countOn(store, 'a'), 1);
    });

    withStore('ticketsOfOrder lists every ticket, oldest first', async ({ store }) => {
      const order = await newOrder(store);
      const ids = [];
      for (const [i, server] of ['a', 'b', 'a'].entries())
        ids.push((await reserve(store, order.id, server, ROOMY, T0 + i)).id);
      const tickets = await store.ticketsOfOrder(order.id);
      assert.deepEqual(
        tickets.map((t) => t.id),
        ids,
      );
      assert.deepEqual(
        tickets.map((t) => t.status),
        ['lapsed', 'lapsed', 'issued'],
      );
      assert.deepEqual(await store.ticketsOfOrder('no-such-order'), []);
    });

    withStore('waiting line: join, touch, hold, leave, earliest first', async ({ store }) => {
      assert.deepEqual(await store.lineFront(10), []);
      assert.equal(await store.lineLength(), 0);
      const a = await join(store, 'qa', T0, 12);
      assert.deepEqual(a, {
        token: 'qa',
        seq: a.seq,
        joinedAt: T0,
        lastSeenAt: T0,
        firstEstimateSeconds: 12,
      });
      const b = await join(store, 'qb', T0 + 1, 20);
      const c = await join(store, 'qc', T0 + 2, 30);
      assert.ok(a.seq < b.seq && b.seq < c.seq, 'seq strictly increasing');
      assert.deepEqual(await tokensInFront(store), ['qa', 'qb', 'qc']);
      const again = await store.joinLine({ token: 'qa', now: T0 + 50, firstEstimateSeconds: 99 }, LONG);
      assert.deepEqual(again, { kind: 'joined', entry: a, position: 1 }, 'joining twice keeps the place');
      assert.equal(await store.lineLength(), 3);

      const touched = await store.touchLine('qb', T0 + 100);
      assert.deepEqual(touched, { entry: { ...b, lastSeenAt: T0 + 100 }, position: 2 });
      assert.equal(await store.touchLine('nobody', T0), undefined);

      await store.setHeld('qa', T0 + 200);
      assert.equal((await store.lineFront(1))[0]?.heldSince, T0 + 200);
      assert.equal((await store.touchLine('qa', T0 + 201))?.entry.heldSince, T0 + 200);
      await store.setHeld('qa', undefined);
      assert.equal('heldSince' in ((await store.lineFront(1))[0] ?? {}), false);
      assert.equal('heldSince' in ((await store.findInLine('qa'))?.entry ?? {}), false);
      await store.setHeld('nobody', T0); // no-op, no throw
      assert.equal(await store.findInLine('nobody'), undefined);

      // A due time is kept until a touch gives another; a touch without one leaves it.
      assert.equal('dueAt' in ((await store.findInLine('qc'))?.entry ?? {}), false);
      assert.equal((await store.touchLine('qc', T0 + 210, T0 + 5210))?.entry.dueAt, T0 + 5210);
      assert.equal((await store.lineFront(3))[2]?.dueAt, T0 + 5210);
      const stillDue = await store.touchLine('qc', T0 + 220);
      assert.deepEqual(
        [stillDue?.entry.lastSeenAt, stillDue?.entry.dueAt, (await store.findInLine('qc'))?.entry.dueAt],
        [T0 + 220, T0 + 5210, T0 + 5210],
      );
      assert.equal((await store.touchLine('qc', T0 + 230, T0 + 1230))?.entry.dueAt, T0 + 1230);
      const dueJoin = await store.joinLine(
        { token: 'qz', now: T0 + 240, firstEstimateSeconds: 3, dueAt: T0 + 3240 },
        LONG,
      );
      assert.equal(dueJoin.kind === 'joined' ? dueJoin.entry.dueAt : undefined, T0 + 3240);
      assert.equal((await store.findInLine('qz'))?.entry.dueAt, T0 + 3240);
      await store.leaveLine('qz');

      const left = await store.leaveLine('qa');
      assert.equal(left?.token, 'qa');
      assert.equal(await store.leaveLine('qa'), undefined);
      assert.equal(await store.findInLine('qa'), undefined);
      const d = await join(store, 'qd', T0 + 300, 5);
      assert.ok(d.seq > c.seq);
      const rejoin = await store.joinLine({ token: 'qa', now: T0 + 301, firstEstimateSeconds: 5 }, LONG);
      assert.equal(rejoin.kind, 'joined');
      if (rejoin.kind !== 'joined') return;
      assert.ok(rejoin.entry.seq > d.seq, 'a token that left joins at the end');
      assert.equal(rejoin.position, 4);
      const front = await store.lineFront(10);
      assert.deepEqual(
        front.map((e) => e.token),
        ['qb', 'qc', 'qd', 'qa'],
      );
      assert.deepEqual(front[0], { ...b, lastSeenAt: T0 + 100 });
    });

    withStore('waiting line: positions are ranks after joins, leaves and sweeps', async ({ store }) => {
      const tokens = Array.from({ length: 30 }, (_, i) => `p${i}`);
      for (const [i, token] of tokens.entries()) {
        const r = await store.joinLine({ token, now: T0 + i, firstEstimateSeconds: 1 }, LONG);
        assert.equal(r.kind, 'joined');
        if (r.kind === 'joined') assert.equal(r.position, i + 1, 'a newcomer is last');
      }
      // Leaves from the front, the middle and the back.
      for (const token of ['p0', 'p7', 'p8', 'p15', 'p29']) assert.ok(await store.leaveLine(token));
      let expected = tokens.filter((t) => !['p0', 'p7', 'p8', 'p15', 'p29'].includes(t));
      const check = async () => {
        assert.equal(await store.lineLength(), expected.length);
        assert.deepEqual(await tokensInFront(store, 100), expected);
        for (const [i, token] of expected.entries()) {
          assert.equal((await store.findInLine(token))?.position, i + 1, `${token} at ${i + 1}`);
        }
      };
      await check();
      // Everyone but p3, p10, p20 polls; those three are swept (p20 never polled since joining).
      for (const token of expected) {
        if (!['p3', 'p10', 'p20'].includes(token)) await store.touchLine(token, T0 + 1000);
      }
      const swept = await store.sweepLine(T0 + 500, 100);
      assert.deepEqual(
        swept.map((e) => e.token),
        ['p3', 'p10', 'p20'],
      );
      expected = expected.filter((t) => !['p3', 'p10', 'p20'].includes(t));
      await check();
      const late = await store.joinLine({ token: 'late', now: T0 + 2000, firstEstimateSeconds: 1 }, LONG);
      assert.equal(late.kind === 'joined' && late.position, expected.length + 1);
      expected.push('late');
      await check();
    });

    withStore('waiting line: lineFront gives the first `limit`, earliest first', async ({ store }) => {
      for (let i = 0; i < 12; i++) await join(store, `f${i}`, T0 + i);
      await store.leaveLine('f1');
      await store.leaveLine('f2');
      assert.deepEqual(await tokensInFront(store, 3), ['f0', 'f3', 'f4']);
      assert.deepEqual(await tokensInFront(store, 1), ['f0']);
      assert.deepEqual(await tokensInFront(store, 0), []);
      assert.equal((await store.lineFront(100)).length, 10);
      const front = await store.lineFront(100);
      assert.ok(
        front.every((e, i) => i === 0 || e.seq > front[i - 1]!.seq),
        'in seq order',
      );
    });

    withStore('waiting line: maxLength is enforced, and frees up as waiters leave', async ({ store }) => {
      for (let i = 0; i < 3; i++) {
        const r = await store.joinLine({ token: `m${i}`, now: T0, firstEstimateSeconds: 1 }, 3);
        assert.equal(r.kind, 'joined');
      }
      assert.deepEqual(await store.joinLine({ token: 'm3', now: T0, firstEstimateSeconds: 1 }, 3), {
        kind: 'full',
        length: 3,
      });
      assert.equal(await store.findInLine('m3'), undefined, 'a refused join adds nothing');
      assert.equal(await store.lineLength(), 3);
      // One already in line is not refused: it keeps its place.
      const again = await store.joinLine({ token: 'm1', now: T0 + 1, firstEstimateSeconds: 1 }, 3);
      assert.equal(again.kind === 'joined' && again.position, 2);
      await store.leaveLine('m0');
      const r = await store.joinLine({ token: 'm3', now: T0 + 2, firstEstimateSeconds: 1 }, 3);
      assert.equal(r.kind === 'joined' && r.position, 3);
      assert.equal((await store.joinLine({ token: 'm4', now: T0, firstEstimateSeconds: 1 }, 3)).kind, 'full');
    });

    withStore(
      'waiting line: touch moves an entry back in the sweep order; find does not',
      async ({ store }) => {
        await join(store, 's1', T0);
        await join(store, 's2', T0 + 10);
        await join(store, 's3', T0 + 20);
        await join(store, 's4', T0 + 30);
        // findInLine does not count as seen: s1 stays the least recently seen.
        const found = await store.findInLine('s1');
        assert.equal(found?.entry.lastSeenAt, T0);
        assert.equal(found?.position, 1);
        const touched = await store.touchLine('s2', T0 + 100);
        assert.equal(touched?.entry.lastSeenAt, T0 + 100);
        assert.equal((await store.findInLine('s2'))?.entry.lastSeenAt, T0 + 100);
        await store.touchLine('s1', T0 + 50);
        // Nothing is last seen before T0: a sweep there removes nothing.
        assert.deepEqual(await store.sweepLine(T0, 10), []);
        // Strictly before: s3 (T0 + 20) goes at T0 + 21, not at T0 + 20.
        assert.deepEqual(
          (await store.sweepLine(T0 + 20, 10)).map((e) => e.token),
          [],
        );
        // Least recently seen first, at most `limit` at a time.
        const first = await store.sweepLine(T0 + 1000, 2);
        assert.deepEqual(
          first.map((e) => [e.token, e.lastSeenAt]),
          [
            ['s3', T0 + 20],
            ['s4', T0 + 30],
          ],
        );
        assert.deepEqual(
          (await store.sweepLine(T0 + 1000, 1)).map((e) => e.token),
          ['s1'],
        );
        assert.deepEqual(await tokensInFront(store), ['s2']);
        assert.equal((await store.findInLine('s2'))?.position, 1);
        assert.deepEqual(
          (await store.sweepLine(T0 + 1000, 10)).map((e) => e.token),
          ['s2'],
        );
        assert.equal(await store.lineLength(), 0);
        assert.deepEqual(await store.sweepLine(T0 + 1000, 10), [], 'nothing twice');
        // A swept token can join again, at the end.
        assert.equal(await store.touchLine('s1', T0 + 2000), undefined);
        assert.equal((await join(store, 's1', T0 + 2000)).token, 's1');
      },
    );

    withStore('reserveTicket names the tickets it lapsed', async ({ store }) => {
      const order = await newOrder(store);
      const first = await store.reserveTicket(ticketFor(order.id, 'a'), ROOMY);
      assert.equal(first.kind, 'reserved');
      if (first.kind !== 'reserved') return;
      assert.deepEqual(first.lapsed, [], 'nothing outstanding before');
      const t1 = first.ticket;
      const t2 = await reserve(store, order.id, 'b', ROOMY, T0 + 10);
      await store.applyTransferEvent(event(t2.id, 'started', 5, T0 + 20));
      // t1 lapsed when t2 came; only t2 (downloading) is outstanding now.
      const third = await store.reserveTicket(ticketFor(order.id, 'c', T0 + 30), ROOMY);
      assert.equal(third.kind, 'reserved');
      if (third.kind !== 'reserved') return;
      assert.deepEqual(third.lapsed, [
        { ...t2, status: 'lapsed', startedAt: T0 + 20, delivered: 5, finishedAt: T0 + 30 },
      ]);
      assert.deepEqual(
        third.order.tickets.map((t) => [t.id, t.status]),
        [
          [t1.id, 'lapsed'],
          [t2.id, 'lapsed'],
          [third.ticket.id, 'issued'],
        ],
      );
      // A fulfilled order's fresh ticket lapses nothing that was already final.
      await store.applyTransferEvent(event(third.ticket.id, 'fulfilled', 9, T0 + 40));
      const fourth = await store.reserveTicket(ticketFor(order.id, 'a', T0 + 50), ROOMY);
      assert.equal(fourth.kind === 'reserved' && fourth.lapsed.length, 0);
    });

    test('survives close and reopen', { timeout: 60_000 }, async (t) => {
      const s = await make();
      try {
        if (!s.reopen) {
          t.skip(`${name} keeps nothing across a reopen`);
          return;
        }
        const store1 = s.store;
        const kept = await newOrder(store1, { key: 'reopen-key', item: '/keep.bin' });
        const t1 = await reserve(store1, kept.id, 'a');
        const ev = event(t1.id, 'started', 77);
        await store1.applyTransferEvent(ev);
        const other = await newOrder(store1);
        const t2 = await reserve(store1, other.id, 'b');
        const fulfilled = await newOrder(store1);
        const t3 = await reserve(store1, fulfilled.id, 'b');
        await store1.applyTransferEvent(event(t3.id, 'fulfilled', 9));
        const q1 = await join(store1, 'q1', T0, 3);
        const q2 = await join(store1, 'q2', T0, 4);
        const q0 = await join(store1, 'q0', T0 + 1, 4);
        await store1.setHeld('q1', T0 + 5);
        await store1.leaveLine('q2');
        await store1.touchLine('q1', T0 + 9, T0 + 4009);
        const before = await store1.getOrder(kept.id);
        await store1.close();

        const store2 = await s.reopen();
        s.store = store2;
        assert.deepEqual(await store2.getOrder(kept.id), before);
        assert.equal((await store2.getOrder(fulfilled.id))?.status, 'fulfilled');
        assert.deepEqual(await store2.applyTransferEvent(ev), { applied: false, freedSlot: false });
        const dup = await store2.createOrder(
          {
            id: uid('o'),
            item: '/keep.bin',
            clientAddress: '192.0.2.1',
            createdAt: T0 + 1,
            idempotencyKey: 'reopen-key',
          },
          DAY,
        );
        assert.equal(dup.kind, 'existing');
        assert.equal(dup.order.id, kept.id);
        const out = await store2.outstanding();
        assert.deepEqual([...(out.get('a') ?? [])], [t1.id]);
        assert.deepEqual([...(out.get('b') ?? [])], [t2.id]);
        assert.deepEqual(await store2.lineFront(10), [
          { ...q1, heldSince: T0 + 5, lastSeenAt: T0 + 9, dueAt: T0 + 4009 },
          q0,
        ]);
        assert.equal((await store2.findInLine('q0'))?.position, 2);
        const q3 = await join(store2, 'q3', T0 + 20, 1);
        assert.ok(q3.seq > q2.seq, 'seq keeps increasing across a reopen');
        assert.equal((await store2.findInLine('q3'))?.position, 3);
        // The sweep order survives too: q0 (last seen T0 + 1) before q1 (T0 + 9).
        assert.deepEqual(
          (await store2.sweepLine(T0 + 10, 10)).map((e) => e.token),
          ['q0', 'q1'],
        );
        assert.equal((await store2.findInLine('q3'))?.position, 1);
        assert.deepEqual(
          (await store2.lapseUnclaimed(t2.claimBy)).map((t) => t.id),
          [t2.id],
        );
        assert.equal((await store2.reserveTicket(ticketFor(kept.id, 'c'), ROOMY)).kind, 'reserved');
      } finally {
        await s.cleanup();
      }
    });

    test('purchase grants: orders record iss and sub; a refund is durable and seen by a peer', {
      timeout: 60_000,
    }, async () => {
      const s = await make();
      const peer = s.peer ? await s.peer() : undefined;
      try {
        const purchase = { iss: 'https://shop.example.com', sub: uid('purchase') };
        const other = { iss: 'https://shop.example.com', sub: uid('purchase') };
        const make1 = (id: string, p: typeof purchase, key: string) =>
          s.store.createOrder(
            {
              id,
              item: '/paid/a.bin',
              clientAddress: '192.0.2.7',
              createdAt: T0,
              idempotencyKey: key,
              purchase: p,
            },
            DAY,
          );
        const a = await make1(uid('o'), purchase, uid('grant'));
        assert.equal(a.kind, 'created');
        assert.deepEqual(a.order.purchase, purchase);
        assert.deepEqual((await s.store.getOrder(a.order.id))?.purchase, purchase);
        const key = uid('grant');
        const b = await make1(uid('o'), purchase, key);
        // The same derived key again is the same order, not a third one of the purchase.
        const again = await make1(uid('o'), purchase, key);
        assert.equal(again.kind, 'existing');
        await make1(uid('o'), other, uid('grant'));
        const plain = await newOrder(s.store);
        assert.equal('purchase' in plain, false);
        assert.deepEqual((await s.store.ordersOfPurchase(purchase)).sort(), [a.order.id, b.order.id].sort());
        assert.equal(await s.store.isPurchaseRevoked(purchase), false);
        await s.store.revokePurchase(purchase, T0);
        await s.store.revokePurchase(purchase, T0 + 1);
        assert.equal(await s.store.isPurchaseRevoked(purchase), true);
        assert.equal(await s.store.isPurchaseRevoked(other), false);
        if (peer) {
          assert.equal(await peer.isPurchaseRevoked(purchase), true);
          assert.equal((await peer.ordersOfPurchase(purchase)).length, 2);
        }
        if (s.reopen) {
          await s.store.close();
          s.store = await s.reopen();
          assert.equal(await s.store.isPurchaseRevoked(purchase), true);
          assert.equal(await s.store.isPurchaseRevoked(other), false);
          assert.deepEqual(
            (await s.store.ordersOfPurchase(purchase)).sort(),
            [a.order.id, b.order.id].sort(),
          );
          assert.deepEqual((await s.store.getOrder(b.order.id))?.purchase, purchase);
        }
      } finally {
        await peer?.close();
        await s.cleanup();
      }
    });

    test('60 concurrent joins for a line of 25: exactly 25 get in, with distinct places', {
      timeout: 60_000,
    }, async () => {
      const s = await make();
      const peer = s.peer ? await s.peer() : undefined;
      try {
        const results = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            (peer && i % 2 === 1 ? peer : s.store).joinLine(
              { token: `race-${i}`, now: T0 + i, firstEstimateSeconds: 1 },
              25,
            ),
          ),
        );
        const joined = results.flatMap((r) => (r.kind === 'joined' ? [r] : []));
        assert.equal(joined.length, 25);
        assert.ok(results.every((r) => r.kind === 'joined' || r.length === 25));
        assert.deepEqual(
          joined.map((r) => r.position).sort((a, b) => a - b),
          Array.from({ length: 25 }, (_, i) => i + 1),
          'each newcomer was last when it joined',
        );
        assert.equal(await s.store.lineLength(), 25);
        if (peer) assert.equal(await peer.lineLength(), 25);
        const front = await s.store.lineFront(100);
        assert.deepEqual(
          front.map((e) => e.token),
          [...joined].sort((a, b) => a.position - b.position).map((r) => r.entry.token),
        );
      } finally {
        await peer?.close();
        await s.cleanup();
      }
    });

    test('500 concurrent reservations for 50 slots: exactly 50 win', { timeout: 120_000 }, async () => {
      const s = await make();
      const peer = s.peer ? await s.peer() : undefined;
      try {
        const limits = { capacity: 50, untracked: 0, maxTicketsPerOrder: 5 };
        const orders = [];
        for (let i = 0; i < 500; i++) orders.push(await newOrder(s.store));
        const results = await Promise.all(
          orders.map((o, i) =>
            (peer && i % 2 === 1 ? peer : s.store).reserveTicket(ticketFor(o.id, 'a'), limits),
          ),
        );
        const kinds = results.map((r) => r.kind);
        assert.equal(kinds.filter((k) => k === 'reserved').length, 50);
        assert.equal(kinds.filter((k) => k === 'full').length, 450);
        assert.equal(await countOn(s.store, 'a'), 50);
        if (peer) assert.equal(await countOn(peer, 'a'), 50);
        // The same race on one order: its ticket limit holds too.
        const one = await newOrder(s.store);
        const same = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            (peer && i % 2 === 1 ? peer : s.store).reserveTicket(ticketFor(one.id, 'b'), {
              ...limits,
              capacity: 100,
            }),
          ),
        );
        assert.equal(same.filter((r) => r.kind === 'reserved').length, 5);
        const tickets = await s.store.ticketsOfOrder(one.id);
        assert.equal(tickets.length, 5);
        assert.equal(
          tickets.filter((t) => t.status === 'issued').length,
          1,
          'only the latest stays outstanding',
        );
        assert.equal(await countOn(s.store, 'b'), 1);
      } finally {
        await peer?.close();
        await s.cleanup();
      }
    });
  });
}
