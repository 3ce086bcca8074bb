/**
 * The content server against Debian's nginx, side by side in one run, same files, same loopback:
 * (1) download throughput of a 1 GiB item with a valid ticket (curl, best of three alternating
 * rounds each — the machine is shared, so the best round is the least disturbed one), and
 * (2) requests per second for a 16 KiB item under a bounded load (wrk -t1 -c50, a 2 s warm-up
 * each, then two alternating rounds of 4 s, best kept), with each server's CPU time per request
 * beside it — a figure a busy machine disturbs far less than requests per second. Policy
 * `expiring` with one ticket reused by every request, so both servers do the same work per
 * request apart from our ticket check. The content servers run as `rushgate content` processes
 * of their own (port 0, ready files), as deployed, and each server's CPU time per download is
 * printed beside the 1 GiB rate. Goals: throughput ≥ 0.9 × nginx, requests/s ≥ 0.5 × nginx.
 * Prints the numbers and the ratios; no pass/fail. Run with `node --import tsx bench/content.ts`
 * after `npm run build`,
 * or import `runContentBench()`. Then both again over HTTPS (one self-signed certificate for both): the
 * TLS rows. Then (3) memory: 1,000 downloads of the 1 GiB item in flight at once from loopback,
 * each client reading 32 KiB/s, one ticket each, on a fresh content server: its peak RSS against
 * a stated budget (RSS_BUDGET), nginx's worker beside it. Takes about 2 min; needs nginx, curl
 * and wrk on the PATH (skips, saying so, when one is missing). `BENCH_SMALL_ONLY=1` runs only
 * the 16 KiB part (for iterating).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { keyRingOf } from '../src/config/keys.js';
import { parseConfig } from '../src/config/load.js';
import { issueTicket } from '../src/tickets/index.js';
import { candidatePorts } from '../test/helpers/deployment.js';
import { isPortClash, readReadyFile } from '../test/helpers/ports.js';
import { type Proc, startRushgate } from '../test/helpers/proc.js';

const run = promisify(execFile);
const NGINX = '/usr/sbin/nginx';

async function has(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** Bytes per second of one curl download to /dev/null. */
async function curlSpeed(url: string, cacert?: string): Promise<number> {
  const { stdout } = await run('curl', [
    ...(cacert ? ['--cacert', cacert] : []),
    '-s',
    '-f',
    '--max-time',
    '30',
    '-o',
    '/dev/null',
    '-w',
    '%{speed_download}',
    url,
  ]);
  return Number(stdout);
}

interface WrkResult {
  rps: number;
  requests: number;
}

/** wrk -t1 -c50 for `seconds`; throws when any answer was not 2xx/3xx. */
async function wrkRps(url: string, seconds: number): Promise<WrkResult> {
  const { stdout } = await run('wrk', ['-t1', '-c50', `-d${seconds}s`, url], {
    timeout: (seconds + 20) * 1000,
  });
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} non-2xx answers from ${url}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const requests = /(\d+) requests in/.exec(stdout);
  if (!rps || !requests) throw new Error(`cannot read wrk output:\n${stdout}`);
  return { rps: Number(rps[1]), requests: Number(requests[1]) };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSecondsOf(pid: number | undefined): number {
  const { user, system } = cpuSplitOf(pid);
  return user + system;
}

/** User and system CPU seconds of a process so far (utime, stime: fields 14 and 15 of /proc/PID/stat, in 1/100 s). */
function cpuSplitOf(pid: number | undefined): { user: number; system: number } {
  if (pid === undefined) return { user: Number.NaN, system: Number.NaN };
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** Runs a wrk measurement and reports the server's CPU µs per request beside it. */
async function withCpu(
  pid: () => number | undefined,
  measure: () => Promise<WrkResult>,
): Promise<{ rps: number; cpu: number; user: number }> {
  const before = cpuSplitOf(pid());
  const r = await measure();
  const after = cpuSplitOf(pid());
  const user = ((after.user - before.user) * 1e6) / r.requests;
  return { rps: r.rps, cpu: user + ((after.system - before.system) * 1e6) / r.requests, user };
}

interface NginxHandle {
  stop(): Promise<void>;
  workerPid(): number | undefined;
}

function startNginx(
  dir: string,
  root: string,
  port: number,
  /** A second, HTTPS server block (the TLS rows): same root, the certificate rushgate serves. */
  tls?: { port: number; cert: string; key: string },
): Promise<NginxHandle> {
  const conf = path.join(dir, 'nginx.conf');
  mkdirSync(path.join(dir, 'nginx-tmp'), { recursive: true });
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/nginx-tmp;
  proxy_temp_path ${dir}/nginx-tmp;
  fastcgi_temp_path ${dir}/nginx-tmp;
  uwsgi_temp_path ${dir}/nginx-tmp;
  scgi_temp_path ${dir}/nginx-tmp;
  server { listen 127.0.0.1:${port}; root ${root}; }
  ${tls ? `server { listen 127.0.0.1:${tls.port} ssl; root ${root}; ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key}; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:TLS:1m; }` : ''}
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const poll = () => {
      if (child.exitCode !== null) return reject(new Error(`nginx exited: ${err}`));
      const req = http.get(`http://127.0.0.1:${port}/small.bin`, (res) => {
        res.resume();
        resolve({
          stop,
          workerPid() {
            // With worker_processes 1, the master has exactly one child.
            try {
              const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
              return Number(children.split(/\s+/)[0]) || undefined;
            } catch {
              return undefined;
            }
          },
        });
      });
      req.on('error', () => {
        if (Date.now() > deadline) {
          void stop();
          reject(new Error(`nginx did not start: ${err}`));
        } else setTimeout(poll, 100);
      });
    };
    poll();
  });
}

/** A stand-in for the reception's internal port, so transfer events are accepted, not retried. */
function eventSink(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const fmtRate = (bps: number) => `${(bps / 1024 ** 2).toFixed(0)} MiB/s`;

/**
 * RUSHGATE_BENCH_PROFILE=DIR: the plain-HTTP content server runs with `node --cpu-prof` and writes
 * its profile into DIR when it stops.
 */
const PROFILE_DIR = process.env.RUSHGATE_BENCH_PROFILE;

/**
 * A content server in a process of its own, as in a deployment: inside the bench's process it
 * would share a heap and a JIT with the harness and with the benchmarks run before it (after the
 * tickets bench it took ~30% more CPU per request than alone).
 */
async function startContent(
  configPath: string,
  id: string,
  readyFile: string,
): Promise<{ proc: Proc; port: number }> {
  const proc = startRushgate(['content', '--config', configPath, '--id', id, '--ready-file', readyFile], {
    env: { LOG_LEVEL: 'error' },
    ...(PROFILE_DIR && id === 'a' ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] } : {}),
  });
  const ready = await Promise.race([
    readReadyFile(readyFile),
    proc.exited.then((c) => {
      throw new Error(`content server ${id} exited (${c}):\n${proc.output()}`);
    }),
  ]);
  const url = ready.contentServers?.[id]?.public;
  if (!url) throw new Error(`no public address in ${readyFile}`);
  return { proc, port: Number(new URL(url).port) };
}

export async function runContentBench(): Promise<void> {
  for (const cmd of [NGINX, 'curl', 'wrk']) {
    if (!(await has(cmd))) {
      console.log(`content bench skipped: ${cmd} not found`);
      return;
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-bench-content-'));
  const root = path.join(dir, 'content');
  mkdirSync(root);
  // nginx's worker runs as an unprivileged user: it must be able to read the files.
  chmodSync(dir, 0o755);
  chmodSync(root, 0o755);
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    // 1 GiB of real (non-sparse) data: a random MiB written 1024 times, so both servers read
    // populated page-cache pages rather than holes.
    const smallOnly = process.env.BENCH_SMALL_ONLY === '1';
    const block = randomBytes(1024 * 1024);
    const fd = openSync(path.join(root, 'big.bin'), 'w');
    for (let i = 0; i < (smallOnly ? 1 : 1024); i++) writeSync(fd, block);
    closeSync(fd);
    writeFileSync(path.join(root, 'small.bin'), randomBytes(16 * 1024));

    // TLS rows: a second content server with `tls`, and nginx's HTTPS block, one self-signed cert.
    const tls = makeBenchCert(dir);
    const sink = await eventSink();
    cleanups.push(() => new Promise<void>((r) => sink.close(() => r())));
    const recInt = (sink.address() as { port: number }).port;
    // The content servers listen on port 0 and say where in their ready files.
    const server = (id: string, extra: Record<string, unknown> = {}) => ({
      id,
      publicUrl: 'http://127.0.0.1:1',
      internalUrl: 'http://127.0.0.1:1',
      listen: '127.0.0.1:0',
      internalListen: '127.0.0.1:0',
      root,
      capacity: 100,
      // wrk's 50 connections share one ticket here; the per-ticket cap (default 8) is for buyers.
      connectionsPerTicket: 100,
      ...extra,
    });
    const doc = {
      secrets: {
        ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
        internalToken: randomBytes(24).toString('base64url'),
      },
      reception: { internalListen: `127.0.0.1:${recInt}`, store: 'memory:', tickets: { policy: 'expiring' } },
      contentServers: [
        server('a'),
        server('tls', { tls: { cert: tls.cert, key: tls.key } }),
        // The memory row: one ticket per slow client, as in a rush.
        server('mem', { capacity: SLOW.transfers + 100, connectionsPerTicket: 1 }),
      ],
    };
    const config = parseConfig(doc);
    const configPath = path.join(dir, 'deployment.yaml');
    writeFileSync(configPath, stringify(doc));
    const a = await startContent(configPath, 'a', path.join(dir, 'ready-a.json'));
    cleanups.push(() => a.proc.kill().then(() => {}));
    const b = await startContent(configPath, 'tls', path.join(dir, 'ready-tls.json'));
    cleanups.push(() => b.proc.kill().then(() => {}));
    const pub = a.port;
    const tlsPub = b.port;
    // nginx cannot report a port it chose: two are held together and released just before it
    // starts; if another process takes one in between, it fails "in use" and starts on new ones.
    let nginx: NginxHandle | undefined;
    let nginxPort = 0;
    let nginxTlsPort = 0;
    for (let attempt = 1; !nginx; attempt++) {
      [nginxPort, nginxTlsPort] = (await candidatePorts(2)) as [number, number];
      try {
        nginx = await startNginx(dir, root, nginxPort, { port: nginxTlsPort, cert: tls.cert, key: tls.key });
      } catch (err) {
        if (attempt >= 5 || !isPortClash(err)) throw err;
      }
    }
    cleanups.push(nginx.stop);
    const nginxCpu = () => cpuSecondsOf(nginx.workerPid());
    const ownCpu = () => cpuSecondsOf(a.proc.child.pid);

    const ticketFor = (itemPath: string, serverId = 'a', ticketId = `bench-${itemPath}`) =>
      issueTicket(
        {
          ticketId,
          orderId: 'bench',
          serverId,
          path: itemPath,
          clientAddress: '127.0.0.1',
          nowMs: Date.now(),
        },
        {
          policy: 'expiring',
          ttlSeconds: 3600,
          startDelaySeconds: 0,
          bindClientAddress: false,
          bindPrefix: { ipv4: 32, ipv6: 64 },
        },
        keyRingOf(config),
      ).token;
    const ours = (itemPath: string) => `http://127.0.0.1:${pub}/t/${ticketFor(itemPath)}${itemPath}`;
    const theirs = (itemPath: string) => `http://127.0.0.1:${nginxPort}${itemPath}`;

    if (!smallOnly) {
      // Warm the page cache and both servers once.
      await curlSpeed(theirs('/big.bin'));
      await curlSpeed(ours('/big.bin'));

      let oursBest = 0;
      let nginxBest = 0;
      // Server CPU seconds per download, least of 3: like CPU per request below, a busy machine
      // disturbs it far less than the rate (other processes slow curl and the server alike).
      let oursCpu = Number.POSITIVE_INFINITY;
      let nginxCpuBest = Number.POSITIVE_INFINITY;
      const timed = async (cpu: () => number, url: string) => {
        const before = cpu();
        const speed = await curlSpeed(url);
        return { speed, cpu: cpu() - before };
      };
      for (let round = 0; round < 3; round++) {
        const n = await timed(nginxCpu, theirs('/big.bin'));
        nginxBest = Math.max(nginxBest, n.speed);
        nginxCpuBest = Math.min(nginxCpuBest, n.cpu);
        const o = await timed(ownCpu, ours('/big.bin'));
        oursBest = Math.max(oursBest, o.speed);
        oursCpu = Math.min(oursCpu, o.cpu);
      }
      const throughputRatio = oursBest / nginxBest;
      console.log(
        `1 GiB download (curl, best of 3): rushgate ${fmtRate(oursBest)}, nginx ${fmtRate(nginxBest)}, ` +
          `ratio ${throughputRatio.toFixed(2)} (goal ≥ 0.9)`,
      );
      console.log(
        `  server CPU per 1 GiB download: rushgate ${oursCpu.toFixed(2)} s, nginx ${nginxCpuBest.toFixed(2)} s`,
      );
    }

    const smallOurs = ours('/small.bin');
    const smallTheirs = theirs('/small.bin');
    // Warm-up (JIT, heap sizing), not counted.
    await wrkRps(smallTheirs, 2);
    await wrkRps(smallOurs, 2);
    const best = { ours: { rps: 0, cpu: 0, user: 0 }, nginx: { rps: 0, cpu: 0, user: 0 } };
    for (let round = 0; round < 2; round++) {
      const n = await withCpu(nginx.workerPid, () => wrkRps(smallTheirs, 4));
      if (n.rps > best.nginx.rps) best.nginx = n;
      const o = await withCpu(
        () => a.proc.child.pid,
        () => wrkRps(smallOurs, 4),
      );
      if (o.rps > best.ours.rps) best.ours = o;
    }
    const rpsRatio = best.ours.rps / best.nginx.rps;
    console.log(
      `16 KiB item (wrk -t1 -c50, best of 2 × 4 s): rushgate ${best.ours.rps.toFixed(0)} req/s, ` +
        `nginx ${best.nginx.rps.toFixed(0)} req/s, ratio ${rpsRatio.toFixed(2)} (goal ≥ 0.5)`,
    );
    console.log(
      `  server CPU per request (disturbed far less by a busy machine): rushgate ${best.ours.cpu.toFixed(0)} µs ` +
        `(user ${best.ours.user.toFixed(0)}), nginx ${best.nginx.cpu.toFixed(0)} µs (user ${best.nginx.user.toFixed(0)})`,
    );

    if (!smallOnly) {
      // A fresh server of its own, so the figure is the slow transfers' and not the heap left by
      // the rows above.
      const mem = await startContent(configPath, 'mem', path.join(dir, 'ready-mem.json'));
      cleanups.push(() => mem.proc.kill().then(() => {}));
      const tickets = Array.from({ length: SLOW.transfers }, (_, i) =>
        ticketFor('/big.bin', 'mem', `bench-slow-${i}`),
      );
      const o = await rssWithSlowTransfers(mem.proc.child.pid, mem.port, (i) => `/t/${tickets[i]}/big.bin`);
      const n = await rssWithSlowTransfers(nginx.workerPid(), nginxPort, () => '/big.bin');
      console.log(
        `${SLOW.transfers} slow transfers in flight (${SLOW.bytesPerSecond / 1024} KiB/s each, held ${SLOW.holdMs / 1000} s): ` +
          `rushgate RSS ${fmtMiB(o.peak)} (idle ${fmtMiB(o.idle)}; budget ${fmtMiB(RSS_BUDGET)}, ` +
          `${o.peak <= RSS_BUDGET ? 'within' : 'OVER'}), nginx worker RSS ${fmtMiB(n.peak)} (idle ${fmtMiB(n.idle)})`,
      );
      console.log(
        `  clients received: rushgate ${fmtRate(o.rate)}, nginx ${fmtRate(n.rate)} ` +
          `(${fmtRate(SLOW.transfers * SLOW.bytesPerSecond)} asked)`,
      );
      await mem.proc.kill();
    }

    await tlsRows({
      smallOnly,
      cacert: tls.cert,
      ours: (itemPath) => `https://127.0.0.1:${tlsPub}/t/${ticketFor(itemPath, 'tls')}${itemPath}`,
      theirs: (itemPath) => `https://127.0.0.1:${nginxTlsPort}${itemPath}`,
    });
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Resident memory of a process, bytes (VmRSS in /proc/PID/status). */
function rssOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The memory row: how many transfers, how fast each client reads, how long they are held. */
const SLOW = {
  transfers: Number(process.env.BENCH_SLOW_TRANSFERS ?? 1000),
  bytesPerSecond: 32 * 1024,
  holdMs: 5000,
  /** Connections opened at a time: the listen backlog (511) would drop a burst of 1,000 SYNs. */
  batch: 100,
};
/** What the content server may take with SLOW.transfers in flight: idle (~90 MiB) + 64 KiB each + the 64 MiB large-buffer pool, rounded up. */
const RSS_BUDGET = 256 * 1024 ** 2;

/**
 * `n` downloads from loopback whose clients read at `bytesPerSecond` each (raw sockets paused and
 * resumed every 50 ms: an HTTP client library would cost more CPU than the server). Resolves
 * once every one has its `200` header; `close()` ends them all.
 */
async function slowTransfers(
  port: number,
  pathOf: (i: number) => string,
  n: number,
  bytesPerSecond: number,
): Promise<{ received(): number; close(): void }> {
  const sockets: net.Socket[] = [];
  // Each socket reads at most `bytesPerSecond × seconds since it connected`: paused when ahead,
  // resumed by the tick once time has caught up. (Pausing alone is not a rate: every resume
  // takes a whole kernel buffer's worth.)
  const got = new Map<net.Socket, { bytes: number; since: number }>();
  const ahead = (g: { bytes: number; since: number }) =>
    g.bytes > (bytesPerSecond * (performance.now() - g.since)) / 1000;
  let total = 0;
  const tick = setInterval(() => {
    for (const s of sockets) {
      const g = got.get(s);
      if (g && s.isPaused() && !ahead(g)) s.resume();
    }
  }, 50);
  const open = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`GET ${pathOf(i)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      });
      sockets.push(s);
      const g = { bytes: 0, since: performance.now() };
      got.set(s, g);
      let answered = false;
      s.on('data', (c: Buffer) => {
        total += c.length;
        g.bytes += c.length;
        if (ahead(g)) s.pause();
        if (!answered) {
          // The status line arrives in the first packet; nothing else of the answer is read.
          answered = true;
          const status = c.toString('latin1', 0, Math.min(c.length, 64)).split('\r\n')[0];
          if (status?.startsWith('HTTP/1.1 200 ')) resolve();
          else reject(new Error(`slow transfer ${i}: ${status}`));
        }
      });
      s.on('error', reject);
    });
  try {
    for (let i = 0; i < n; i += SLOW.batch) {
      await Promise.all(Array.from({ length: Math.min(SLOW.batch, n - i) }, (_, j) => open(i + j)));
    }
  } catch (err) {
    clearInterval(tick);
    for (const s of sockets) s.destroy();
    throw err;
  }
  return {
    received: () => total,
    close() {
      clearInterval(tick);
      for (const s of sockets) s.destroy();
    },
  };
}

/** Holds SLOW.transfers slow downloads on a server and returns its idle and peak RSS. */
async function rssWithSlowTransfers(
  pid: number | undefined,
  port: number,
  pathOf: (i: number) => string,
): Promise<{ idle: number; peak: number; rate: number }> {
  const idle = rssOf(pid);
  const transfers = await slowTransfers(port, pathOf, SLOW.transfers, SLOW.bytesPerSecond);
  const start = transfers.received();
  const started = Date.now();
  let peak = rssOf(pid);
  try {
    while (Date.now() - started < SLOW.holdMs) {
      await new Promise((r) => setTimeout(r, 200));
      peak = Math.max(peak, rssOf(pid));
    }
  } finally {
    transfers.close();
  }
  const rate = (transfers.received() - start) / ((Date.now() - started) / 1000);
  return { idle, peak, rate };
}

const fmtMiB = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

/** A self-signed certificate for 127.0.0.1 (openssl), served by both rushgate and nginx. */
function makeBenchCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'bench.crt');
  const key = path.join(dir, 'bench.key');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=bench'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1'],
    ],
    { stdio: 'ignore' },
  );
  // nginx's worker reads them as an unprivileged user.
  chmodSync(cert, 0o644);
  chmodSync(key, 0o644);
  return { cert, key };
}

/**
 * The same two measurements over HTTPS (TLS 1.3, one certificate for both servers): the 1 GiB
 * download and the 16 KiB requests. wrk keeps its connections, so the 16 KiB row measures
 * encryption per request, not handshakes. `BENCH_WRK_SECONDS` shortens the wrk runs (smoke checks).
 */
async function tlsRows(o: {
  smallOnly: boolean;
  cacert: string;
  ours: (itemPath: string) => string;
  theirs: (itemPath: string) => string;
}): Promise<void> {
  const secs = Number(process.env.BENCH_WRK_SECONDS ?? 4);
  if (!o.smallOnly) {
    await curlSpeed(o.theirs('/big.bin'), o.cacert);
    await curlSpeed(o.ours('/big.bin'), o.cacert);
    let oursBest = 0;
    let nginxBest = 0;
    for (let round = 0; round < 3; round++) {
      nginxBest = Math.max(nginxBest, await curlSpeed(o.theirs('/big.bin'), o.cacert));
      oursBest = Math.max(oursBest, await curlSpeed(o.ours('/big.bin'), o.cacert));
    }
    console.log(
      `TLS 1 GiB download (curl, best of 3): rushgate ${fmtRate(oursBest)}, nginx ${fmtRate(nginxBest)}, ` +
        `ratio ${(oursBest / nginxBest).toFixed(2)}`,
    );
  }
  const small = { ours: o.ours('/small.bin'), theirs: o.theirs('/small.bin') };
  await wrkRps(small.theirs, Math.min(2, secs));
  await wrkRps(small.ours, Math.min(2, secs));
  let ours = 0;
  let theirs = 0;
  for (let round = 0; round < 2; round++) {
    theirs = Math.max(theirs, (await wrkRps(small.theirs, secs)).rps);
    ours = Math.max(ours, (await wrkRps(small.ours, secs)).rps);
  }
  console.log(
    `TLS 16 KiB item (wrk -t1 -c50, best of 2 × ${secs} s): rushgate ${ours.toFixed(0)} req/s, ` +
      `nginx ${theirs.toFixed(0)} req/s, ratio ${(ours / theirs).toFixed(2)}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runContentBench();
}
