/**
 * `rushgate rush URL --clients N` runs a rehearsal of a launch. N simulated buyers each go through
 * the same order flow as `rushgate get` (`order-flow.ts`): they order, wait in line and retry
 * after Retry-After, download under their ticket, get fresh tickets when needed, and check the
 * digest. Their bytes are discarded, not saved. At most `concurrency` buyers are active at once.
 * The rehearsal is bounded: N buyers, and `maxSeconds`, after which unfinished buyers are
 * stopped and counted. It sends requests only to the given URL's reception and to the content
 * servers that reception's tickets name.
 */
import { setMaxListeners } from 'node:events';
import { Agent } from 'undici';
import { UsageError } from '../errors.js';
import type { Clock } from './clock.js';
import { parseItemUrl } from './item-url.js';
import { runOrder } from './order-flow.js';
import { createReceptionClient } from './reception-api.js';
import { type BuyerRecord, buildReport, type RushReport } from './rush-report.js';
import { DiscardSink } from './sink.js';

export const RUSH_LIMITS = { maxClients: 100_000, maxConcurrency: 2_000 } as const;

export interface RushOptions {
  url: string;
  clients: number;
  concurrency: number;
  maxSeconds: number;
  /** How often a waiting buyer reads its place; defaults to `get`'s. */
  placeReadIntervalMs?: number;
}

export interface RushDeps {
  clock: Clock;
  /** Ends the rehearsal early (Ctrl-C); unfinished buyers are counted as such. */
  signal?: AbortSignal;
  /** Called as buyers finish, e.g. for a progress line. */
  onBuyerDone?(done: number, total: number): void;
}

export function checkRushOptions(o: RushOptions): void {
  if (!Number.isInteger(o.clients) || o.clients < 1 || o.clients > RUSH_LIMITS.maxClients)
    throw new UsageError(`--clients must be a whole number from 1 to ${RUSH_LIMITS.maxClients}`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > RUSH_LIMITS.maxConcurrency)
    throw new UsageError(`--concurrency must be a whole number from 1 to ${RUSH_LIMITS.maxConcurrency}`);
  if (!Number.isFinite(o.maxSeconds) || o.maxSeconds <= 0) throw new UsageError('--max-seconds must be > 0');
}

export async function runRush(opts: RushOptions, deps: RushDeps): Promise<RushReport> {
  checkRushOptions(opts);
  const { origin, item } = parseItemUrl(opts.url);
  const { clock } = deps;
  const started = clock.now();
  const stop = new AbortController();
  // Every buyer listens to the one stop signal; many listeners are the design, not a leak.
  setMaxListeners(0, stop.signal);
  const timer = setTimeout(() => stop.abort(new Error('--max-seconds reached')), opts.maxSeconds * 1000);
  const onOuterAbort = () => stop.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  // One connection pool for every buyer, as a crowd behind one machine would share its sockets.
  const dispatcher = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 10_000 });

  const records: BuyerRecord[] = [];
  let next = 0;
  let finished = 0;

  async function buyer(): Promise<BuyerRecord> {
    const startedMs = clock.now() - started;
    const reception = createReceptionClient({ origin, dispatcher });
    const sink = new DiscardSink();
    try {
      const r = await runOrder({
        reception,
        item,
        sink,
        clock,
        signal: stop.signal,
        dispatcher,
        ...(opts.placeReadIntervalMs === undefined ? {} : { placeReadIntervalMs: opts.placeReadIntervalMs }),
      });
      return {
        outcome: r.kind,
        startedMs,
        ...(r.admittedAfterMs === undefined ? {} : { admittedAfterMs: r.admittedAfterMs }),
        finishedAfterMs: clock.now() - started - startedMs,
        ...(r.firstEstimateSeconds === undefined ? {} : { firstEstimateSeconds: r.firstEstimateSeconds }),
        busyAnswers: r.busyAnswers,
        attempts: r.attempts,
        tickets: r.tickets,
        bytes: r.bytes,
        ...(r.kind === 'failed' ? { errorCode: r.code } : {}),
      };
    } catch (err) {
      return {
        outcome: stop.signal.aborted ? 'unfinished' : 'failed',
        startedMs,
        busyAnswers: 0,
        attempts: reception.attempts,
        tickets: [],
        bytes: sink.length,
        errorCode: stop.signal.aborted ? 'unfinished' : err instanceof Error ? err.message : String(err),
      };
    }
  }

  async function worker(): Promise<void> {
    while (next < opts.clients && !stop.signal.aborted) {
      next++;
      records.push(await buyer());
      finished++;
      deps.onBuyerDone?.(finished, opts.clients);
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.clients) }, () => worker()));
  } finally {
    clearTimeout(timer);
    deps.signal?.removeEventListener('abort', onOuterAbort);
    await dispatcher.close().catch(() => {});
  }
  // Buyers never started because the rehearsal was stopped count as unfinished too.
  for (let i = records.length; i < opts.clients; i++) {
    records.push({
      outcome: 'unfinished',
      startedMs: clock.now() - started,
      busyAnswers: 0,
      attempts: 0,
      tickets: [],
      bytes: 0,
      errorCode: 'unfinished',
    });
  }
  return buildReport(records, {
    url: opts.url,
    clients: opts.clients,
    concurrency: Math.min(opts.concurrency, opts.clients),
    durationMs: clock.now() - started,
  });
}
