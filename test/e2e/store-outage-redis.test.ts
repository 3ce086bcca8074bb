/**
 * The Redis store going away and coming back (issue 8, item 5), against a redis-server of the
 * test's own (never the machine's Redis on 6379): while it is down a call fails at once as
 * `store_unavailable`; once it is restarted (empty script cache: NOSCRIPT) calls work again
 * with no reopen, and with `appendonly yes` + `appendfsync always` (checked by `?fsync=always`)
 * an order acknowledged before the kill is still there. A Redis without that policy is refused.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';

/** Starts redis-server on a random port, retrying another port when the bind fails. */
async function startRedis(dir: string, port?: number): Promise<{ proc: ChildProcess; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const p = port ?? 20_000 + Math.floor(Math.random() * 30_000);
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(p),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const ok = await new Promise<boolean>((resolve) => {
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (/Ready to accept connections/.test(out)) resolve(true);
      });
      proc.on('exit', () => resolve(false));
    });
    if (ok) return { proc, port: p };
    if (port !== undefined) throw new Error(`redis-server could not bind ${port} again`);
  }
  throw new Error('redis-server did not start');
}

test('redis: down is store_unavailable at once, a restart is picked up, fsync=always keeps orders', {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-redis-'));
  let r = await startRedis(dir);
  try {
    const store = await openStore(`redis://127.0.0.1:${r.port}?fsync=always`, { logger: silentLogger });
    const mk = (id: string) =>
      store.createOrder({ id, item: '/x', clientAddress: '192.0.2.1', createdAt: 1 }, 60_000);
    assert.equal((await mk('before')).kind, 'created');
    assert.equal(
      (await store.joinLine({ token: 'q-before', now: 1, firstEstimateSeconds: 1 }, 10)).kind,
      'joined',
    );
    r.proc.kill('SIGKILL');
    await new Promise((res) => r.proc.once('exit', res));
    await assert.rejects(mk('during'), (err: { code?: string }) => err.code === 'store_unavailable');
    r = await startRedis(dir, r.port);
    let after: string | undefined;
    for (let i = 0; i < 100 && after === undefined; i++) {
      after = await mk('after').then(
        (x) => x.kind,
        () => undefined,
      );
      if (after === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(after, 'created', 'the restarted Redis (empty script cache) is used again');
    assert.ok(await store.getOrder('before'), 'the order acknowledged before the kill survived');
    // The line's scripts (keys in KEYS) are reloaded after NOSCRIPT too, and the line survived.
    const joined = await store.joinLine({ token: 'q-after', now: 2, firstEstimateSeconds: 1 }, 10);
    assert.equal(joined.kind === 'joined' && joined.position, 2);
    assert.equal((await store.touchLine('q-before', 3))?.position, 1);
    assert.deepEqual(
      (await store.lineFront(5)).map((e) => e.token),
      ['q-before', 'q-after'],
    );
    await store.close();
  } finally {
    r.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
