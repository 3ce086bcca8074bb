/**
 * The waiting line (CONTRACT §3 "Busy"; the seed's Sa36 and Sa56): applies the pure fairness
 * rules of line-rules.ts to the store's line — joining, keeping a place, holds, abandonment,
 * leaving on admission — and answers where a client stands and how long it will likely wait
 * (wait-estimator.ts). It records each admitted waiter's first estimate against its real wait, so
 * the estimator's calibration is measured rather than assumed.
 */
import type { ReceptionConfig } from '../config/schema.js';
import type { LineEntry, Store } from '../store/index.js';
import type { Logger } from '../util/log.js';
import { decideLine, isPassedOver, type LineDecision, type LineRules } from './line-rules.js';
import type { LoadMonitor } from './load-monitor.js';
import type { QueueTokens } from './queue-token.js';
import type { SlotLedger } from './slot-ledger.js';
import {
  type Calibration,
  type CalibrationSample,
  calibrationOf,
  estimateWait,
  nextRate,
  retryAfterSeconds,
} from './wait-estimator.js';

/** Grace on top of `holdSeconds`: the client's round trip and the rounding of Retry-After. */
const HOLD_GRACE_MS = 1000;
/** With no record at all, assume a slot turns over this often. */
const COLD_START_SERVICE_MS = 10_000;
const CALIBRATION_WINDOW = 1000;
const ITEM_CACHE_MAX = 50_000;

export interface WaitQuote {
  position: number;
  estimatedWaitSeconds: number;
  retryAfterSeconds: number;
}

export interface WaitingLine {
  readonly rules: LineRules;
  /** Reads the line and decides for one request; holds and abandonment are written back. */
  decide(request: { token?: string | undefined; item: string }, now: number): Promise<LineDecision>;
  /** Joins at the end; returns the new token and its quote. */
  join(item: string, decision: LineDecision, now: number): Promise<{ token: string; quote: WaitQuote }>;
  /** The quote for a client already in line (after `decide`). */
  quote(item: string, decision: LineDecision, now: number): WaitQuote;
  /** An admitted waiter leaves; its wait is recorded for calibration. */
  admitted(token: string, now: number): Promise<void>;
  /** `GET /api/queue/{token}`: where it stands; also counts as the client being seen. */
  status(token: string, item: string, now: number): Promise<WaitQuote | undefined>;
  /** Periodic: drops abandoned places, starts and ends holds, measures the admission rate. */
  maintain(now: number): Promise<void>;
  length(): number;
  /** Whether this token's place was in the line at the latest read (or joined since). */
  holds(token: string): boolean;
  admissionRate(): number;
  calibration(): Calibration;
  /** The estimate the latest newcomer got (metrics). */
  lastEstimate(): number;
  /** Requests held open until their client is admitted (`Prefer: wait`). */
  heldOpen(): number;
}

export function buildWaitingLine(deps: {
  config: ReceptionConfig;
  store: Store;
  monitor: LoadMonitor;
  ledger: SlotLedger;
  tokens: QueueTokens;
  logger: Logger;
  random: () => number;
}): WaitingLine {
  const { config, store, monitor, ledger, tokens, logger, random } = deps;
  const q = config.queue;
  const rules: LineRules = {
    holdMs: q.holdSeconds * 1000 + HOLD_GRACE_MS,
    abandonMs: q.abandonSeconds * 1000,
  };
  const items = new Map<string, string | undefined>();
  const samples: CalibrationSample[] = [];
  let lineLength = 0;
  /** The tokens in line as last read, plus joins since: per-client place counts ask it. */
  let inLine = new Set<string>();
  let lastEstimate = 0;
  let admittedSinceTick = 0;
  let admissionRate: number | undefined;
  let lastTick: number | undefined;

  const itemOf = (token: string): string | undefined => {
    if (items.has(token)) return items.get(token);
    const item = tokens.read(token)?.item;
    if (items.size >= ITEM_CACHE_MAX) items.clear();
    items.set(token, item);
    return item;
  };

  async function apply(decision: LineDecision, now: number): Promise<void> {
    const writes: Promise<unknown>[] = [];
    for (const t of decision.abandoned) writes.push(store.leaveLine(t));
    for (const t of decision.holdsToStart) writes.push(store.setHeld(t, now));
    for (const t of decision.holdsToClear) writes.push(store.setHeld(t, undefined));
    if (decision.abandoned.length > 0)
      logger.info({ count: decision.abandoned.length }, 'waiters lost their place');
    await Promise.all(writes);
  }

  async function decideOn(
    line: LineEntry[],
    request: { token?: string | undefined; item: string },
    now: number,
  ): Promise<LineDecision> {
    const decision = decideLine({
      line,
      now,
      rules,
      request,
      freeSlots: monitor.freeSlots(),
      holdersOf: (item) => monitor.usableHolders(item),
      itemOf,
    });
    lineLength = line.length - decision.abandoned.length;
    const gone = new Set(decision.abandoned);
    inLine = new Set(line.filter((e) => !gone.has(e.token)).map((e) => e.token));
    await apply(decision, now);
    return decision;
  }

  function quote(item: string, decision: LineDecision, now: number): WaitQuote {
    const holders = monitor.usableHolders(item);
    const known = holders.length > 0 ? holders : monitor.upHolders(item);
    let capacity = 0;
    let untracked = 0;
    const serviceTimesMs: number[] = [];
    for (const id of known) {
      capacity += monitor.capacityOf(id);
      const s = monitor.server(id);
      untracked += s?.untracked ?? 0;
      serviceTimesMs.push(...(s?.report?.serviceTimesMs ?? []));
    }
    const estimate = estimateWait({
      slotsNeeded: Math.max(1, decision.position - decision.freeForItem),
      capacity,
      inFlight: ledger.inFlight(known, now),
      unknownInFlight: untracked,
      serviceTimesMs,
      completionsPerSecond: ledger.completionsPerSecond(),
      coldStartServiceMs: COLD_START_SERVICE_MS,
    });
    const ra = retryAfterSeconds({
      estimateSeconds: estimate.seconds,
      nearFront: decision.position <= Math.max(1, capacity),
      holdSeconds: q.holdSeconds,
      maxRetryAfterSeconds: q.maxRetryAfterSeconds,
      random: random(),
    });
    return { position: decision.position, estimatedWaitSeconds: estimate.seconds, retryAfterSeconds: ra };
  }

  return {
    rules,
    async decide(request, now) {
      const line = await store.line();
      if (request.token !== undefined && line.some((e) => e.token === request.token)) {
        await store.touchLine(request.token, now);
      }
      return decideOn(line, request, now);
    },
    async join(item, decision, now) {
      const token = tokens.mint(item, now);
      items.set(token, item);
      const quoted = quote(item, decision, now);
      lastEstimate = quoted.estimatedWaitSeconds;
      await store.joinLine({ token, now, firstEstimateSeconds: quoted.estimatedWaitSeconds });
      lineLength += 1;
      inLine.add(token);
      return { token, quote: quoted };
    },
    quote,
    async admitted(token, now) {
      const entry = await store.leaveLine(token);
      items.delete(token);
      inLine.delete(token);
      if (!entry) return;
      admittedSinceTick += 1;
      samples.push({
        estimateSeconds: entry.firstEstimateSeconds,
        actualSeconds: (now - entry.joinedAt) / 1000,
      });
      if (samples.length > CALIBRATION_WINDOW) samples.splice(0, samples.length - CALIBRATION_WINDOW);
    },
    async status(token, item, now) {
      const entry = await store.touchLine(token, now);
      if (!entry) return undefined;
      // A passed-over waiter that shows up is back in its place, first for the next slot.
      if (isPassedOver(entry, now, rules)) await store.setHeld(token, undefined);
      const line = await store.line();
      const decision = await decideOn(line, { item: '' }, now);
      const gone = new Set(decision.abandoned);
      const index = line.filter((e) => !gone.has(e.token)).findIndex((e) => e.token === token);
      if (index < 0) return undefined;
      let freeForItem = 0;
      const free = monitor.freeSlots();
      for (const id of monitor.usableHolders(item)) freeForItem += free.get(id) ?? 0;
      return quote(item, { ...decision, position: index + 1, freeForItem }, now);
    },
    async maintain(now) {
      const line = await store.line();
      await decideOn(line, { item: '' }, now);
      if (lastTick !== undefined && now > lastTick) {
        admissionRate = nextRate(admissionRate, admittedSinceTick, now - lastTick);
        admittedSinceTick = 0;
      }
      lastTick = now;
    },
    length: () => lineLength,
    holds: (token) => inLine.has(token),
    admissionRate: () => admissionRate ?? 0,
    calibration: () => calibrationOf(samples),
    lastEstimate: () => lastEstimate,
    heldOpen: () => 0,
  };
}
