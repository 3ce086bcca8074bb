import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { onShutdownSignals } from '../../src/util/signals.js';

test('one Ctrl-C delivered twice at once is one graceful stop; a later one forces', () => {
  const target = new EventEmitter();
  let t = 0;
  const seen: string[] = [];
  const off = onShutdownSignals(
    { stop: (s) => seen.push(`stop:${s}`), force: (s) => seen.push(`force:${s}`) },
    { target, now: () => t, windowMs: 1000 },
  );
  target.emit('SIGINT', 'SIGINT');
  t = 5;
  target.emit('SIGINT', 'SIGINT'); // the same key press, forwarded by npm
  t = 999;
  target.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(seen, ['stop:SIGINT']);
  t = 1500;
  target.emit('SIGINT', 'SIGINT');
  t = 3000;
  target.emit('SIGINT', 'SIGINT');
  assert.deepEqual(seen, ['stop:SIGINT', 'force:SIGINT']);
  off();
  assert.equal(target.listenerCount('SIGINT'), 0);
  assert.equal(target.listenerCount('SIGTERM'), 0);
});
