import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlotUseMeter } from '../../src/reception/slot-use.js';

const close = (actual: number | null, expected: number) => {
  assert.ok(actual !== null, 'a share');
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} ≈ ${expected}`);
};

describe('slot use while anyone waits', () => {
  it('knows nothing until someone has waited for a while', () => {
    const m = new SlotUseMeter();
    assert.equal(m.windowShare(0), null);
    m.sample(0, { waiting: 3, usable: 4, used: 1 });
    assert.equal(m.runShare(), null, 'one sample spans no time');
    m.sample(1000, { waiting: 0, usable: 4, used: 0 });
    close(m.runShare(), 0.25);
  });

  it('does not count time with nobody in line, however idle the slots', () => {
    const m = new SlotUseMeter();
    m.sample(0, { waiting: 0, usable: 6, used: 0 });
    m.sample(5000, { waiting: 2, usable: 6, used: 6 });
    m.sample(6000, { waiting: 0, usable: 6, used: 1 });
    m.sample(9000, { waiting: 0, usable: 6, used: 0 });
    close(m.runShare(), 1);
    close(m.windowShare(9000), 1);
  });

  it('weighs each state by how long it held (late ticks included)', () => {
    const m = new SlotUseMeter();
    m.sample(0, { waiting: 5, usable: 2, used: 2 }); // full for 3 s
    m.sample(3000, { waiting: 5, usable: 2, used: 0 }); // empty for 1 s
    m.sample(4000, { waiting: 5, usable: 2, used: 0 });
    close(m.runShare(), (2 * 3 + 0 * 1) / (2 * 4));
  });

  it('caps use at what is usable and skips moments with no usable slot', () => {
    const m = new SlotUseMeter();
    m.sample(0, { waiting: 1, usable: 2, used: 5 });
    m.sample(1000, { waiting: 1, usable: 0, used: 3 });
    m.sample(2000, { waiting: 1, usable: 2, used: 1 });
    m.sample(3000, { waiting: 0, usable: 2, used: 1 });
    close(m.runShare(), (2 + 1) / (2 + 2));
  });

  it('forgets what left the sliding window but keeps it for the whole run', () => {
    const m = new SlotUseMeter(10_000);
    m.sample(0, { waiting: 1, usable: 4, used: 0 });
    for (let t = 1000; t <= 10_000; t += 1000) m.sample(t, { waiting: 1, usable: 4, used: 0 });
    for (let t = 11_000; t <= 20_000; t += 1000) m.sample(t, { waiting: 1, usable: 4, used: 4 });
    close(m.runShare(), 9 / 20); // 11 idle seconds (to the first full sample at 11 s), 9 full
    close(m.windowShare(20_000), 0.9); // 9 full seconds of the last 10 (the first is the idle state)
    close(m.windowShare(25_000), 1); // half a window later only full spans remain
    assert.equal(m.windowShare(60_000), null, 'a window with nobody sampled');
  });

  it('clips a span that straddles the window edge', () => {
    const m = new SlotUseMeter(10_000);
    m.sample(0, { waiting: 1, usable: 1, used: 0 });
    m.sample(6000, { waiting: 1, usable: 1, used: 1 });
    m.sample(12_000, { waiting: 1, usable: 1, used: 1 });
    // Window [2 s, 12 s]: 4 s of the idle span, 6 s of the full one.
    close(m.windowShare(12_000), 0.6);
  });

  it('does not stretch one state across a long gap between samples', () => {
    const m = new SlotUseMeter();
    m.sample(0, { waiting: 1, usable: 1, used: 0 });
    m.sample(1000, { waiting: 1, usable: 1, used: 1 });
    m.sample(301_000, { waiting: 0, usable: 1, used: 1 });
    close(m.runShare(), 10 / 11);
  });
});
