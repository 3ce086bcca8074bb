import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineIndex } from '../../src/store/deadline-index.js';

test('due hands back each tracked ticket once, when its earliest deadline has passed', () => {
  const d = new DeadlineIndex();
  d.track('a', 100);
  d.track('b', 50);
  d.track('a', 80); // moved earlier: queued again
  d.track('b', 70); // moved later: the earlier bound stands
  assert.deepEqual(d.due(49), []);
  assert.deepEqual(d.due(50), ['b']);
  assert.deepEqual(d.due(1_000), ['a'], 'a once, though queued twice');
  assert.deepEqual(d.due(1_000), []);
});

test('a forgotten ticket is not handed back; tracked anew, only its new deadline counts', () => {
  const d = new DeadlineIndex();
  d.track('a', 10);
  d.forget('a');
  assert.deepEqual(d.due(20), []);
  d.track('b', 10);
  d.forget('b');
  d.track('b', 30);
  assert.deepEqual(d.due(20), [], 'the stale entry at 10 is dropped');
  assert.deepEqual(d.due(30), ['b']);
});

test('a ticket handed back and tracked again with its later deadline comes back then', () => {
  const d = new DeadlineIndex();
  d.track('a', 10);
  assert.deepEqual(d.due(10), ['a']);
  d.track('a', 40); // not due after all: its transfer started, so expiresAt counts
  assert.deepEqual(d.due(39), []);
  assert.deepEqual(d.due(40), ['a']);
});

test('stale entries leave the heap when they come up', () => {
  const d = new DeadlineIndex();
  for (let i = 0; i < 1_000; i++) {
    d.track(`t${i}`, i);
    d.forget(`t${i}`);
  }
  assert.equal(d.queued, 1_000);
  assert.deepEqual(d.due(10_000), []);
  assert.equal(d.queued, 0);
});
