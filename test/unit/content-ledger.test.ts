/**
 * The delivery ledger (src/content/delivery-ledger.ts): interval union across overlapping,
 * parallel and interrupted ranges, fulfilment exactly once, started/abandoned per idle spell,
 * the interval cap, and dropping expired entries. Includes a randomized check of the interval
 * union against a byte map.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  coveredBytes,
  DeliveryLedger,
  insertInterval,
  type LedgerTicket,
} from '../../src/content/delivery-ledger.js';

const T0 = 1_700_000_000_000;
const ticket = (over: Partial<LedgerTicket> = {}): LedgerTicket => ({
  jti: 't1',
  oid: 'o1',
  path: '/x.bin',
  size: 100,
  exp: Math.floor(T0 / 1000) + 600,
  ...over,
});

describe('insertInterval', () => {
  test('merges overlapping and adjacent intervals and returns only new bytes', () => {
    const list: number[] = [];
    assert.equal(insertInterval(list, 10, 20), 10);
    assert.equal(insertInterval(list, 30, 40), 10);
    assert.deepEqual(list, [10, 20, 30, 40]);
    assert.equal(insertInterval(list, 15, 35), 10);
    assert.deepEqual(list, [10, 40]);
    assert.equal(insertInterval(list, 40, 45), 5, 'adjacent on the right');
    assert.equal(insertInterval(list, 5, 10), 5, 'adjacent on the left');
    assert.deepEqual(list, [5, 45]);
    assert.equal(insertInterval(list, 0, 100), 60);
    assert.deepEqual(list, [0, 100]);
    assert.equal(insertInterval(list, 20, 30), 0);
    assert.equal(insertInterval(list, 7, 7), 0, 'empty interval');
  });

  test('refuses a new disjoint interval past the cap, still merges touching ones', () => {
    const list: number[] = [];
    insertInterval(list, 0, 1, 2);
    insertInterval(list, 10, 11, 2);
    assert.equal(insertInterval(list, 20, 21, 2), 0);
    assert.deepEqual(list, [0, 1, 10, 11]);
    assert.equal(insertInterval(list, 1, 5, 2), 4);
    assert.deepEqual(list, [0, 5, 10, 11]);
  });

  test('matches a byte map for random interval sequences', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc
            .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 40 }))
            .map(([s, l]) => [s, s + l]),
          { maxLength: 60 },
        ),
        (intervals) => {
          const list: number[] = [];
          const bytes = new Uint8Array(260);
          let total = 0;
          for (const [s, e] of intervals as [number, number][]) {
            let fresh = 0;
            for (let i = s; i < e; i++) if (!bytes[i]) fresh++;
            bytes.fill(1, s, e);
            assert.equal(insertInterval(list, s, e), fresh);
            total += fresh;
          }
          assert.equal(coveredBytes(list), total);
          for (let i = 2; i < list.length; i += 2) assert.ok((list[i] as number) > (list[i - 1] as number));
        },
      ),
    );
  });
});

describe('DeliveryLedger', () => {
  test('two ranges of one ticket fulfil it once, with the service time', () => {
    const l = new DeliveryLedger();
    assert.equal(l.beginTransfer(ticket(), T0).started, true);
    assert.equal(l.recordBytes('t1', 0, 50, T0 + 10).fulfilled, false);
    l.endTransfer('t1', T0 + 10);
    assert.equal(l.beginTransfer(ticket(), T0 + 20).started, false);
    const r = l.recordBytes('t1', 50, 100, T0 + 30);
    assert.deepEqual(r, { delivered: 100, fulfilled: true, durationMs: 20 });
    assert.equal(l.recordBytes('t1', 0, 100, T0 + 40).fulfilled, false, 'fulfilled only once');
  });

  test('parallel transfers, overlap and an interrupted one add up', () => {
    const l = new DeliveryLedger();
    l.beginTransfer(ticket(), T0);
    l.beginTransfer(ticket(), T0);
    l.beginTransfer(ticket(), T0);
    assert.equal(l.serving, 1, 'one client');
    assert.equal(l.transfers, 3);
    l.recordBytes('t1', 0, 40, T0);
    l.recordBytes('t1', 30, 60, T0); // overlap
    l.recordBytes('t1', 60, 70, T0); // then cut short
    l.endTransfer('t1', T0);
    assert.equal(l.snapshot('t1')?.delivered, 70);
    assert.equal(l.recordBytes('t1', 70, 100, T0 + 5).fulfilled, true);
  });

  test('an empty item is fulfilled by a completed body', () => {
    const l = new DeliveryLedger();
    l.beginTransfer(ticket({ size: 0 }), T0);
    assert.equal(l.recordBytes('t1', 0, 0, T0).fulfilled, true);
  });

  test('bytes past the item size are clamped', () => {
    const l = new DeliveryLedger();
    l.beginTransfer(ticket(), T0);
    assert.equal(l.recordBytes('t1', 90, 500, T0).delivered, 10);
  });

  test('serving counts tickets, not transfers, plus untracked transfers', () => {
    const l = new DeliveryLedger();
    l.beginTransfer(ticket(), T0);
    l.beginTransfer(ticket(), T0);
    l.beginTransfer(ticket({ jti: 't2' }), T0);
    l.beginUntracked();
    assert.equal(l.serving, 3);
    assert.equal(l.transfers, 4);
    assert.deepEqual(l.activeTickets().sort(), ['t1', 't2']);
    assert.equal(l.isActive('t1'), true);
    l.endTransfer('t1', T0);
    assert.equal(l.serving, 3);
    l.endTransfer('t1', T0);
    l.endUntracked();
    l.endUntracked(); // extra end is harmless
    assert.equal(l.serving, 1);
    assert.equal(l.isActive('t1'), false);
    assert.equal(l.untrackedActive, 0);
  });

  test('abandoned once per idle spell at claimMs, started again when the client returns', () => {
    const l = new DeliveryLedger();
    const opts = { claimMs: 30_000, skewMs: 30_000 };
    l.beginTransfer(ticket(), T0);
    l.recordBytes('t1', 0, 10, T0);
    assert.equal(l.sweep(T0 + 60_000, opts).abandoned.length, 0, 'a transfer is in progress');
    l.endTransfer('t1', T0 + 1000);
    assert.equal(l.sweep(T0 + 30_999, opts).abandoned.length, 0);
    const { abandoned } = l.sweep(T0 + 31_000, opts);
    assert.equal(abandoned.length, 1);
    assert.equal(abandoned[0]?.delivered, 10);
    assert.equal(l.sweep(T0 + 90_000, opts).abandoned.length, 0, 'reported once');
    assert.equal(l.beginTransfer(ticket(), T0 + 100_000).started, true);
    assert.equal(l.recordBytes('t1', 10, 100, T0 + 100_001).fulfilled, true, 'earlier bytes still count');
  });

  test('a fulfilled ticket is never abandoned; entries go at exp + skew once idle', () => {
    const l = new DeliveryLedger();
    const opts = { claimMs: 1000, skewMs: 30_000 };
    const t = ticket({ exp: Math.floor(T0 / 1000) + 10 });
    l.beginTransfer(t, T0);
    l.recordBytes('t1', 0, 100, T0);
    l.endTransfer('t1', T0);
    assert.equal(l.sweep(T0 + 5000, opts).abandoned.length, 0);
    assert.equal(l.sweep(T0 + 39_999, opts).dropped, 0);
    assert.equal(l.sweep(T0 + 40_000, opts).dropped, 1);
    assert.equal(l.size, 0);
  });

  test('an expiring unfinished entry is reported abandoned on the way out', () => {
    const l = new DeliveryLedger();
    const t = ticket({ exp: Math.floor(T0 / 1000) + 10 });
    l.beginTransfer(t, T0);
    l.endTransfer('t1', T0);
    const r = l.sweep(T0 + 10_000, { claimMs: 60_000, skewMs: 0 });
    assert.equal(r.abandoned.length, 1);
    assert.equal(r.dropped, 1);
  });

  test('the interval cap under-counts instead of growing', () => {
    const l = new DeliveryLedger({ maxIntervals: 3 });
    l.beginTransfer(ticket(), T0);
    for (let i = 0; i < 10; i++) l.recordBytes('t1', i * 10, i * 10 + 1, T0);
    assert.equal(l.snapshot('t1')?.delivered, 3);
  });
});
