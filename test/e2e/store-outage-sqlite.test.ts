/**
 * A SQLite write failing under a real `rushgate reception` (issue 8, item 5): the process's file
 * size limit (RLIMIT_FSIZE, set from outside with `prlimit`) is lowered so that every write to its
 * database and WAL fails in the kernel, the way a full disk fails it (EFBIG instead of ENOSPC: SQLite
 * answers SQLITE_FULL or SQLITE_IOERR_WRITE). It needs no mount and no root, and works whatever
 * user runs the tests (chmod would not: root ignores it, and an open file stays writable). Orders
 * then get `503` `store_unavailable` with `Retry-After`, never a 201 for an order not written and
 * never a 500; `/healthz` is 503; once the limit is lifted orders are taken again, no restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hasPrlimit, setFsize } from '../helpers/prlimit.js';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, type Cluster, postOrder, startCluster } from './reception-cluster.js';

const BURST = 30;

/** Sets the soft file size limit of `pid` (bytes, or "unlimited"); the hard limit stays. */
async function healthz(pub: string): Promise<number> {
  const res = await fetch(`${pub}/healthz`);
  await res.arrayBuffer();
  return res.status;
}

describe('a SQLite write failing under a running reception', {
  timeout: 120_000,
  skip: hasPrlimit() ? false : 'prlimit (util-linux) is not installed',
}, () => {
  let c: Cluster;

  before(async () => {
    c = await startCluster({
      servers: 1,
      items: { '/f.bin': 'x'.repeat(100) },
      server: () => ({ capacity: 1000 }),
      reception: {
        rateLimit: null,
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        tickets: { claimSeconds: 600, claimSecondsWhileWaiting: 600 },
      },
    });
  });

  after(async () => {
    await c?.stop();
  });

  it('answers 503 store_unavailable while writes fail, and takes orders again once they do not', async () => {
    const pid = c.reception.child.pid;
    assert.ok(pid !== undefined);
    const stored: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await postOrder(c.pub, { item: '/f.bin' });
      assert.equal(r.status, 201);
      stored.push(r.json.orderId);
    }

    // One byte: no write at any offset past the first can extend or fill a file of this process.
    setFsize(pid, 1);
    try {
      const burst = await Promise.all(
        Array.from({ length: BURST }, () => postOrder(c.pub, { item: '/f.bin' })),
      );
      for (const r of burst) {
        assert.equal(r.status, 503, `an order while writes fail: ${r.status} ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error.code, 'store_unavailable');
        assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After on store_unavailable');
      }
      assert.equal(await healthz(c.pub), 503, '/healthz while writes fail');
      // Still away once housekeeping has run (it calls the store every 250 ms): a read, or a
      // call with nothing to write, is no sign that the disk takes writes again.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await healthz(c.pub), 503, '/healthz while writes still fail, without traffic');
      const again = await postOrder(c.pub, { item: '/f.bin' });
      assert.equal(again.status, 503);
      assert.equal(c.reception.child.exitCode, null, 'the reception is still running');
      // Orders written before are still read.
      const old = await fetch(`${c.pub}/api/orders/${stored[0]}`);
      assert.equal(old.status, 200);
      await old.arrayBuffer();
    } finally {
      setFsize(pid, 'unlimited');
    }

    // A client retrying after Retry-After is served again, with no restart.
    let back: { status: number; json: ApiJson } | undefined;
    await waitUntil(
      async () => {
        back = await postOrder(c.pub, { item: '/f.bin' });
        return back.status === 201;
      },
      30_000,
      'an order taken again after the limit was lifted',
      200,
    );
    stored.push(back!.json.orderId);
    await waitUntil(async () => (await healthz(c.pub)) === 200, 30_000, '/healthz 200 again');
    const more = await Promise.all(Array.from({ length: 10 }, () => postOrder(c.pub, { item: '/f.bin' })));
    for (const r of more) {
      assert.equal(r.status, 201);
      stored.push(r.json.orderId);
    }
    for (const id of stored) {
      const res = await fetch(`${c.pub}/api/orders/${id}`);
      assert.equal(res.status, 200, `order ${id} answered 201 exists`);
      await res.arrayBuffer();
    }
    assert.equal(c.reception.child.exitCode, null, 'the reception never exited');
  });
});
