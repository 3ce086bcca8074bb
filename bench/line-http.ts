/**
 * The waiting line at rush scale, over HTTP (issue 9): a real reception and one real content
 * server whose one slot is taken, so every new order joins the line. For each store, clients join
 * through `POST /api/orders` (32 at a time, rate limit and per-client caps off, since all come
 * from one address) until 1,000, 10,000 and 100,000 wait; at each size the bench times 1,000
 * joins and 2,000 polls (`GET /api/queue/{token}` of random waiters). The reference, measured in
 * the same run, is the same store's order rate with no line (capacity to spare, every order a
 * `201`). Goals: joins/s at 100,000 ≥ 1/1.5 × at 1,000, and ≥ 0.5 × the order rate with no line.
 * `RUSHGATE_BENCH_LINE_MAX` lowers the largest size (a smoke run); `RUSHGATE_BENCH_LINE_STORES`
 * picks stores (comma-separated: memory,sqlite,redis).
 * Run with `npm run bench -- line-http` or `node --import tsx bench/line-http.ts` after a build.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { makeDeployment, type TestDeployment, withPortRetry } from '../test/helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../test/helpers/proc.js';
import { deleteKeys, REDIS_URL } from '../test/helpers/redis.js';
import { ratePerSecond } from './rate.js';

const CONCURRENCY = 32;
const SIZES = [1_000, 10_000, 100_000].filter(
  (n) => n <= (Number(process.env.RUSHGATE_BENCH_LINE_MAX ?? 0) || 100_000),
);
const TIMED_JOINS = 1_000;
const TIMED_POLLS = 2_000;
const NO_LINE_ORDERS = 3_000;
const ITEM = '/line.bin';

type StoreName = 'memory' | 'sqlite' | 'redis';

interface Running {
  d: TestDeployment;
  procs: Proc[];
  pool: Pool;
  stop(): Promise<void>;
}

async function start(store: StoreName, capacity: number, prefix: string): Promise<Running> {
  return withPortRetry(async () => {
    const d = await makeDeployment({
      servers: 1,
      server: () => ({ capacity }),
      reception: {
        store:
          store === 'memory'
            ? 'memory:'
            : store === 'sqlite'
              ? 'sqlite:./data/line-bench.db'
              : `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}prefix=${prefix}`,
        rateLimit: null,
        limits: { ticketsPerClient: 10_000_000, placesPerClient: 10_000_000 },
        tickets: { policy: 'strict', claimSeconds: 3600 },
        queue: { abandonSeconds: 3600, holdSeconds: 15, maxRetryAfterSeconds: 30 },
        monitor: { intervalMs: 500, timeoutMs: 2000, failuresBeforeDown: 3 },
      },
    });
    d.writeItem(ITEM, 'x'.repeat(1024));
    const env = { env: { LOG_LEVEL: 'error' } };
    const procs = [
      startRushgate(['content', '--config', d.configPath, '--id', d.config.contentServers[0]!.id], env),
      startRushgate(['reception', '--config', d.configPath], { ...env, cwd: d.dir }),
    ];
    const stop = async () => {
      await Promise.all(procs.map((p) => p.kill()));
      d.cleanup();
    };
    try {
      await waitForHttp(`${d.config.reception.publicUrl}/healthz`, { proc: procs[1]!, timeoutMs: 30_000 });
    } catch (err) {
      await stop();
      throw err;
    }
    const pool = new Pool(d.config.reception.publicUrl, { connections: CONCURRENCY, pipelining: 1 });
    return {
      d,
      procs,
      pool,
      stop: async () => {
        await pool.close();
        await stop();
      },
    };
  });
}

async function order(pool: Pool): Promise<{ status: number; token?: string }> {
  const res = await pool.request({
    path: '/api/orders',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: ITEM }),
  });
  const body = (await res.body.json()) as { queueToken?: string };
  return { status: res.statusCode, ...(body.queueToken ? { token: body.queueToken } : {}) };
}

const rate = (count: number, fn: (i: number) => Promise<void>) => ratePerSecond(count, CONCURRENCY, fn);

async function measureStore(store: StoreName): Promise<void> {
  const prefix = `rushgate-bench-line-${randomUUID()}:`;
  // The reference: the same store with room for every order.
  const free = await start(store, 10_000_000, `${prefix}free:`);
  let noLine: number;
  try {
    await rate(300, async () => void (await order(free.pool)));
    noLine = await rate(NO_LINE_ORDERS, async () => {
      const r = await order(free.pool);
      if (r.status !== 201) throw new Error(`no-line order answered ${r.status}`);
    });
  } finally {
    await free.stop();
  }

  const run = await start(store, 1, prefix);
  const tokens: string[] = [];
  const rows: { size: number; joins: number; polls: number }[] = [];
  try {
    const first = await order(run.pool);
    if (first.status !== 201) throw new Error(`the first order should take the slot, got ${first.status}`);
    const join = async () => {
      const r = await order(run.pool);
      if (r.status !== 503 || !r.token) throw new Error(`a join answered ${r.status}`);
      tokens.push(r.token);
    };
    for (const size of SIZES) {
      const untimed = Math.max(0, size - TIMED_JOINS - tokens.length);
      await rate(untimed, join);
      const joins = await rate(TIMED_JOINS, join);
      const polls = await rate(TIMED_POLLS, async () => {
        const t = tokens[Math.floor(Math.random() * tokens.length)]!;
        const res = await run.pool.request({ path: `/api/queue/${encodeURIComponent(t)}`, method: 'GET' });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`a poll answered ${res.statusCode}`);
      });
      rows.push({ size: tokens.length, joins, polls });
    }
  } finally {
    await run.stop();
    if (store === 'redis') {
      const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      await deleteKeys(redis, prefix);
      redis.disconnect();
    }
  }
  const base = rows[0]!;
  for (const r of rows) {
    console.log(
      `  ${store.padEnd(7)} ${String(r.size).padStart(7)} waiting: ${r.joins.toFixed(0).padStart(6)} joins/s (${(r.joins / base.joins).toFixed(2)} × at ${base.size}), ` +
        `${r.polls.toFixed(0).padStart(6)} polls/s (${(r.polls / base.polls).toFixed(2)} ×)`,
    );
  }
  const last = rows.at(-1)!;
  console.log(
    `  ${store.padEnd(7)} orders with no line ${noLine.toFixed(0)}/s; joins at ${last.size} = ${(last.joins / noLine).toFixed(2)} × that (goal ≥ 0.5); ` +
      `at ${last.size} vs ${base.size}: joins ${(last.joins / base.joins).toFixed(2)} ×, polls ${(last.polls / base.polls).toFixed(2)} × (goal ≥ 0.67)`,
  );
}

export async function runLineHttpBench(): Promise<void> {
  const stores = (process.env.RUSHGATE_BENCH_LINE_STORES ?? 'memory,sqlite,redis')
    .split(',')
    .map((s) => s.trim()) as StoreName[];
  console.log(
    `the line over HTTP: one slot taken, ${CONCURRENCY} clients at a time; ${TIMED_JOINS} joins and ${TIMED_POLLS} polls timed at each size`,
  );
  for (const store of stores) await measureStore(store);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runLineHttpBench();
}
