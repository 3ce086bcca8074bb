/**
 * The pure pieces of `rushgate rush` at scale: every buyer's own loopback address (distinct, in
 * 127.0.0.0/8, clear of 127.0.0.x and of each /24's network and broadcast addresses), which URLs
 * count as loopback, and one reading of the reception's `/status` as usable and used slots.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buyerAddress, checkRushOptions, isLoopbackV4Url, slotSampleOf } from '../../src/client/rush.js';

test('10,000 buyers get 10,000 distinct loopback addresses, none a network or broadcast address', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const a = buyerAddress(i);
    const parts = a.split('.').map(Number);
    assert.equal(parts.length, 4);
    assert.equal(parts[0], 127);
    assert.ok(parts[1]! >= 1, `${a} clear of 127.0.0.x`);
    assert.ok(parts[3]! >= 1 && parts[3]! <= 254, `${a} is a host address`);
    seen.add(a);
  }
  assert.equal(seen.size, 10_000);
  assert.equal(buyerAddress(0), '127.1.0.1');
  assert.equal(buyerAddress(254), '127.1.1.1');
});

test('loopback: an IPv4 literal in 127/8 only', () => {
  assert.ok(isLoopbackV4Url('http://127.0.0.1:8080/x'));
  assert.ok(isLoopbackV4Url('http://127.9.8.7/x'));
  assert.ok(!isLoopbackV4Url('http://localhost:8080/x'));
  assert.ok(!isLoopbackV4Url('http://[::1]:8080/x'));
  assert.ok(!isLoopbackV4Url('https://example.com/x'));
  assert.ok(!isLoopbackV4Url('nope'));
});

test('a /status reading: usable servers only, used slots capped at capacity', () => {
  const s = slotSampleOf(
    {
      servers: [
        { health: 'up', capacity: 4, usableCapacity: 3, outstanding: 5 },
        { health: 'up', capacity: 2, outstanding: 1 },
        { health: 'down', capacity: 9, outstanding: 0 },
        { health: 'up', draining: true, capacity: 9, outstanding: 9 },
      ],
      queue: { length: 7 },
    },
    42,
  );
  assert.deepEqual(s, { at: 42, waiting: 7, usable: 5, used: 4 });
  assert.equal(slotSampleOf({ servers: [] }, 0), undefined, 'no queue length: not a reading');
  assert.equal(slotSampleOf('nope', 0), undefined);
});

test('options: up to 10,000 at once; a rate and a status URL are checked', () => {
  const ok = { url: 'http://127.0.0.1:1/x', clients: 10_000, concurrency: 10_000, maxSeconds: 60 };
  checkRushOptions(ok);
  assert.throws(() => checkRushOptions({ ...ok, concurrency: 10_001 }), /--concurrency/);
  assert.throws(() => checkRushOptions({ ...ok, rate: 0 }), /--rate/);
  assert.throws(() => checkRushOptions({ ...ok, statusUrl: 'ftp://x' }), /--status/);
});
