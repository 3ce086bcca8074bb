/**
 * `rushgate rush URL --clients N` runs a rehearsal of a launch (CONTRACT §5). N simulated buyers
 * each go through the same order flow as `rushgate get` (`order-flow.ts`): they order, wait in
 * line holding their retries open (`Prefer: wait`) with their queue token, download under their
 * ticket at `--rate` (so slots turn over like real downloads), get fresh tickets when needed, and
 * check every byte against the stated `Repr-Digest`. Their bytes are discarded, not saved.
 *
 * When the URL is on loopback, every buyer has its own source address (127.x.y.z: all of
 * 127.0.0.0/8 is local on Linux), so the reception sees N clients, not one, and its per-client
 * limits apply to each as they would in a real rush. Each buyer has its own small connection pool
 * (at most one socket per server it talks to, idle ones closed after a few seconds), so 10,000
 * buyers stay within one process's open files. With `statusUrl` (the reception's internal
 * `GET /status`) the slots in use are sampled while anyone waits.
 *
 * The rehearsal is bounded: N buyers, and `maxSeconds`, after which unfinished buyers are stopped
 * and counted. It sends requests only to the given URL's reception, to the content servers that
 * reception's tickets name, and to `statusUrl`.
 */
import { isIPv4 } from 'node:net';
import { Agent, type Dispatcher, Pool, request } from 'undici';
import { UsageError } from '../errors.js';
import { linkSignal, signalFanout } from './abort-link.js';
import type { Clock } from './clock.js';
import { parseItemUrl } from './item-url.js';
import { runOrder } from './order-flow.js';
import { createReceptionClient, type ReceptionAnswer, type ReceptionClient } from './reception-api.js';
import { type BuyerRecord, buildReport, type RushReport, type SlotSample } from './rush-report.js';
import { DiscardSink } from './sink.js';

export const RUSH_LIMITS = { maxClients: 100_000, maxConcurrency: 10_000 } as const;

export interface RushOptions {
  url: string;
  clients: number;
  concurrency: number;
  maxSeconds: number;
  /** Bytes per second each buyer downloads at; undefined = as fast as it comes. */
  rate?: number;
  /** The reception's internal `GET /status`, sampled for the slots in use while anyone waits. */
  statusUrl?: string;
  /** Admissions out of line order by more than this are FIFO inversions; default 1 s. */
  fifoToleranceSeconds?: number;
  /** Buyers arrive evenly over this many seconds from the start (a launch's arrivals); 0 = at once. */
  rampSeconds?: number;
  /** How often a waiting buyer reads its place; defaults to `get`'s. */
  placeReadIntervalMs?: number;
}

export interface RushDeps {
  clock: Clock;
  /** Ends the rehearsal early (Ctrl-C); unfinished buyers are counted as such. */
  signal?: AbortSignal;
  /** Called as buyers finish, e.g. for a progress line. */
  onBuyerDone?(done: number, total: number): void;
  /** Given every buyer's record at the end, in the order they finished (`rushgate rush --buyers`). */
  onRecords?(records: readonly BuyerRecord[]): void;
}

const STATUS_SAMPLE_MS = 500;
/** Idle keep-alive sockets of a buyer close after this, so a buyer holds about one at a time. */
const BUYER_KEEP_ALIVE_MS = 4_000;

export function checkRushOptions(o: RushOptions): void {
  if (!Number.isInteger(o.clients) || o.clients < 1 || o.clients > RUSH_LIMITS.maxClients)
    throw new UsageError(`--clients must be a whole number from 1 to ${RUSH_LIMITS.maxClients}`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > RUSH_LIMITS.maxConcurrency)
    throw new UsageError(`--concurrency must be a whole number from 1 to ${RUSH_LIMITS.maxConcurrency}`);
  if (!Number.isFinite(o.maxSeconds) || o.maxSeconds <= 0) throw new UsageError('--max-seconds must be > 0');
  if (o.rate !== undefined && !(o.rate >= 1))
    throw new UsageError('--rate must be at least 1 byte per second');
  if (o.rampSeconds !== undefined && !(o.rampSeconds >= 0 && o.rampSeconds < o.maxSeconds))
    throw new UsageError('--ramp must be a number of seconds ≥ 0 and below --max-seconds');
  if (o.fifoToleranceSeconds !== undefined && !(o.fifoToleranceSeconds >= 0))
    throw new UsageError('--fifo-tolerance must be a number of seconds ≥ 0');
  if (o.statusUrl !== undefined && !/^https?:\/\/[^/]/.test(o.statusUrl))
    throw new UsageError('--status must be an http(s) URL of the reception’s internal GET /status');
}

/** Whether a URL's host is an IPv4 address in 127.0.0.0/8. Pure. */
export function isLoopbackV4Url(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return isIPv4(host) && host.startsWith('127.');
}

/**
 * Buyer `i`'s own source address: 127.1.0.1, 127.1.0.2, … skipping each /24's network and
 * broadcast addresses and staying clear of 127.0.0.x, where servers usually listen. Pure.
 */
export function buyerAddress(i: number): string {
  const perNet = 254;
  const host = (i % perNet) + 1;
  const net = Math.floor(i / perNet);
  const b = 1 + Math.floor(net / 256);
  if (b > 254) throw new RangeError(`no loopback address for buyer ${i}`);
  return `127.${b}.${net % 256}.${host}`;
}

/** A buyer's own pool: one socket per origin, from its own address to loopback origins. */
function buyerDispatcher(localAddress: string | undefined): Agent {
  return new Agent({
    connections: 1,
    pipelining: 1,
    keepAliveTimeout: BUYER_KEEP_ALIVE_MS,
    factory: (origin, opts) =>
      new Pool(origin, {
        ...opts,
        ...(localAddress !== undefined && isLoopbackV4Url(String(origin)) ? { localAddress } : {}),
      }),
  });
}

interface Tally {
  busy: number;
  held: number;
  tickets: string[];
  tries: NonNullable<BuyerRecord['tries']>;
}

/**
 * The reception client, counting busy answers and tickets as they arrive, so that a buyer stopped
 * mid-way (`--max-seconds`, Ctrl-C) still reports what it was told.
 */
function tallied(reception: ReceptionClient, tally: Tally, sinceStart: () => number): ReceptionClient {
  const count = (askedAt: number, a: ReceptionAnswer): ReceptionAnswer => {
    let kind: 't' | 'b' | 'h' | 'e' = 'e';
    if (a.kind === 'busy') {
      tally.busy++;
      kind = 'b';
      if (a.waitAppliedSeconds !== undefined) {
        tally.held++;
        kind = 'h';
      }
    } else if (a.kind === 'ticketed') {
      tally.tickets.push(a.ticket.server);
      kind = 't';
    }
    tally.tries.push([askedAt, sinceStart(), kind]);
    return a;
  };
  return {
    origin: reception.origin,
    get attempts() {
      return reception.attempts;
    },
    order: async (req, signal) => {
      const at = sinceStart();
      return count(at, await reception.order(req, signal));
    },
    freshTicket: async (orderId, token, signal, ask) => {
      const at = sinceStart();
      return count(at, await reception.freshTicket(orderId, token, signal, ask));
    },
    queue: (token, signal) => reception.queue(token, signal),
  };
}

/** One reading of `GET /status`: usable slots, those in use, and whether anyone waits. Pure. */
export function slotSampleOf(body: unknown, at: number): SlotSample | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as { servers?: unknown; queue?: { length?: unknown } };
  if (!Array.isArray(b.servers) || typeof b.queue?.length !== 'number') return undefined;
  let usable = 0;
  let used = 0;
  for (const s of b.servers as Record<string, unknown>[]) {
    if (s.health !== 'up' || s.draining === true) continue;
    const cap = typeof s.usableCapacity === 'number' ? s.usableCapacity : s.capacity;
    if (typeof cap !== 'number' || cap <= 0) continue;
    const out = typeof s.outstanding === 'number' ? s.outstanding : 0;
    usable += cap;
    used += Math.min(out, cap);
  }
  return { at, waiting: b.queue.length, usable, used };
}

export async function runRush(opts: RushOptions, deps: RushDeps): Promise<RushReport> {
  checkRushOptions(opts);
  const { origin, item } = parseItemUrl(opts.url);
  const { clock } = deps;
  const started = clock.now();
  const stop = new AbortController();
  // Each buyer listens to a child of the stop signal, never to the stop signal itself.
  const buyers = signalFanout(stop.signal);
  const timer = setTimeout(() => stop.abort(new Error('--max-seconds reached')), opts.maxSeconds * 1000);
  const onOuterAbort = () => stop.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const ownAddresses = isLoopbackV4Url(origin);

  const records: BuyerRecord[] = [];
  let next = 0;
  let finished = 0;

  const samples: SlotSample[] = [];
  const statusErrors = { count: 0 };
  const sampler = opts.statusUrl
    ? sampleStatus(opts.statusUrl, clock, samples, statusErrors, stop.signal)
    : undefined;

  async function buyer(index: number): Promise<BuyerRecord> {
    const startedMs = clock.now() - started;
    const address = ownAddresses ? buyerAddress(index) : undefined;
    const dispatcher: Dispatcher = buyerDispatcher(address);
    const tally: Tally = { busy: 0, held: 0, tickets: [], tries: [] };
    const reception = tallied(
      createReceptionClient({ origin, dispatcher }),
      tally,
      () => clock.now() - started,
    );
    const sink = new DiscardSink();
    const own = buyers.child();
    try {
      const r = await runOrder({
        reception,
        item,
        sink,
        clock,
        signal: own.signal,
        dispatcher,
        ...(opts.rate === undefined ? {} : { limitRate: opts.rate }),
        ...(opts.placeReadIntervalMs === undefined ? {} : { placeReadIntervalMs: opts.placeReadIntervalMs }),
      });
      const fb = r.firstBusy;
      return {
        outcome: r.kind,
        startedMs,
        ...(address ? { address } : {}),
        ...(r.admittedAfterMs === undefined ? {} : { admittedAfterMs: r.admittedAfterMs }),
        ...(r.admittedAt === undefined ? {} : { admittedAtMs: r.admittedAt - started }),
        finishedAfterMs: clock.now() - started - startedMs,
        ...(r.firstEstimateSeconds === undefined ? {} : { firstEstimateSeconds: r.firstEstimateSeconds }),
        ...(fb
          ? {
              joinAskedAtMs: fb.askedAt - started,
              joinedAtMs: fb.answeredAt - started,
              firstPosition: fb.position,
              ...(fb.estimatedWaitRangeSeconds ? { firstRangeSeconds: fb.estimatedWaitRangeSeconds } : {}),
            }
          : {}),
        busyAnswers: r.busyAnswers,
        heldAnswers: r.heldAnswers,
        tries: tally.tries,
        attempts: r.attempts,
        tickets: r.tickets,
        bytes: r.bytes,
        ...(r.kind === 'done' ? { digestChecked: r.digestChecked === true } : {}),
        ...(r.kind === 'failed' ? { errorCode: r.code, errorMessage: r.message } : {}),
      };
    } catch (err) {
      return {
        outcome: stop.signal.aborted ? 'unfinished' : 'failed',
        startedMs,
        ...(address ? { address } : {}),
        busyAnswers: tally.busy,
        heldAnswers: tally.held,
        tries: tally.tries,
        attempts: reception.attempts,
        tickets: tally.tickets,
        bytes: sink.length,
        errorCode: stop.signal.aborted ? 'unfinished' : err instanceof Error ? err.message : String(err),
      };
    } finally {
      own.release();
      // Its sockets go with it, so finished buyers hold no open files.
      void dispatcher.destroy().catch(() => {});
    }
  }

  /** Waits for buyer `index`'s arrival time under `--ramp`; false when the rehearsal stopped first. */
  async function arrival(index: number): Promise<boolean> {
    const rampMs = (opts.rampSeconds ?? 0) * 1000;
    const wait = started + (rampMs * index) / opts.clients - clock.now();
    if (wait <= 0) return !stop.signal.aborted;
    const own = buyers.child();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, wait);
      own.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    own.release();
    return !stop.signal.aborted;
  }

  async function worker(): Promise<void> {
    while (next < opts.clients && !stop.signal.aborted) {
      const index = next++;
      if (!(await arrival(index))) break;
      records.push(await buyer(index));
      finished++;
      deps.onBuyerDone?.(finished, opts.clients);
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.clients) }, () => worker()));
  } finally {
    clearTimeout(timer);
    deps.signal?.removeEventListener('abort', onOuterAbort);
    if (!stop.signal.aborted) stop.abort(new Error('rush over'));
    await sampler;
  }
  // Buyers never started because the rehearsal was stopped count as unfinished too.
  for (let i = records.length; i < opts.clients; i++) {
    records.push({
      outcome: 'unfinished',
      startedMs: clock.now() - started,
      busyAnswers: 0,
      heldAnswers: 0,
      attempts: 0,
      tickets: [],
      bytes: 0,
      errorCode: 'unfinished',
    });
  }
  deps.onRecords?.(records);
  return buildReport(records, {
    url: opts.url,
    clients: opts.clients,
    concurrency: Math.min(opts.concurrency, opts.clients),
    durationMs: clock.now() - started,
    ownAddresses,
    rate: opts.rate ?? null,
    fifoToleranceSeconds: opts.fifoToleranceSeconds ?? 1,
    slotSamples: opts.statusUrl ? samples : null,
    statusErrors: statusErrors.count,
  });
}

/** Reads `GET /status` every half second until `signal` aborts; failed reads are only counted. */
async function sampleStatus(
  url: string,
  clock: Clock,
  samples: SlotSample[],
  errors: { count: number },
  signal: AbortSignal,
): Promise<void> {
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 10_000 });
  try {
    while (!signal.aborted) {
      const at = clock.now();
      const link = linkSignal(signal, 5_000);
      try {
        const res = await request(url, {
          dispatcher,
          signal: link.signal,
          headers: { accept: 'application/json' },
        });
        let body: unknown;
        if (res.statusCode === 200) body = await res.body.json();
        else await res.body.dump();
        const sample = slotSampleOf(body, at);
        if (sample) samples.push(sample);
        else errors.count++;
      } catch {
        if (signal.aborted) break;
        errors.count++;
      } finally {
        link.done();
      }
      try {
        await clock.sleep(Math.max(0, at + STATUS_SAMPLE_MS - clock.now()), signal);
      } catch {
        break;
      }
    }
  } finally {
    await dispatcher.destroy().catch(() => {});
  }
}
