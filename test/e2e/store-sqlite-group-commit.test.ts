/**
 * The `sqlite:` store's group commit (src/store/sqlite.ts): the calls of one event-loop turn
 * share one transaction and resolve only after its COMMIT; one bad call is undone alone; and a
 * COMMIT that fails fails every call of its batch as `store_unavailable`, leaves nothing of it in
 * the file, and leaves the in-memory index (outstanding tickets, the line) as the file has it.
 * The failure is real: this test process's own file size limit (RLIMIT_FSIZE, via `prlimit`) is
 * lowered to one byte after the batch's statements ran and before its COMMIT, so the WAL write
 * fails in the kernel as on a full disk (Node ignores SIGXFSZ, so the process lives on).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isStoreUnavailable, openStore, type Store } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { hasPrlimit, setFsize } from '../helpers/prlimit.js';

const LIMITS = { capacity: 5, untracked: 0, maxTicketsPerOrder: 5 };

function order(id: string, at = 1) {
  return { id, item: '/x', clientAddress: '127.0.0.1', createdAt: at };
}

function ticket(id: string, orderId: string, server = 'a') {
  return { id, orderId, server, url: `u/${id}`, issuedAt: 1, notBefore: 1, expiresAt: 1e12, claimBy: 1e12 };
}

async function withStore(run: (store: Store, reopen: () => Promise<Store>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-group-'));
  const url = `sqlite:${path.join(dir, 'reception.db')}`;
  const store = await openStore(url, { logger: silentLogger });
  try {
    await run(store, async () => {
      await store.close();
      return openStore(url, { logger: silentLogger });
    });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('sqlite: calls of one turn share a commit, and a bad one is undone alone', async () => {
  await withStore(async (store, reopen) => {
    await store.createOrder(order('o0'), 60_000);
    await store.reserveTicket(ticket('t0', 'o0'), LIMITS);
    // One turn: two new orders, a reservation whose ticket id is taken (its savepoint rolls back),
    // and one that is fine; the later reservation sees the earlier one's slot taken.
    const calls = [
      store.createOrder(order('o1'), 60_000),
      store.createOrder(order('o2'), 60_000),
      store.createOrder(order('o3'), 60_000),
      store.createOrder(order('o4'), 60_000),
      store.reserveTicket(ticket('t0', 'o1'), LIMITS),
      store.reserveTicket(ticket('t1', 'o1'), LIMITS),
      store.reserveTicket(ticket('t2', 'o2'), { ...LIMITS, capacity: 3 }),
      store.reserveTicket(ticket('t3', 'o3', 'b'), { ...LIMITS, capacity: 1 }),
      store.reserveTicket(ticket('t4', 'o4'), { ...LIMITS, capacity: 3 }),
    ];
    const settled = await Promise.allSettled(calls);
    assert.deepEqual(
      settled.map((s) => s.status),
      [
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ],
    );
    assert.match(String((settled[4] as PromiseRejectedResult).reason), /already exists/);
    // capacity 3 on `a`: t0 and t1 were there, so t2 is the third; `b` was empty.
    const kind = (i: number) => (settled[i] as PromiseFulfilledResult<{ kind: string }>).value.kind;
    assert.equal(kind(6), 'reserved');
    // …and the one after it finds `a` full, though nothing of the turn is committed yet.
    assert.equal(kind(8), 'full');
    const again = await reopen();
    try {
      assert.deepEqual([...((await again.outstanding()).get('a') ?? [])].sort(), ['t0', 't1', 't2']);
      assert.deepEqual([...((await again.outstanding()).get('b') ?? [])], ['t3']);
      assert.equal((await again.getOrder('o1'))?.tickets.length, 1);
    } finally {
      await again.close();
    }
  });
});

test('sqlite: a failed COMMIT fails its whole batch, and the index is the file again', {
  skip: hasPrlimit() ? false : 'prlimit (util-linux) is not installed',
}, async () => {
  await withStore(async (store, reopen) => {
    await store.createOrder(order('o0'), 60_000);
    await store.createOrder(order('o1'), 60_000);
    await store.reserveTicket(ticket('t0', 'o0'), LIMITS);
    await store.joinLine({ token: 'q0', now: 1, firstEstimateSeconds: 1 }, 100);

    // One turn's calls; the limit is lowered before this turn ends, so before the COMMIT.
    const calls: Promise<unknown>[] = [
      store.createOrder(order('o2'), 60_000),
      store.reserveTicket(ticket('t1', 'o1'), LIMITS),
      store.reserveTicket(ticket('t2', 'o0', 'b'), LIMITS),
      store.joinLine({ token: 'q1', now: 2, firstEstimateSeconds: 1 }, 100),
      store.leaveLine('q0'),
      store.getOrder('o1'),
    ];
    setFsize(process.pid, 1);
    let settled: PromiseSettledResult<unknown>[];
    try {
      settled = await Promise.allSettled(calls);
    } finally {
      setFsize(process.pid, 'unlimited');
    }
    for (const [i, s] of settled.entries()) {
      assert.equal(s.status, 'rejected', `call ${i} of the failed batch`);
      assert.ok(isStoreUnavailable((s as PromiseRejectedResult).reason), `call ${i}: store_unavailable`);
    }

    // The index is what the file holds: the batch's reservations and line changes are gone.
    const outstanding = await store.outstanding();
    assert.deepEqual([...(outstanding.get('a') ?? [])], ['t0']);
    assert.equal(outstanding.get('b'), undefined);
    assert.deepEqual(
      (await store.lineFront(10)).map((e) => e.token),
      ['q0'],
    );
    assert.equal(await store.getOrder('o2'), undefined);
    assert.equal((await store.getOrder('o1'))?.tickets.length, 0);

    // Writes are taken again, and capacity counts only what was stored: 4 more fit on `a`, not 3.
    for (const [i, id] of ['o1', 'o3', 'o4', 'o5'].entries()) {
      if (id !== 'o1') await store.createOrder(order(id), 60_000);
      const r = await store.reserveTicket(ticket(`n${i}`, id), LIMITS);
      assert.equal(r.kind, 'reserved', `reservation ${i}`);
    }
    await store.createOrder(order('o6'), 60_000);
    assert.equal((await store.reserveTicket(ticket('n9', 'o6'), LIMITS)).kind, 'full');

    const again = await reopen();
    try {
      assert.equal(await again.getOrder('o2'), undefined);
      assert.deepEqual([...((await again.outstanding()).get('a') ?? [])].sort(), [
        'n0',
        'n1',
        'n2',
        'n3',
        't0',
      ]);
      assert.deepEqual(
        (await again.lineFront(10)).map((e) => e.token),
        ['q0'],
      );
    } finally {
      await again.close();
    }
  });
});
