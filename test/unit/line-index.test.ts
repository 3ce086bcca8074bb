/**
 * The in-process line index (src/store/line-index.ts) against a plain array model, through many
 * more joins, leaves and touches than the store contract makes, so that slot compaction and the
 * heap's rebuild (both past 1024 items) run many times. Seeded, so a failure repeats.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/reception/wait-simulation.js';
import { LineIndex } from '../../src/store/line-index.js';
import type { LineEntry } from '../../src/store/types.js';

test('line index: ranks, front and sweep order match a plain model through compactions', () => {
  const random = seededRandom(9);
  const index = new LineIndex();
  let model: LineEntry[] = [];
  let seq = 0;
  let now = 1000;
  const pick = () => model[Math.floor(random() * model.length)];
  for (let step = 0; step < 40_000; step++) {
    // Mostly forward, sometimes the same instant, now and then a step back (callers' clocks).
    const tick = random();
    now += tick < 0.5 ? 1 : tick < 0.97 ? 0 : -3;
    const r = random();
    if (r < 0.4 || model.length === 0) {
      const entry: LineEntry = {
        token: `t${++seq}`,
        seq,
        joinedAt: now,
        lastSeenAt: now,
        firstEstimateSeconds: 1,
      };
      model.push({ ...entry });
      assert.equal(index.add(entry), model.length);
    } else if (r < 0.65) {
      const e = pick()!;
      model = model.filter((m) => m !== e);
      assert.equal(index.remove(e.token)?.token, e.token);
    } else if (r < 0.95) {
      const e = pick()!;
      e.lastSeenAt = now;
      assert.deepEqual(index.touch(e.token, now), { entry: e, position: model.indexOf(e) + 1 });
    } else {
      // A sweep: the model's least recently seen (ties by seq) before a bound.
      const bound = now - Math.floor(random() * 50);
      const limit = 1 + Math.floor(random() * 5);
      const expected = model
        .filter((m) => m.lastSeenAt < bound)
        .sort((a, b) => a.lastSeenAt - b.lastSeenAt || a.seq - b.seq)
        .slice(0, limit);
      const stale = index.stale(bound, limit);
      assert.deepEqual(stale, expected);
      // The caller may also leave them in line (the sqlite store when its transaction fails).
      if (random() < 0.8) {
        for (const e of stale) index.remove(e.token);
        model = model.filter((m) => !expected.includes(m));
      }
    }
    if (step % 97 === 0 && model.length > 0) {
      const e = pick()!;
      assert.equal(index.position(e.token), model.indexOf(e) + 1);
      assert.deepEqual(index.find(e.token), { entry: e, position: model.indexOf(e) + 1 });
      assert.deepEqual(index.front(5), model.slice(0, 5));
    }
    assert.equal(index.size, model.length);
  }
  for (const [i, e] of model.entries()) assert.equal(index.position(e.token), i + 1);
  assert.deepEqual(index.front(model.length + 1), model);
});

test('line index: a long line emptied from the front and refilled keeps exact ranks', () => {
  const index = new LineIndex();
  let seq = 0;
  const add = () => {
    seq++;
    return index.add({ token: `t${seq}`, seq, joinedAt: 0, lastSeenAt: seq, firstEstimateSeconds: 1 });
  };
  for (let i = 0; i < 5000; i++) add();
  for (let s = 1; s <= 4990; s++) index.remove(`t${s}`);
  assert.equal(index.position('t4991'), 1);
  for (let i = 0; i < 3000; i++) add();
  assert.equal(index.size, 3010);
  assert.equal(index.position('t5000'), 10);
  assert.equal(index.position(`t${seq}`), 3010);
  assert.equal(index.position('t1'), undefined);
  assert.deepEqual(
    index.stale(4993, 10).map((e) => e.token),
    ['t4991', 't4992'],
  );
  assert.throws(() =>
    index.add({ token: 'old', seq: 1, joinedAt: 0, lastSeenAt: 0, firstEstimateSeconds: 1 }),
  );
  assert.throws(() =>
    index.add({ token: `t${seq}`, seq: seq + 1, joinedAt: 0, lastSeenAt: 0, firstEstimateSeconds: 1 }),
  );
});
