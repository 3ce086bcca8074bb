/** The pure rule of `src/reception/lost-tickets.ts`: when a server's tickets are ended, and why. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadReport } from '../../src/protocol/internal.js';
import { verdict } from '../../src/reception/lost-tickets.js';

const report = (instanceId: string | undefined, activeTickets: string[] = []): LoadReport => ({
  serverId: 'a',
  ...(instanceId === undefined ? {} : { instanceId }),
  at: 0,
  active: activeTickets.length,
  activeTickets,
  untrackedActive: 0,
  capacity: 1,
  rssBytes: 0,
  memoryLimitBytes: null,
  bytesPerSecond: 0,
  serviceTimesMs: [],
  draining: false,
  catalogVersion: 'v',
});
const base = { lastGoodAt: 1000, sweptForSilenceAt: undefined, now: 2000, claimMs: 30_000 };

test('a new instance id ends the old tickets, keeping those the new instance serves', () => {
  const v = verdict({ ...base, previous: report('i1'), current: report('i2', ['t9']) });
  assert.equal(v.kind, 'restarted');
  assert.deepEqual(v.kind === 'restarted' ? [...v.keep] : [], ['t9']);
});

test('the same instance, a first report, or a server without ids: nothing ends', () => {
  assert.equal(verdict({ ...base, previous: report('i1'), current: report('i1') }).kind, 'none');
  assert.equal(verdict({ ...base, previous: undefined, current: report('i1') }).kind, 'none');
  assert.equal(verdict({ ...base, previous: report(undefined), current: report('i2') }).kind, 'none');
});

test('silent longer than claimSeconds: ended once per silence, not before', () => {
  const silent = { ...base, previous: report('i1'), current: undefined };
  assert.equal(verdict({ ...silent, now: 1000 + 30_000 }).kind, 'none', 'exactly claimSeconds is not longer');
  assert.equal(verdict({ ...silent, now: 1000 + 30_001 }).kind, 'silent');
  assert.equal(verdict({ ...silent, now: 99_000, sweptForSilenceAt: 40_000 }).kind, 'none', 'already swept');
  assert.equal(
    verdict({ ...silent, lastGoodAt: 50_000, now: 99_000, sweptForSilenceAt: 40_000 }).kind,
    'silent',
    'a new silence after a good report',
  );
  assert.equal(verdict({ ...silent, lastGoodAt: undefined, now: 99_000 }).kind, 'none', 'never heard from');
});
