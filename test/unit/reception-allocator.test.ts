import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allocate, freeSlotsOf, loadOf, type ServerSnapshot } from '../../src/reception/allocator.js';

function server(id: string, over: Partial<ServerSnapshot> = {}): ServerSnapshot {
  return {
    id,
    status: 'up',
    suspect: false,
    draining: false,
    holdsItem: true,
    capacity: 10,
    configuredCapacity: 10,
    outstanding: 0,
    untracked: 0,
    held: 0,
    rssBytes: null,
    memoryLimitBytes: null,
    distance: null,
    ...over,
  };
}

const verdict = (a: ReturnType<typeof allocate>, id: string) => a.verdicts.find((v) => v.server === id)!;

describe('allocator', () => {
  it('picks the least-loaded server and ranks the rest by load', () => {
    const a = allocate({
      servers: [
        server('a', { outstanding: 5 }),
        server('b', { outstanding: 2 }),
        server('c', { outstanding: 7 }),
      ],
      tieTolerance: 0.05,
    });
    assert.equal(a.choice, 'b');
    assert.deepEqual(a.ranked, ['b', 'a', 'c']);
    assert.match(verdict(a, 'b').reason, /^chosen: load 0\.20/);
    assert.match(verdict(a, 'a').reason, /^candidate #2/);
  });

  it('breaks a tie within tieTolerance by the smaller distance', () => {
    const servers = [
      server('a', { outstanding: 1, distance: 30 }),
      server('b', { outstanding: 1, distance: 10 }),
      server('c', { outstanding: 0, distance: 20 }),
    ];
    // Loads 0.1, 0.1, 0: with tolerance 0.1 all tie, and b is nearest.
    assert.equal(allocate({ servers, tieTolerance: 0.1 }).choice, 'b');
    // With tolerance 0.05 only c is within reach of the least load.
    const strict = allocate({ servers, tieTolerance: 0.05 });
    assert.equal(strict.choice, 'c');
    assert.deepEqual(strict.ranked, ['c', 'b', 'a']);
    assert.match(verdict(strict, 'b').reason, /above the least/);
  });

  it('treats an unknown distance as farthest', () => {
    const a = allocate({ servers: [server('a'), server('b', { distance: 5 })], tieTolerance: 0.05 });
    assert.equal(a.choice, 'b');
  });

  it('counts memory share when a memory limit is known', () => {
    const mb = 1024 * 1024;
    const a = allocate({
      servers: [
        server('a', { outstanding: 1, rssBytes: 90 * mb, memoryLimitBytes: 100 * mb }),
        server('b', { outstanding: 5 }),
      ],
      tieTolerance: 0.05,
    });
    assert.equal(
      loadOf(server('a', { outstanding: 1, rssBytes: 90 * mb, memoryLimitBytes: 100 * mb })).load,
      0.9,
    );
    assert.equal(a.choice, 'b');
    const full = allocate({
      servers: [server('a', { rssBytes: 100 * mb, memoryLimitBytes: 100 * mb })],
      tieTolerance: 0.05,
    });
    assert.equal(full.choice, undefined);
    assert.match(verdict(full, 'a').reason, /memory full: 100%/);
  });

  it('counts reservations, untracked transfers and held slots against capacity', () => {
    const s = server('a', { capacity: 4, configuredCapacity: 4, outstanding: 2, untracked: 1, held: 1 });
    assert.equal(freeSlotsOf(s), 0);
    const a = allocate({ servers: [s], tieTolerance: 0.05 });
    assert.equal(a.choice, undefined);
    assert.match(verdict(a, 'a').reason, /full: 4 slots, taken by 2 tickets, 1 untracked transfers, 1 held/);
    assert.equal(freeSlotsOf(server('a', { capacity: 4, outstanding: 3 })), 1);
  });

  it('never chooses a down, unknown, suspect or draining server, nor one without the item, and says why', () => {
    const a = allocate({
      servers: [
        server('down', { status: 'down' }),
        server('new', { status: 'unknown' }),
        server('sus', { suspect: true }),
        server('drain', { draining: true }),
        server('none', { holdsItem: false }),
        server('diff', { holdsItem: false, itemExclusion: 'copy differs from the majority' }),
        server('ok', { outstanding: 9 }),
      ],
      tieTolerance: 0.05,
    });
    assert.equal(a.choice, 'ok');
    assert.deepEqual(a.ranked, ['ok']);
    assert.equal(verdict(a, 'down').reason, 'down');
    assert.equal(verdict(a, 'new').reason, 'no load report yet');
    assert.match(verdict(a, 'sus').reason, /^suspect/);
    assert.match(verdict(a, 'drain').reason, /^draining/);
    assert.equal(verdict(a, 'none').reason, 'does not hold the item');
    assert.equal(verdict(a, 'diff').reason, 'copy differs from the majority');
    for (const v of a.verdicts) assert.equal(v.candidate, v.server === 'ok');
  });

  it('is busy (no choice) when every candidate is full', () => {
    const a = allocate({
      servers: [
        server('a', { outstanding: 10 }),
        server('b', { capacity: 3, configuredCapacity: 10, outstanding: 3 }),
      ],
      tieTolerance: 0.05,
    });
    assert.equal(a.choice, undefined);
    assert.deepEqual(a.ranked, []);
    assert.match(verdict(a, 'b').reason, /ramping in: 3 of 10/);
  });

  it('puts avoided servers last, using them only when no other has room', () => {
    const servers = [server('a', { distance: 1 }), server('b', { outstanding: 4, distance: 2 })];
    const a = allocate({ servers, tieTolerance: 0.05, avoid: new Set(['a']) });
    assert.deepEqual(a.ranked, ['b', 'a']);
    assert.match(verdict(a, 'a').reason, /previous server/);
    const only = allocate({
      servers: [server('a'), server('b', { outstanding: 10 })],
      tieTolerance: 0.05,
      avoid: new Set(['a']),
    });
    assert.equal(only.choice, 'a');
  });

  it('a tie with equal distances falls back to deployment order', () => {
    const a = allocate({ servers: [server('x'), server('y'), server('z')], tieTolerance: 0 });
    assert.deepEqual(a.ranked, ['x', 'y', 'z']);
  });
});
