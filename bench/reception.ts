/**
 * Reception throughput and tail latency, side by side in one run with the same load generator
 * (wrk, POST with a Lua script): orders → tickets per second under policy `strict` — each order
 * durable in SQLite, its notice acknowledged by a real content server — against a raw `node:http`
 * server that answers every POST with a bare 303. Then p99 latency at 2,000 connections for both.
 * Capacities are huge so nothing is ever busy: this measures the ticketing path. Goals: throughput
 * ≥ 0.5 × raw, p99 ≤ 3 × raw. A second reception on the same content servers with the `memory:`
 * store is measured too, to tell the store's share of the cost from the rest of the path. Every
 * process (receptions, three content servers, the raw server, wrk) shares this machine, so
 * ratios, not absolute numbers, are the result. At 2,000 connections wrk opens them all at once,
 * and the first request on each includes the connect: on a loaded machine a few SYNs are
 * retransmitted (1 s, 3 s), which can set p99 for both servers alike; p90 is printed beside it.
 * That row is kept for continuity; the fair p99 reference (connections warmed before the clock,
 * full load and same rate, median of 3) is bench/tail-load.ts.
 * About 70 s.
 * Run with `npm run bench -- reception` (builds first) or `node --import tsx bench/reception.ts`
 * after `npm run build`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parse, stringify } from 'yaml';
import {
  candidatePorts,
  makeDeployment,
  type TestDeployment,
  withPortRetry,
} from '../test/helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../test/helpers/proc.js';
import { everyServerUp } from './rush-deployment.js';

const THROUGHPUT_CONNECTIONS = 64;
const TAIL_CONNECTIONS = 2000;
// RUSHGATE_BENCH_SECONDS shortens every run, for a smoke check of the bench itself.
const SHORT = Number(process.env.RUSHGATE_BENCH_SECONDS ?? 0) || undefined;
const WARMUP_S = SHORT ?? 2;
const RUN_S = SHORT ?? 6;
/** Distinct EdDSA grants for the grant row: more than one run can use, so none repeats. */
const GRANTS = Number(process.env.RUSHGATE_BENCH_GRANTS ?? 0) || 60_000;

interface WrkResult {
  requestsPerSecond: number;
  p99Ms: number;
  p90Ms: number;
  p50Ms: number;
  errors: number;
  requests: number;
}

/** wrk's latency lines look like "99%   12.34ms" (or us / s). */
function toMs(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return n;
}

export function runWrk(
  url: string,
  script: string,
  connections: number,
  seconds: number,
): Promise<WrkResult> {
  const threads = 2;
  const args = [
    `-t${threads}`,
    `-c${Math.max(connections, threads)}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '--latency',
    '-s',
    script,
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}:\n${out}`));
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const p99 = /\s99%\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const p50 = /\s50%\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const p90 = /\s90%\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const total = /(\d+) requests in/.exec(out);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      if (!rps || !p99 || !p50) return reject(new Error(`cannot read wrk output:\n${out}`));
      const errors =
        Number(non2xx?.[1] ?? 0) +
        (sockErr ? Number(sockErr[1]) + Number(sockErr[2]) + Number(sockErr[3]) + Number(sockErr[4]) : 0);
      resolve({
        requestsPerSecond: Number(rps[1]),
        p99Ms: toMs(p99[1] ?? '0', p99[2] ?? 'ms'),
        p50Ms: toMs(p50[1] ?? '0', p50[2] ?? 'ms'),
        p90Ms: toMs(p90?.[1] ?? '0', p90?.[2] ?? 'ms'),
        errors,
        requests: Number(total?.[1] ?? 0),
      });
    });
  });
}

/**
 * The reference: a bare node:http server answering every request with a 303, in its own process,
 * with the reception's listen backlog (4096), so that 2,000 connections opening at once measure
 * the servers and not the kernel dropping SYNs at Node's default backlog of 511.
 */
/**
 * The deployment's content servers and its SQLite reception as processes of their own, quiet
 * (errors only); `nodeArgs` go to the reception (`--cpu-prof` for the benches' profiles).
 */
export function startBenchProcesses(
  d: TestDeployment,
  nodeArgs?: string[],
): { content: Proc[]; reception: Proc } {
  const content = d.config.contentServers.map((s) =>
    startRushgate(['content', '--config', d.configPath, '--id', s.id], { env: { LOG_LEVEL: 'error' } }),
  );
  const reception = startRushgate(['reception', '--config', d.configPath], {
    env: { LOG_LEVEL: 'error' },
    ...(nodeArgs ? { nodeArgs } : {}),
  });
  return { content, reception };
}

export function startRawServer(): Promise<{ child: ReturnType<typeof spawn>; port: number }> {
  const code = `
    const http = require('node:http');
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(303, { location: 'http://127.0.0.1:1/t/ticket/bench.bin', 'content-length': '0' });
        res.end();
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => process.send(server.address().port));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (port) => resolve({ child, port: Number(port) }));
    child.once('error', reject);
    child.once('exit', (c) => reject(new Error(`raw server exited ${c}`)));
  });
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);

/**
 * The grant row (CONTRACT §7): one shop key pair, `count` grants of distinct purchases (so every
 * order is a new one and every grant is verified once, as in a rush of buyers), one per line, and
 * a wrk script that sends each grant once, the two threads taking alternate lines.
 */
async function grantLoad(dir: string, count: number): Promise<{ jwks: string; script: string }> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwks = path.join(dir, 'bench-shop-jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench' }] }));
  const iat = Math.floor(Date.now() / 1000);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(
      await new SignJWT({ items: ['/bench.bin'] })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'bench' })
        .setIssuer('https://bench-shop.example')
        .setSubject(`purchase-${i}`)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 3600)
        .sign(privateKey),
    );
  }
  const grantsFile = path.join(dir, 'grants.txt');
  writeFileSync(grantsFile, `${lines.join('\n')}\n`);
  const script = path.join(dir, 'post-grant.lua');
  writeFileSync(
    script,
    [
      'local threads = 0',
      'function setup(thread) thread:set("offset", threads); threads = threads + 1 end',
      'local grants = {}',
      `for line in io.lines(${JSON.stringify(grantsFile)}) do grants[#grants + 1] = line end`,
      'local i = nil',
      'function request()',
      '  if i == nil then i = offset end',
      '  i = i + 2',
      '  local g = grants[(i % #grants) + 1]',
      '  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, \'{"item":"/bench.bin","grant":"\' .. g .. \'"}\')',
      'end',
      '',
    ].join('\n'),
  );
  return { jwks, script };
}

/**
 * RUSHGATE_BENCH_PROFILE=DIR: the SQLite reception runs with `node --cpu-prof` and writes its
 * profile into DIR when it stops (open it in Chrome's DevTools or read it with a script).
 */
const PROFILE_DIR = process.env.RUSHGATE_BENCH_PROFILE;

interface Setup {
  d: TestDeployment;
  procs: Proc[];
  memUrl: string;
}

/**
 * The deployment and its processes. Ports come from the harness (`candidatePorts`, held together
 * and released just before the processes start); if another process takes one in between, a
 * process exits "in use" and `withPortRetry` starts everything again on new ones.
 */
async function setUp(grantJwks: string): Promise<Setup> {
  const d = await makeDeployment({
    servers: 3,
    server: () => ({ capacity: 1_000_000 }),
    reception: {
      rateLimit: null,
      // wrk sends every order from one address: the per-client caps (fair shares) would refuse
      // nearly all of them, and the bench would time refusals instead of orders.
      limits: { ticketsPerClient: 10_000_000, placesPerClient: 10_000_000 },
      tickets: { policy: 'strict', claimSeconds: 3600 },
      monitor: { intervalMs: 500, timeoutMs: 2000, failuresBeforeDown: 3 },
      // Only the grant row sends grants; /bench.bin needs none (a grant sent is checked all the same).
      grants: {
        required: ['/paid/**'],
        issuers: [{ iss: 'https://bench-shop.example', jwks: grantJwks }],
      },
    },
  });
  d.writeItem('/bench.bin', 'x'.repeat(1024));
  // The same deployment with the reception on other ports and the memory: store.
  const memPorts = await candidatePorts(2);
  const memFile = path.join(d.dir, 'memory.yaml');
  const doc = parse(readFileSync(d.configPath, 'utf8')) as { reception: Record<string, unknown> };
  doc.reception.listen = `127.0.0.1:${memPorts[0]}`;
  doc.reception.internalListen = `127.0.0.1:${memPorts[1]}`;
  doc.reception.publicUrl = `http://127.0.0.1:${memPorts[0]}`;
  doc.reception.store = 'memory:';
  writeFileSync(memFile, stringify(doc));
  const memUrl = `http://127.0.0.1:${memPorts[0]}`;

  const procs: Proc[] = [];
  try {
    const { content, reception } = startBenchProcesses(
      d,
      PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : undefined,
    );
    procs.push(...content);
    const memReception = startRushgate(['reception', '--config', memFile], { env: { LOG_LEVEL: 'error' } });
    procs.push(reception, memReception);
    await waitForHttp(`${d.config.reception.publicUrl}/healthz`, { proc: reception, timeoutMs: 20_000 });
    await waitForHttp(`${memUrl}/healthz`, { proc: memReception, timeoutMs: 20_000 });
    for (const [i, s] of d.config.contentServers.entries()) {
      await waitForHttp(`${s.internalUrl}/healthz`, { proc: procs[i], timeoutMs: 20_000 });
    }
    return { d, procs, memUrl };
  } catch (err) {
    await Promise.all(procs.map((p) => p.kill()));
    d.cleanup();
    throw err;
  }
}

export async function runReceptionBench(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-bench-grants-'));
  const grantBench = await grantLoad(dir, GRANTS);
  const { d, procs, memUrl } = await withPortRetry(() => setUp(grantBench.jwks));
  const script = path.join(d.dir, 'post.lua');
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      'wrk.body = \'{"item":"/bench.bin"}\'',
      'wrk.headers["Content-Type"] = "application/json"',
      '',
    ].join('\n'),
  );

  let raw: ReturnType<typeof spawn> | undefined;
  try {
    // Every content server up before measuring, so tickets spread as they would in a rush.
    await everyServerUp(d.config.reception.internalUrl, 20_000);
    const started = await startRawServer();
    raw = started.child;
    const rawPort = started.port;
    const rawUrl = `http://127.0.0.1:${rawPort}/bench.bin`;
    const recUrl = `${d.config.reception.publicUrl}/api/orders`;
    const memOrders = `${memUrl}/api/orders`;
    for (const url of [recUrl, memOrders]) {
      const check = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"item":"/bench.bin"}',
      });
      if (check.status !== 201) throw new Error(`${url} answered ${check.status}: ${await check.text()}`);
    }

    console.log(
      `reception (strict, SQLite, notices acknowledged by 3 content servers) vs raw node:http 303; wrk -t2, ${RUN_S} s runs`,
    );
    await runWrk(rawUrl, script, THROUGHPUT_CONNECTIONS, WARMUP_S);
    const rawTput = await runWrk(rawUrl, script, THROUGHPUT_CONNECTIONS, RUN_S);
    await runWrk(recUrl, script, THROUGHPUT_CONNECTIONS, WARMUP_S);
    const recTput = await runWrk(recUrl, script, THROUGHPUT_CONNECTIONS, RUN_S);
    await runWrk(memOrders, script, THROUGHPUT_CONNECTIONS, WARMUP_S);
    const memTput = await runWrk(memOrders, script, THROUGHPUT_CONNECTIONS, RUN_S);
    await runWrk(recUrl, grantBench.script, THROUGHPUT_CONNECTIONS, WARMUP_S);
    const grantTput = await runWrk(recUrl, grantBench.script, THROUGHPUT_CONNECTIONS, RUN_S);
    const rawTail = await runWrk(rawUrl, script, TAIL_CONNECTIONS, RUN_S);
    const recTail = await runWrk(recUrl, script, TAIL_CONNECTIONS, RUN_S);
    const memTail = await runWrk(memOrders, script, TAIL_CONNECTIONS, RUN_S);

    const row = (name: string, t: WrkResult, l: WrkResult) =>
      `  ${name.padEnd(10)} ${fmt(t.requestsPerSecond).padStart(8)} req/s (p50 ${fmt(t.p50Ms, 2)} ms, errors ${t.errors})` +
      `   @${TAIL_CONNECTIONS}: p99 ${fmt(l.p99Ms, 1).padStart(7)} ms (p90 ${fmt(l.p90Ms, 1)} ms), ${fmt(l.requestsPerSecond)} req/s, errors ${l.errors}`;
    console.log(`  ${''.padEnd(10)} @${THROUGHPUT_CONNECTIONS} connections`);
    console.log(row('raw 303', rawTput, rawTail));
    console.log(row('reception', recTput, recTail));
    console.log(row('  memory:', memTput, memTail));
    console.log(
      `  EdDSA grants ${fmt(grantTput.requestsPerSecond).padStart(6)} req/s (p50 ${fmt(grantTput.p50Ms, 2)} ms, errors ${grantTput.errors}): ` +
        `${fmt(grantTput.requestsPerSecond / recTput.requestsPerSecond, 2)} × the same orders without grants (goal ≥ 0.7)`,
    );
    const tputRatio = recTput.requestsPerSecond / rawTput.requestsPerSecond;
    const p99Ratio = recTail.p99Ms / rawTail.p99Ms;
    console.log(
      `  throughput ratio ${fmt(tputRatio, 2)} × raw (goal ≥ 0.5)   p99 ratio at ${TAIL_CONNECTIONS} connections ${fmt(p99Ratio, 2)} × raw (goal ≤ 3)`,
    );
    console.log(
      `  with the memory: store: throughput ${fmt(memTput.requestsPerSecond / rawTput.requestsPerSecond, 2)} × raw, p99 ${fmt(memTail.p99Ms / rawTail.p99Ms, 2)} × raw`,
    );
    const status = (await (await fetch(`${d.config.reception.internalUrl}/status`)).json()) as {
      servers: { id: string; outstanding: number }[];
    };
    console.log(
      `  tickets outstanding per server afterwards: ${status.servers.map((s) => `${s.id} ${s.outstanding}`).join(', ')}`,
    );
  } finally {
    raw?.removeAllListeners('exit');
    raw?.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.kill()));
    d.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runReceptionBench();
}
