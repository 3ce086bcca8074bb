/**
 * `src/reception/unused-tickets.ts` with the real slot ledger and the `memory:` store: while
 * anyone waits, a ticket unused for `claimSecondsWhileWaiting` frees its slot; with nobody
 * waiting, or once used, or while its server reports it in use, it keeps it. A freed ticket is
 * revoked on the content servers until it would have expired (plus the clock skew).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Revocation } from '../../src/protocol/internal.js';
import { SlotLedger } from '../../src/reception/slot-ledger.js';
import { buildUnusedTickets } from '../../src/reception/unused-tickets.js';
import { openStore } from '../../src/store/index.js';
import type { Store, TicketRecord } from '../../src/store/types.js';
import { silentLogger } from '../../src/util/log.js';

const T0 = 1_000_000;

async function ticketed(
  store: Store,
  ledger: SlotLedger,
  id: string,
  issuedAt: number,
  notBefore = issuedAt,
) {
  await store.createOrder(
    { id: `o-${id}`, item: '/x', clientAddress: '192.0.2.1', createdAt: issuedAt },
    60_000,
  );
  const r = await store.reserveTicket(
    {
      id,
      orderId: `o-${id}`,
      server: 'a',
      url: `http://a/x?t=${id}`,
      issuedAt,
      notBefore,
      expiresAt: issuedAt + 600_000,
      claimBy: notBefore + 30_000,
    },
    { capacity: 10, untracked: 0, maxTicketsPerOrder: 5 },
  );
  assert.equal(r.kind, 'reserved', JSON.stringify(r));
  if (r.kind === 'reserved') ledger.apply({ kind: 'reserved', ticket: r.ticket, lapsed: [], at: issuedAt });
}

test('while anyone waits, unused tickets free their slots after claimSecondsWhileWaiting, and only then', async () => {
  const store = await openStore('memory:', { logger: silentLogger });
  const ledger = new SlotLedger();
  const reported: string[] = [];
  const revoked: Revocation[] = [];
  const unused = buildUnusedTickets({
    store,
    ledger,
    logger: silentLogger,
    claimSeconds: 30,
    claimSecondsWhileWaiting: 5,
    inUse: () => reported,
    revoke: async (r) => revoked.push(...r),
    clockSkewSeconds: 2,
  });
  try {
    await ticketed(store, ledger, 'idle', T0);
    await ticketed(store, ledger, 'used', T0);
    await ticketed(store, ledger, 'racing', T0);
    await ticketed(store, ledger, 'later', T0, T0 + 4000);
    const started = await store.applyTransferEvent({
      eventId: 'e1',
      ticketId: 'used',
      type: 'started',
      delivered: 0,
      at: T0 + 100,
    });
    assert.ok(started);
    ledger.started('used', 'a', T0 + 100);
    // Its server already serves it; the `started` event is still on its way.
    reported.push('racing');

    assert.deepEqual(await unused.lapse(T0 + 20_000, 0), [], 'nobody waits: the full claim stands');
    assert.deepEqual(await unused.lapse(T0 + 5000, 3), [], 'not unused for 5 s yet');
    const ended: TicketRecord[] = await unused.lapse(T0 + 5001, 3);
    assert.deepEqual(
      ended.map((t) => [t.id, t.status]),
      [['idle', 'lapsed']],
    );
    assert.equal(ledger.outstanding('a'), 3);
    assert.deepEqual(
      revoked,
      [{ kind: 'ticket', ticketId: 'idle', until: Math.ceil((T0 + 600_000) / 1000) + 2 }],
      'a late claim of a freed ticket is refused, so it can neither take room given to the next waiter nor count past the cap',
    );
    assert.deepEqual(
      (await unused.lapse(T0 + 9001, 3)).map((t) => t.id),
      ['later'],
      'the window starts when the ticket can first be used',
    );
    assert.equal((await store.getOrder('o-idle'))?.status, 'lapsed');
    assert.deepEqual(
      revoked.map((r) => (r.kind === 'ticket' ? r.ticketId : r.orderId)),
      ['idle', 'later'],
    );
  } finally {
    await store.close();
  }
});

test('claimSecondsWhileWaiting at or above claimSeconds changes nothing', async () => {
  const store = await openStore('memory:', { logger: silentLogger });
  const ledger = new SlotLedger();
  const unused = buildUnusedTickets({
    store,
    ledger,
    logger: silentLogger,
    claimSeconds: 10,
    claimSecondsWhileWaiting: 10,
    inUse: () => undefined,
    revoke: async () => assert.fail('nothing is freed, so nothing is revoked'),
    clockSkewSeconds: 2,
  });
  try {
    await ticketed(store, ledger, 'idle', T0);
    assert.deepEqual(await unused.lapse(T0 + 9999, 5), []);
  } finally {
    await store.close();
  }
});

test('the window stretches to twice what used tickets lately took to be used, up to 5 × its setting', async () => {
  const store = await openStore('memory:', { logger: silentLogger });
  const ledger = new SlotLedger();
  const unused = buildUnusedTickets({
    store,
    ledger,
    logger: silentLogger,
    claimSeconds: 30,
    claimSecondsWhileWaiting: 2,
    inUse: () => [],
    revoke: async () => {},
    clockSkewSeconds: 2,
  });
  try {
    assert.equal(unused.windowMs(), 2000, 'no record yet: the configured window');
    // A loaded rush: honest buyers start 2.5–3 s after issue (answer, connect, the event's trip).
    for (let i = 0; i < 40; i++) {
      ledger.reserved({ id: `h${i}`, server: 'b', issuedAt: T0 - 10_000 });
      ledger.started(`h${i}`, 'b', T0 - 10_000 + 2500 + (i % 6) * 100);
    }
    assert.equal(unused.windowMs(), 6000, '2 × the 95th percentile, 3 s');
    await ticketed(store, ledger, 'slow', T0);
    assert.deepEqual(await unused.lapse(T0 + 4000, 3), [], 'an honest buyer 4 s late keeps its ticket');
    const ended = await unused.lapse(T0 + 6500, 3);
    assert.deepEqual(
      ended.map((t) => t.id),
      ['slow'],
      'past the stretched window it is freed',
    );
    // Never past 5 × the setting, however slow the record (late users cannot ratchet it up).
    for (let i = 0; i < 300; i++) {
      ledger.reserved({ id: `s${i}`, server: 'b', issuedAt: T0 });
      ledger.started(`s${i}`, 'b', T0 + 40_000);
    }
    assert.equal(unused.windowMs(), 10_000);
  } finally {
    await store.close();
  }
});
