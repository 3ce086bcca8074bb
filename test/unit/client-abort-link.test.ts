/**
 * `linkSignal`: aborts with the caller's reason or on its timer, tells which, and once done
 * leaves nothing behind on the caller's long-lived signal (the leak `AbortSignal.any` has on
 * Node 20, which a rush of thousands of buyers under one stop signal turned into a gigabyte).
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { linkSignal, signalFanout } from '../../src/client/abort-link.js';

test('follows the caller: aborted with its reason, not timed out', () => {
  const outer = new AbortController();
  const link = linkSignal(outer.signal, 60_000);
  outer.abort(new Error('stop'));
  assert.equal(link.signal.aborted, true);
  assert.equal((link.signal.reason as Error).message, 'stop');
  assert.equal(link.timedOut, false);
  link.done();
});

test('times out on its own', async () => {
  const link = linkSignal(undefined, 5);
  await new Promise((resolve) => link.signal.addEventListener('abort', resolve, { once: true }));
  assert.equal(link.timedOut, true);
  assert.equal((link.signal.reason as DOMException).name, 'TimeoutError');
  link.done();
});

test('an already aborted caller aborts it at once', () => {
  const outer = new AbortController();
  outer.abort(new Error('gone'));
  const link = linkSignal(outer.signal, 60_000);
  assert.equal(link.signal.aborted, true);
  link.done();
});

test('done() leaves no listener on the caller signal, however many links were made', () => {
  const outer = new AbortController();
  for (let i = 0; i < 1000; i++) linkSignal(outer.signal, 60_000).done();
  assert.equal(getEventListeners(outer.signal, 'abort').length, 0);
});

test('a fan-out puts one listener on the parent however many children, and aborts the live ones', () => {
  const parent = new AbortController();
  const fan = signalFanout(parent.signal);
  const children = Array.from({ length: 1000 }, () => fan.child());
  assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
  children[0]?.release();
  parent.abort(new Error('stop'));
  assert.equal(children[0]?.signal.aborted, false, 'a released child is let go');
  assert.equal(children[1]?.signal.aborted, true);
  assert.equal((children[999]?.signal.reason as Error | undefined)?.message, 'stop');
  assert.equal(fan.child().signal.aborted, true, 'a child made after the abort is born aborted');
});
