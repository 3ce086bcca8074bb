/**
 * Redis going away in the middle of a real rush (issue 8, item 5): a `rushgate reception` on
 * `redis://` and three `rushgate content` processes, a burst of concurrent orders, and the test's
 * own redis-server (on a unix socket, so the machine's Redis on 6379 is never touched and the
 * restart needs no port that someone else could take) SIGKILLed mid-rush, then started again
 * empty (no data, no scripts: NOSCRIPT), then frozen with SIGSTOP. Every order is answered, each `201` or `503`
 * `store_unavailable` with `Retry-After`; the reception never crashes; `/healthz` turns 503 and
 * back to 200 by itself; orders are taken again after the restart.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { waitUntil } from '../helpers/wait.js';
import { type Cluster, postOrder, startCluster } from './reception-cluster.js';

const RUSH = 300;
const CONCURRENCY = 30;
const KILL_AFTER = 60;

/** A private redis-server on a unix socket only (`--port 0`: no TCP), nothing persisted. */
async function startRedis(socket: string): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const ok = await new Promise<boolean>((resolve) => {
    const seen = (d: Buffer) => {
      out += d.toString();
      if (/ready to accept connections/i.test(out)) resolve(true);
    };
    proc.stdout?.on('data', seen);
    proc.stderr?.on('data', seen);
    proc.once('exit', () => resolve(false));
  });
  if (!ok) throw new Error(`redis-server did not start:\n${out}`);
  return proc;
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

async function healthz(pub: string): Promise<number> {
  const res = await fetch(`${pub}/healthz`);
  await res.arrayBuffer();
  return res.status;
}

describe('Redis stopping during a rush', { timeout: 180_000 }, () => {
  let dir: string;
  let socket: string;
  let redis: ChildProcess;
  let c: Cluster;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rg-redis-'));
    socket = path.join(dir, 'redis.sock');
    redis = await startRedis(socket);
    const prefix = `rushgate-test-${randomBytes(6).toString('hex')}:`;
    c = await startCluster({
      servers: 3,
      items: { '/rush.bin': 'x'.repeat(1000) },
      // Room for the whole rush: every answer is about the store, never a full house.
      server: () => ({ capacity: RUSH }),
      reception: {
        // ioredis takes the socket from the URL's `path` parameter.
        store: `redis://localhost/0?path=${encodeURIComponent(socket)}&prefix=${encodeURIComponent(prefix)}`,
        rateLimit: null,
        limits: { ticketsPerClient: 100_000, placesPerClient: 100_000 },
        tickets: { claimSeconds: 600, claimSecondsWhileWaiting: 600 },
      },
    });
  });

  after(async () => {
    await c?.stop();
    if (redis) await kill(redis);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`answers every order of a ${RUSH}-order rush with 201 or 503 store_unavailable, and recovers after a restart`, async () => {
    const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 0 });
    const answers = new Map<string, number>();
    const bad: string[] = [];
    let sent = 0;
    let answered201 = 0;
    let killed: Promise<void> | undefined;
    const order = async (): Promise<void> => {
      // A bound on each request: a hang fails the test as an error rather than stalling it.
      const res = await fetch(`${c.pub}/api/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ item: '/rush.bin' }),
        signal: AbortSignal.timeout(30_000),
        // @ts-expect-error undici's dispatcher option is not in the DOM fetch types
        dispatcher,
      });
      const text = await res.text();
      const json = text ? (JSON.parse(text) as { error?: { code: string } }) : {};
      const key = `${res.status} ${json.error?.code ?? ''}`.trim();
      answers.set(key, (answers.get(key) ?? 0) + 1);
      if (res.status === 201) answered201++;
      else if (
        res.status !== 503 ||
        json.error?.code !== 'store_unavailable' ||
        !(Number(res.headers.get('retry-after')) > 0)
      ) {
        bad.push(`${res.status} retry-after=${res.headers.get('retry-after')} ${text.slice(0, 200)}`);
      }
      if (!killed && answered201 >= KILL_AFTER) killed = kill(redis);
    };
    const worker = async (): Promise<void> => {
      while (sent < RUSH) {
        sent++;
        await order();
      }
    };
    // Any request that errors (reset, hang past its bound) rejects the whole rush.
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await dispatcher.close();
    await killed;
    const total = [...answers.values()].reduce((a, b) => a + b, 0);
    console.log(`# answers during the rush: ${JSON.stringify(Object.fromEntries(answers))}`);
    assert.ok(killed, 'Redis was killed mid-rush');
    assert.equal(total, RUSH, 'every order was answered');
    assert.deepEqual(bad, [], 'only 201 or 503 store_unavailable with Retry-After');
    assert.ok((answers.get('503 store_unavailable') ?? 0) > 0, 'orders after the kill were refused');
    assert.equal(c.reception.child.exitCode, null, 'the reception is still running');

    // Still down: /healthz says so, and a new order is refused the same way.
    await waitUntil(async () => (await healthz(c.pub)) === 503, 30_000, '/healthz 503 while Redis is down');
    const during = await postOrder(c.pub, { item: '/rush.bin' });
    assert.equal(during.status, 503);
    assert.equal(during.json.error.code, 'store_unavailable');

    // Back, empty: no keys and no scripts. The reception picks it up with no restart.
    redis = await startRedis(socket);
    await waitUntil(async () => (await healthz(c.pub)) === 200, 30_000, '/healthz 200 once Redis is back');
    const more = await Promise.all(Array.from({ length: 20 }, () => postOrder(c.pub, { item: '/rush.bin' })));
    assert.deepEqual(
      more.map((r) => r.status),
      more.map(() => 201),
      `orders after the restart: ${JSON.stringify(more.map((r) => r.json?.error?.code ?? r.status))}`,
    );
    for (const r of more) {
      const res = await fetch(`${c.pub}/api/orders/${r.json.orderId}`);
      assert.equal(res.status, 200, 'an order taken after the restart is stored');
      await res.arrayBuffer();
    }
    assert.equal(c.reception.child.exitCode, null, 'the reception never exited');
  });

  it('answers orders sent to a frozen Redis (SIGSTOP) with 503 store_unavailable, not a hang', async () => {
    await waitUntil(async () => (await healthz(c.pub)) === 200, 30_000, '/healthz 200 before');
    // The connection stays open and nothing answers: only the command timeout ends the wait.
    redis.kill('SIGSTOP');
    try {
      const frozen = await Promise.all(
        Array.from({ length: CONCURRENCY }, () => postOrder(c.pub, { item: '/rush.bin' }, {})),
      );
      for (const r of frozen) {
        assert.equal(r.status, 503, `an order while Redis is frozen: ${r.status}`);
        assert.equal(r.json.error.code, 'store_unavailable');
        assert.ok(Number(r.headers.get('retry-after')) > 0);
      }
      assert.equal(await healthz(c.pub), 503, '/healthz while Redis is frozen');
    } finally {
      redis.kill('SIGCONT');
    }
    await waitUntil(async () => (await healthz(c.pub)) === 200, 30_000, '/healthz 200 once Redis runs');
    const r = await postOrder(c.pub, { item: '/rush.bin' });
    assert.equal(r.status, 201);
    assert.equal(c.reception.child.exitCode, null, 'the reception never exited');
  });
});
