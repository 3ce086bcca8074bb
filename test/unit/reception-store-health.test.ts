import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RushgateError } from '../../src/errors.js';
import { watchStore } from '../../src/reception/store-health.js';
import type { Store } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';

/** A store of two methods whose writes fail while `writes.fail`; `sweep` has nothing to write. */
function fakeStore(probed: boolean) {
  const writes = { fail: false };
  const away = () => new RushgateError('store_unavailable');
  const inner = {
    async createOrder() {
      if (writes.fail) throw away();
      return 'created';
    },
    // Committed with the orders of its turn: it fails when they do, and succeeds alone.
    async sweepLine(withOrders: boolean) {
      if (withOrders && writes.fail) throw away();
      return [];
    },
    ...(probed
      ? {
          async probeWrite() {
            if (writes.fail) throw away();
          },
        }
      : {}),
  };
  const { store, health } = watchStore(inner as unknown as Store, { now: () => 0 }, silentLogger);
  return { writes, store: store as unknown as typeof inner, health };
}

describe('store health', () => {
  it('stays away while writes fail, whatever succeeds meanwhile, until the write probe works', async () => {
    const { writes, store, health } = fakeStore(true);
    writes.fail = true;
    await assert.rejects(store.createOrder());
    await assert.rejects(store.sweepLine(true));
    assert.equal(health.up(), false);
    // The same kind of call, now with nothing to write, is no sign that writes work.
    await store.sweepLine(false);
    assert.equal(health.up(), false);
    await health.check();
    assert.equal(health.up(), false, 'the probe still fails');
    writes.fail = false;
    await health.check();
    assert.equal(health.up(), true);
    assert.equal(health.outages(), 1);
  });

  it('without a write probe, any call that succeeds marks the store back (Redis answers or not)', async () => {
    const { writes, store, health } = fakeStore(false);
    writes.fail = true;
    await assert.rejects(store.createOrder());
    assert.equal(health.up(), false);
    writes.fail = false;
    await store.sweepLine(false);
    assert.equal(health.up(), true);
  });
});
