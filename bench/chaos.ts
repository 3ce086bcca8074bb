/**
 * The chaos rehearsal (`npm run chaos`, issue 8): `rushgate up` with three content servers, a rush
 * of buyers that each run `rushgate get`'s own flow (`runGet`: order, wait in line, download to
 * `FILE.part`, fresh tickets, digest check, rename), while a random content server is SIGKILLed
 * every ~`--kill-every` s (up's supervisor restarts it) and the reception once. Bounded: buyers
 * arrive over the first third of `--seconds` (a rush: the line builds up), kills stop at `--seconds`, and unfinished
 * buyers are stopped at 3 × `--seconds`. Then it checks the three outcomes and prints the table
 * (`--json`: the figures as one JSON document); exit 1 when an outcome failed.
 *
 * Buyers run in this process, not as 200 `rushgate get` processes: on a 2-core machine 200 Node
 * starts (~40 MB and ~0.3 CPU-s each) would cost more than the rush itself and mostly measure
 * Node's start-up. `runGet` is the whole command minus argument parsing, files and exit codes
 * included; a buyer whose run fails is run again on the same output, as a user would rerun it.
 *
 * Capacity is read from each content server's own `/metrics`, scraped every 250 ms: the
 * `rushgate_content_serving_max` high-water mark, so a peak between two scrapes is not missed.
 * The reception's answers are counted as the buyers saw them, through a dispatcher that notes the
 * status and error code of every reception response.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, type Dispatcher, Pool } from 'undici';
import { stringify } from 'yaml';
import { systemClock } from '../src/client/clock.js';
import { runGet } from '../src/client/get.js';
import { buyerAddress } from '../src/client/rush.js';
import type { ReadyDocument } from '../src/util/ready-file.js';
import { candidatePorts } from '../test/helpers/deployment.js';
import {
  type BuyerFigures,
  badAnswerCount,
  type ChaosFigures,
  type ChaosVerdict,
  formatChaosTable,
  promValue,
  type ServerFigures,
  tallyAnswer,
  verdictOf,
} from './chaos-figures.js';

export interface ChaosOptions {
  buyers: number;
  seconds: number;
  killEverySeconds: number;
  /** Bytes of each item. */
  itemBytes: number;
  /** Clients each content server serves at once. */
  capacity: number;
  /** Each buyer's download rate (bytes/s), so transfers last long enough to be cut. */
  limitRate: number;
  /** Lines of progress (stderr). */
  log?: (line: string) => void;
}

export interface ChaosResult {
  figures: ChaosFigures;
  verdict: ChaosVerdict;
}

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const ITEMS = 4;
const MAX_RUNS = 8;
const IDS = ['a', 'b', 'c'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => {});
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-chaos-'));
  try {
    const items = writeItems(dir, o.itemBytes);
    const up = await startUpWithRetry(dir, o, log);
    try {
      return await rehearse(dir, up, items, o, log);
    } finally {
      await up.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Item {
  path: string;
  sha256: string;
}

function writeItems(dir: string, bytes: number): Item[] {
  const root = path.join(dir, 'items');
  mkdirSync(root, { recursive: true });
  return Array.from({ length: ITEMS }, (_, i) => {
    const data = randomBytes(bytes);
    writeFileSync(path.join(root, `item-${i}.bin`), data);
    return { path: `/item-${i}.bin`, sha256: createHash('sha256').update(data).digest('hex') };
  });
}

interface Up {
  readyFile: string;
  ready: ReadyDocument;
  logTail: string[];
  stop(): Promise<void>;
}

/**
 * The reception and the content servers name each other in one file, so their ports are chosen
 * here (held together so they are distinct, released just before `up` starts); if another
 * process takes one in between, `up` refuses (exit 2, "in use") and the whole start is retried on
 * new ports. Restarted children bind the same ports again.
 */
async function startUpWithRetry(dir: string, o: ChaosOptions, log: (l: string) => void): Promise<Up> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startUp(dir, o);
    } catch (err) {
      if (attempt >= 5 || !/in use|EADDRINUSE/.test(String(err))) throw err;
      log(`a port was taken (${String(err)}); starting again on new ports`);
    }
  }
}

async function startUp(dir: string, o: ChaosOptions): Promise<Up> {
  const ports = await candidatePorts(2 + 2 * IDS.length);
  const port = (i: number) => ports[i]!;
  const deployment = {
    secrets: {
      ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
      internalToken: randomBytes(24).toString('base64url'),
    },
    reception: {
      listen: `127.0.0.1:${port(0)}`,
      internalListen: `127.0.0.1:${port(1)}`,
      publicUrl: `http://127.0.0.1:${port(0)}`,
      store: `sqlite:${path.join(dir, 'reception.db')}`,
    },
    contentServers: IDS.map((id, i) => ({
      id,
      publicUrl: `http://127.0.0.1:${port(2 + 2 * i)}`,
      internalUrl: `http://127.0.0.1:${port(3 + 2 * i)}`,
      listen: `127.0.0.1:${port(2 + 2 * i)}`,
      internalListen: `127.0.0.1:${port(3 + 2 * i)}`,
      root: path.join(dir, 'items'),
      capacity: o.capacity,
    })),
  };
  const configPath = path.join(dir, 'deployment.yaml');
  writeFileSync(configPath, stringify(deployment));
  const readyFile = path.join(dir, 'up.ready.json');
  rmSync(readyFile, { force: true });
  const logTail: string[] = [];
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'up', '--config', configPath, '--ready-file', readyFile, '--grace-seconds', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) logTail.push(line);
    if (logTail.length > 400) logTail.splice(0, logTail.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => {
    exitCode = c;
  });
  const stop = async () => {
    if (exitCode !== undefined) return;
    child.kill('SIGTERM');
    const late = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(late);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`rushgate up exited (${exitCode}): ${logTail.join('\n')}`);
    const doc = readJson(readyFile);
    if (doc?.role === 'up' && doc.reception && doc.contentServers) {
      return { readyFile, ready: doc, logTail, stop };
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`rushgate up was not ready within 60 s:\n${logTail.join('\n')}`);
    }
    await sleep(100);
  }
}

function readJson(file: string): ReadyDocument | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ReadyDocument;
  } catch {
    return undefined;
  }
}

/** The pid in a child's own ready file (`up` writes each child's next to its merged one). */
function childPid(up: Up, name: string): number | undefined {
  return readJson(`${up.readyFile}.${name}`)?.pid;
}

async function rehearse(
  dir: string,
  up: Up,
  items: Item[],
  o: ChaosOptions,
  log: (l: string) => void,
): Promise<ChaosResult> {
  const reception = up.ready.reception!.public;
  const servers = new Map<string, ServerFigures>(
    IDS.map((id) => [id, { id, capacity: o.capacity, maxServing: 0, scrapes: 0, kills: 0 }]),
  );
  const answers: Record<string, number> = {};
  const started = Date.now();
  const chaosEnds = started + o.seconds * 1000;
  const hardStop = new AbortController();
  // Every buyer listens to the one stop signal; many listeners are the design, not a leak.
  setMaxListeners(0, hardStop.signal);
  const hardTimer = setTimeout(() => hardStop.abort(new Error('3 × --seconds reached')), o.seconds * 3000);

  // Scrape each content server's own metrics, all through the run.
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      await Promise.all(
        IDS.map(async (id) => {
          const fig = servers.get(id)!;
          const url = `${up.ready.contentServers![id]!.internal}/metrics`;
          try {
            const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
            const page = await res.text();
            const max =
              promValue(page, 'rushgate_content_serving_max') ?? promValue(page, 'rushgate_content_serving');
            if (max === undefined) return;
            fig.maxServing = Math.max(fig.maxServing, max);
            fig.scrapes++;
          } catch {
            // Down (killed, restarting): nothing to read now.
          }
        }),
      );
      await sleep(250);
    }
  })();

  // Kill a random content server every ~killEvery s, and the reception once, near the middle.
  let receptionKills = 0;
  const killer = (async () => {
    const receptionAt = started + (o.seconds * 1000) / 2;
    let next = started + jitter(o.killEverySeconds * 1000);
    while (Date.now() < chaosEnds && !hardStop.signal.aborted) {
      if (receptionKills === 0 && Date.now() >= receptionAt) {
        if (killChild(up, 'reception', log)) receptionKills++;
      }
      if (Date.now() >= next) {
        const id = IDS[Math.floor(Math.random() * IDS.length)]!;
        // Read its last high-water mark first: the kill takes it with it.
        if (killChild(up, id, log)) servers.get(id)!.kills++;
        next = Date.now() + jitter(o.killEverySeconds * 1000);
      }
      await sleep(200);
    }
  })();

  // The rush: buyers arrive over the first third of the window, faster than the servers serve.
  const receptionOrigin = new URL(reception).origin;
  const arrivalMs = (o.seconds * 1000) / 3;
  const buyerDir = path.join(dir, 'buyers');
  mkdirSync(buyerDir, { recursive: true });
  let reruns = 0;
  let done = 0;
  let verified = 0;
  let wrongDigest = 0;
  const buyers = Array.from({ length: o.buyers }, async (_, i) => {
    await sleep((arrivalMs * i) / o.buyers);
    const item = items[i % items.length]!;
    const output = path.join(buyerDir, `buyer-${i}.bin`);
    // Each buyer from its own loopback address, as `rushgate rush` does: from one address all of
    // them were one client to the fair shares (`limits.*PerClient`), most answers were 429, and
    // the servers never filled.
    const dispatcher = countingAgent(receptionOrigin, answers, buyerAddress(i));
    for (let run = 1; run <= MAX_RUNS && !hardStop.signal.aborted; run++) {
      if (run > 1) reruns++;
      let code: number;
      try {
        code = await runGet(
          { url: `${reception}${item.path}`, output, json: false, limitRate: o.limitRate },
          {
            clock: systemClock,
            cwd: buyerDir,
            stdout: sink(),
            stderr: sink(),
            displayMode: 'quiet',
            signal: hardStop.signal,
            dispatcher,
          },
        );
      } catch {
        code = 1;
      }
      if (code === 0) break;
      await sleep(1000);
    }
    await dispatcher.close();
    // Each file is checked by this process, not only by the client's own digest check, as soon as
    // its buyer is done, and then removed: a rush of large items need not fit on the disk at once.
    if (existsSync(output)) {
      const sha = await sha256Of(output);
      if (sha === item.sha256) verified++;
      else wrongDigest++;
      rmSync(output, { force: true });
    }
    done++;
    if (done % 50 === 0)
      log(`${done}/${o.buyers} buyers done after ${Math.round((Date.now() - started) / 1000)} s`);
  });
  await Promise.all(buyers);
  await killer;
  clearTimeout(hardTimer);
  // A last scrape once things are calm, then stop.
  await sleep(500);
  scraping = false;
  await scraper;

  const buyerFigures: BuyerFigures = {
    total: o.buyers,
    verified,
    wrongDigest,
    missing: o.buyers - verified - wrongDigest,
    reruns,
  };
  const figures: ChaosFigures = {
    seconds: Math.round((Date.now() - started) / 1000),
    buyers: buyerFigures,
    servers: [...servers.values()],
    receptionKills,
    answers,
    badAnswers: badAnswerCount(answers),
  };
  return { figures, verdict: verdictOf(figures) };
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function jitter(ms: number): number {
  return ms * (0.75 + Math.random() * 0.5);
}

function killChild(up: Up, name: string, log: (l: string) => void): boolean {
  const pid = childPid(up, name);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGKILL');
    log(`SIGKILL ${name} (pid ${pid})`);
    return true;
  } catch {
    return false;
  }
}

function sink(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

/**
 * A buyer's connection pool, from its own source address, that also notes, for each response from
 * the reception, its status and error code (`error.code`, or `busy` for a waiting-line answer).
 */
function countingAgent(
  receptionOrigin: string,
  answers: Record<string, number>,
  localAddress: string,
): Agent {
  class CountingAgent extends Agent {
    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin?.origin;
      if (origin !== receptionOrigin) return super.dispatch(opts, handler);
      let status = 0;
      const chunks: Buffer[] = [];
      const h = handler as Record<string, unknown>;
      const wrapped = new Proxy(h, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          const fn = value as (...args: unknown[]) => unknown;
          if (prop === 'onHeaders')
            return (...args: unknown[]) => {
              status = Number(args[0]);
              return fn.apply(target, args);
            };
          if (prop === 'onResponseStart')
            return (...args: unknown[]) => {
              status = Number(args[1]);
              return fn.apply(target, args);
            };
          if (prop === 'onData' || prop === 'onResponseData')
            return (...args: unknown[]) => {
              const chunk = args[prop === 'onData' ? 0 : 1];
              if (status >= 400 && Buffer.isBuffer(chunk)) chunks.push(chunk);
              return fn.apply(target, args);
            };
          if (prop === 'onComplete' || prop === 'onResponseEnd')
            return (...args: unknown[]) => {
              if (status > 0) tallyAnswer(answers, status, status >= 400 ? codeOf(chunks) : undefined);
              status = 0;
              return fn.apply(target, args);
            };
          return fn.bind(target);
        },
      });
      return super.dispatch(opts, wrapped as Dispatcher.DispatchHandler);
    }
  }
  return new CountingAgent({
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 10_000,
    factory: (origin, opts) => new Pool(origin, { ...opts, localAddress }),
  });
}

function codeOf(chunks: Buffer[]): string {
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      error?: { code?: string } | string;
      code?: string;
      position?: number;
    };
    if (typeof body.error === 'object' && body.error?.code) return body.error.code;
    if (typeof body.error === 'string') return body.error;
    if (body.code) return body.code;
    if (typeof body.position === 'number') return 'busy';
    return 'unknown';
  } catch {
    return 'not_json';
  }
}

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a number > 0, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      buyers: { type: 'string' },
      seconds: { type: 'string' },
      'kill-every': { type: 'string' },
      'item-kib': { type: 'string' },
      capacity: { type: 'string' },
      'rate-kib': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const buyers = Math.round(positive(values.buyers, '--buyers', 200));
  const { figures, verdict } = await runChaos({
    buyers,
    seconds: positive(values.seconds, '--seconds', 90),
    killEverySeconds: positive(values['kill-every'], '--kill-every', 20),
    itemBytes: Math.round(positive(values['item-kib'], '--item-kib', 1024) * 1024),
    capacity: Math.round(positive(values.capacity, '--capacity', 2)),
    limitRate: Math.round(positive(values['rate-kib'], '--rate-kib', 1024) * 1024),
    log: (l) => process.stderr.write(`[chaos] ${l}\n`),
  });
  if (values.json) process.stdout.write(`${JSON.stringify({ ...figures, verdict })}\n`);
  else process.stdout.write(`${formatChaosTable(figures, verdict)}\n`);
  process.exitCode = verdict.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
}
