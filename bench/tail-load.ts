/**
 * The reception's tail latency, busy path and memory against a raw `node:http` server, side by
 * side in one run (issue 12's "fair reference"). The load client (bench/load-client.ts) opens and
 * warms 2,000 connections before the clock starts, and both servers listen with a backlog of
 * 4,096, so the raw server's p99 is its real answer time, not SYN retries; the kernel's listen
 * overflow counters are printed around each row to show that none were dropped.
 *
 * - **Full load:** closed loop on 2,000 connections. At full load p99 is mostly the queue each
 *   server builds at its own throughput (Little's law), so this row says as much about
 *   throughput as about latency.
 * - **Same rate:** both servers offered the same rate — 0.8 × what the reception sustained at
 *   full load — timed from when each request was due. This is the row that compares latency.
 * - **Busy path:** a reception whose one slot is taken: newcomers get a `503` with a place in
 *   line (a line join), and retries with a token a `503` with their place (a visit), vs raw.
 * - **Memory:** the reception's RSS with 100,000 orders stored (each with a live ticket: three
 *   servers of 33,334 slots, filled) and 10,000 clients waiting. Budget: 400 MB.
 *
 * Each p99 is the median of 3 runs (raw and reception alternating). Orders are `strict`, on
 * `sqlite:`, notices acknowledged by real content servers, as in bench/reception.ts. About 4 min.
 * Run with `npm run bench -- tail-load` (builds first) or `node --import tsx bench/tail-load.ts`
 * after `npm run build`. RUSHGATE_BENCH_PROFILE=DIR: the full-load reception runs under
 * `node --cpu-prof` and writes its profile into DIR.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { makeDeployment, type TestDeployment, withPortRetry } from '../test/helpers/deployment.js';
import { type Proc, waitForHttp } from '../test/helpers/proc.js';
import { type LoadResult, postRequest, runLoad } from './load-client.js';
import { runWrk, startBenchProcesses, startRawServer } from './reception.js';
import { everyServerUp } from './rush-deployment.js';

const CONNECTIONS = 2000;
const SHORT = Number(process.env.RUSHGATE_BENCH_SECONDS ?? 0) || undefined;
const RUN_S = SHORT ?? 5;
const RUNS = 3;
const SAME_RATE_SHARE = 0.8;
/** RUSHGATE_BENCH_RATE: a second same-rate row at this rate (e.g. an earlier build's), to compare builds. */
const EXTRA_RATE = Number(process.env.RUSHGATE_BENCH_RATE ?? 0) || undefined;
const MEMORY_ORDERS = Number(process.env.RUSHGATE_BENCH_MEMORY_ORDERS ?? 0) || 100_000;
const MEMORY_WAITING = MEMORY_ORDERS / 10;
const MEMORY_BUDGET_MB = 400;
const PROFILE_DIR = process.env.RUSHGATE_BENCH_PROFILE;
const ORDER = postRequest('/api/orders', '{"item":"/bench.bin"}');

const fmt = (n: number, digits = 0) => n.toFixed(digits);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** TcpExtListenOverflows and TcpExtListenDrops, machine-wide (other processes count too). */
function listenOverflows(): string {
  try {
    const out = execFileSync('nstat', ['-az', 'TcpExtListenOverflows', 'TcpExtListenDrops'], {
      encoding: 'utf8',
    });
    const get = (name: string) => new RegExp(`${name}\\s+(\\d+)`).exec(out)?.[1] ?? '?';
    return `ListenOverflows ${get('TcpExtListenOverflows')}, ListenDrops ${get('TcpExtListenDrops')}`;
  } catch {
    return 'nstat not available';
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN) / 1024;
}

interface Running {
  d: TestDeployment;
  procs: Proc[];
  reception: Proc;
  port: number;
}

async function deploy(opts: {
  capacity: number;
  servers: number;
  profile?: boolean;
  queue?: Record<string, unknown>;
}): Promise<Running> {
  return withPortRetry(async () => {
    const d = await makeDeployment({
      servers: opts.servers,
      server: () => ({ capacity: opts.capacity }),
      reception: {
        rateLimit: null,
        limits: { ticketsPerClient: 10_000_000, placesPerClient: 10_000_000 },
        tickets: { policy: 'strict', claimSeconds: 3600, claimSecondsWhileWaiting: 3600 },
        monitor: { intervalMs: 500, timeoutMs: 2000, failuresBeforeDown: 3 },
        ...(opts.queue ? { queue: opts.queue } : {}),
      },
    });
    d.writeItem('/bench.bin', 'x'.repeat(1024));
    const procs: Proc[] = [];
    try {
      const { content, reception } = startBenchProcesses(
        d,
        opts.profile && PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : undefined,
      );
      procs.push(...content, reception);
      await waitForHttp(`${d.config.reception.publicUrl}/healthz`, { proc: reception, timeoutMs: 20_000 });
      await everyServerUp(d.config.reception.internalUrl, 20_000);
      return { d, procs, reception, port: Number(new URL(d.config.reception.publicUrl).port) };
    } catch (err) {
      await Promise.all(procs.map((p) => p.kill()));
      d.cleanup();
      throw err;
    }
  });
}

async function stop(r: Running): Promise<void> {
  await Promise.all(r.procs.map((p) => p.kill()));
  r.d.cleanup();
}

const line = (name: string, r: LoadResult) =>
  `    ${name.padEnd(10)} ${fmt(r.perSecond).padStart(7)} req/s  p50 ${fmt(r.p50Ms, 1).padStart(7)}  p90 ${fmt(r.p90Ms, 1).padStart(7)}  p99 ${fmt(r.p99Ms, 1).padStart(7)} ms  (${r.requests} answers${r.errors ? `, ${r.errors} errors` : ''}; ${[...r.statuses].map(([s, n]) => `${s}×${n}`).join(' ')})`;

/** RUNS alternating runs of each server; prints every run and returns the medians. */
async function alternate(
  label: string,
  rawPort: number,
  recPort: number,
  opts: { rate?: number },
): Promise<{ raw: LoadResult[]; rec: LoadResult[] }> {
  console.log(`  ${label}   [${listenOverflows()}]`);
  const raw: LoadResult[] = [];
  const rec: LoadResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = await runLoad({
      port: rawPort,
      request: ORDER,
      connections: CONNECTIONS,
      seconds: RUN_S,
      ...opts,
    });
    console.log(line(`raw #${i + 1}`, a));
    raw.push(a);
    const b = await runLoad({
      port: recPort,
      request: ORDER,
      connections: CONNECTIONS,
      seconds: RUN_S,
      ...opts,
    });
    console.log(line(`rec #${i + 1}`, b));
    rec.push(b);
  }
  console.log(`    after: [${listenOverflows()}]`);
  return { raw, rec };
}

async function tailRows(rawPort: number): Promise<void> {
  const r = await deploy({ capacity: 10_000_000, servers: 3, profile: true });
  try {
    const full = await alternate(
      `full load, closed loop, ${CONNECTIONS} warmed connections`,
      rawPort,
      r.port,
      {},
    );
    const rawP99 = median(full.raw.map((x) => x.p99Ms));
    const recP99 = median(full.rec.map((x) => x.p99Ms));
    const recRate = median(full.rec.map((x) => x.perSecond));
    console.log(
      `  full load: raw p50/p90/p99 ${fmt(median(full.raw.map((x) => x.p50Ms)), 1)}/${fmt(median(full.raw.map((x) => x.p90Ms)), 1)}/${fmt(rawP99, 1)} ms; ` +
        `reception p99 ${fmt(recP99, 1)} ms = ${fmt(recP99 / rawP99, 2)} × raw (goal ≤ 3); throughput ${fmt(recRate / median(full.raw.map((x) => x.perSecond)), 2)} × raw`,
    );
    const rate = Math.max(100, Math.round(recRate * SAME_RATE_SHARE));
    const same = await alternate(
      `same rate: ${rate} req/s offered to both (${SAME_RATE_SHARE} × the reception's full-load rate), open loop`,
      rawPort,
      r.port,
      { rate },
    );
    const sRaw = median(same.raw.map((x) => x.p99Ms));
    const sRec = median(same.rec.map((x) => x.p99Ms));
    console.log(
      `  same rate: raw p50/p90/p99 ${fmt(median(same.raw.map((x) => x.p50Ms)), 1)}/${fmt(median(same.raw.map((x) => x.p90Ms)), 1)}/${fmt(sRaw, 1)} ms; ` +
        `reception p50/p90/p99 ${fmt(median(same.rec.map((x) => x.p50Ms)), 1)}/${fmt(median(same.rec.map((x) => x.p90Ms)), 1)}/${fmt(sRec, 1)} ms = ${fmt(sRec / sRaw, 1)} × raw`,
    );
    if (EXTRA_RATE !== undefined) {
      const extra = await alternate(
        `same rate: ${EXTRA_RATE} req/s offered to both (RUSHGATE_BENCH_RATE)`,
        rawPort,
        r.port,
        {
          rate: EXTRA_RATE,
        },
      );
      const q = (xs: LoadResult[], k: 'p50Ms' | 'p90Ms' | 'p99Ms') => fmt(median(xs.map((x) => x[k])), 1);
      console.log(
        `  same rate ${EXTRA_RATE}/s: raw p50/p90/p99 ${q(extra.raw, 'p50Ms')}/${q(extra.raw, 'p90Ms')}/${q(extra.raw, 'p99Ms')} ms; ` +
          `reception ${q(extra.rec, 'p50Ms')}/${q(extra.rec, 'p90Ms')}/${q(extra.rec, 'p99Ms')} ms`,
      );
    }
  } finally {
    await stop(r);
  }
}

/** One slot, taken: every order is busy. Newcomers join the line; token holders visit it. */
async function busyRow(rawUrl: string): Promise<void> {
  const r = await deploy({ capacity: 1, servers: 1, queue: { abandonSeconds: 3600 } });
  try {
    const pub = r.d.config.reception.publicUrl;
    const first = await fetch(`${pub}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"item":"/bench.bin"}',
    });
    if (first.status !== 201) throw new Error(`the first order got ${first.status}`);
    const busy = await fetch(`${pub}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"item":"/bench.bin"}',
    });
    const token = ((await busy.json()) as { queueToken?: string }).queueToken;
    if (busy.status !== 503 || !token)
      throw new Error(`expected a busy answer with a token, got ${busy.status}`);
    const dir = r.d.dir;
    const join = `${dir}/join.lua`;
    const visit = `${dir}/visit.lua`;
    const lua = (body: string) =>
      [
        'wrk.method = "POST"',
        `wrk.body = '${body}'`,
        'wrk.headers["Content-Type"] = "application/json"',
        '',
      ].join('\n');
    writeFileSync(join, lua('{"item":"/bench.bin"}'));
    writeFileSync(visit, lua(`{"item":"/bench.bin","queueToken":"${token}"}`));
    const secs = SHORT ?? 5;
    await runWrk(rawUrl, join, 64, 2);
    const raw = await runWrk(rawUrl, join, 64, secs);
    await runWrk(`${pub}/api/orders`, visit, 64, 2);
    const joins = await runWrk(`${pub}/api/orders`, join, 64, secs);
    const visits = await runWrk(`${pub}/api/orders`, visit, 64, secs);
    console.log(
      `  busy path (wrk -t2 -c64, ${secs} s): raw ${fmt(raw.requestsPerSecond)} req/s; ` +
        `503 + place in line (join) ${fmt(joins.requestsPerSecond)} req/s = ${fmt(joins.requestsPerSecond / raw.requestsPerSecond, 2)} × raw; ` +
        `retry with token ${fmt(visits.requestsPerSecond)} req/s = ${fmt(visits.requestsPerSecond / raw.requestsPerSecond, 2)} × raw (goal ≥ 0.5)`,
    );
  } finally {
    await stop(r);
  }
}

async function memoryRow(): Promise<void> {
  const perServer = Math.ceil(MEMORY_ORDERS / 3);
  const r = await deploy({ capacity: perServer, servers: 3, queue: { abandonSeconds: 3600 } });
  try {
    const pid = r.reception.child.pid;
    if (pid === undefined) throw new Error('no reception pid');
    const idle = rssMb(pid);
    const stored = await runLoad({
      port: r.port,
      request: ORDER,
      connections: 64,
      seconds: 600,
      total: MEMORY_ORDERS,
    });
    const waiting = await runLoad({
      port: r.port,
      request: ORDER,
      connections: 64,
      seconds: 600,
      total: MEMORY_WAITING,
    });
    const status = (await (await fetch(`${r.d.config.reception.internalUrl}/status`)).json()) as {
      servers: { outstanding: number }[];
    };
    const outstanding = status.servers.reduce((n, s) => n + s.outstanding, 0);
    await new Promise((res) => setTimeout(res, 1000));
    const rss = rssMb(pid);
    console.log(
      `  memory: reception RSS ${fmt(rss)} MB with ${outstanding} live tickets and ${waiting.statuses.get(503) ?? 0} newcomers answered 503 ` +
        `(orders: ${[...stored.statuses].map(([s, n]) => `${s}×${n}`).join(' ')}; idle at start ${fmt(idle)} MB); budget ${MEMORY_BUDGET_MB} MB: ${rss <= MEMORY_BUDGET_MB ? 'within' : 'OVER'}`,
    );
  } finally {
    await stop(r);
  }
}

export async function runTailLoadBench(): Promise<void> {
  const raw = await startRawServer();
  try {
    console.log(
      `reception (strict, sqlite:, notices acknowledged) vs raw node:http 303; ${RUNS} runs of ${RUN_S} s, medians`,
    );
    await tailRows(raw.port);
    await busyRow(`http://127.0.0.1:${raw.port}/api/orders`);
    await memoryRow();
  } finally {
    raw.child.removeAllListeners('exit');
    raw.child.kill('SIGKILL');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runTailLoadBench();
}
