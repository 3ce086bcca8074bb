/**
 * The waiting line (CONTRACT §3 "Busy"; the seed's Sa36 and Sa56): applies the pure fairness
 * rules of line-rules.ts to the store's line — joining, keeping a place, holds, abandonment,
 * leaving on admission — and answers where a client stands and how long it will likely wait
 * (wait-estimator.ts). It records each admitted waiter's first estimate against its real wait, so
 * the estimator's calibration is measured rather than assumed.
 *
 * A rush puts tens of thousands in line, so nothing here reads the whole line: a decision reads
 * the requester's rank and the line's front (line-rules.ts `frontWindow`), and abandonment is
 * swept a batch at a time from the store's least-recently-seen end.
 */
import type { ReceptionConfig } from '../config/schema.js';
import type { LineEntry, PlaceInLine, Store } from '../store/index.js';
import type { Logger } from '../util/log.js';
import {
  decideLine,
  frontWindow,
  isPassedOver,
  type LineDecision,
  type LineRules,
  widerFrontWindow,
} from './line-rules.js';
import type { LoadMonitor } from './load-monitor.js';
import type { QueueTokens } from './queue-token.js';
import type { SlotLedger } from './slot-ledger.js';
import {
  type Calibration,
  type CalibrationSample,
  CycleWatch,
  calibrationOf,
  errorFactors,
  nextRateState,
  type RateState,
  rateOf,
  retryAfterSeconds,
  type WaitModel,
  waitModel,
  widenedRange,
} from './wait-estimator.js';

/** Grace on top of `holdSeconds`: the client's round trip and the rounding of Retry-After. */
const HOLD_GRACE_MS = 1000;
/** And on top of a waiter's due time, for the same reasons (line-rules.ts `isOverdue`). */
const DUE_GRACE_MS = 1000;
/** With no record at all, assume a slot turns over this often. */
const COLD_START_SERVICE_MS = 10_000;
/** Bounds of a cold-start service time read off the servers' throughput. */
const MIN_COLD_START_MS = 100;
const MAX_COLD_START_MS = 3_600_000;
const CALIBRATION_WINDOW = 1000;
const ITEM_CACHE_MAX = 50_000;
/** Abandoned places removed per sweep batch, and batches per tick: small steps, never a scan. */
const SWEEP_BATCH = 500;
const SWEEP_BATCHES = 4;
/** Tokens this reception remembers as in line (per-client place counts); beyond, oldest dropped. */
const IN_LINE_MAX = 200_000;
/**
 * A wait model is reused for up to a second (the rates it reads are 1 s ticks); quotes are whole
 * seconds, so transfers a second older move the median by about a second over the capacity.
 */
const MODEL_REUSE_MS = 1000;
/**
 * This reception's own hold times are used once it has this many: the first to end in a rush
 * are its shortest, so a handful would be a low guess (the rates, blended in, correct it).
 * How low, measured in a 10,000-buyer rehearsal: ~1.9 s in, the first 50 holds to end averaged
 * 1.6 s while 100 more had run longer without ending and the slots' real cycle was 3.2 s, so the
 * joiners of the first seconds were quoted about half their wait. A censored fit (the running
 * transfers counted as at least their age) was tried and dropped: the slots just refilled are
 * young, so the evidence that the record is short is mixed with theirs, and two rehearsals with
 * it showed the same early bias.
 */
const MIN_HOLD_SAMPLES = 8;
/** Longer than any notice's round trip (the dispatcher's timeout is a few seconds). */
const ADMITTING_MAX_MS = 30_000;
const MODELS_MAX = 1000;

export interface WaitQuote {
  position: number;
  estimatedWaitSeconds: number;
  /** The 80 % interval around the estimate, when the estimator gives one. */
  estimatedWaitRangeSeconds?: [number, number];
  retryAfterSeconds: number;
}

export type JoinOutcome = { kind: 'joined'; token: string; quote: WaitQuote } | { kind: 'full' };

export interface WaitingLine {
  readonly rules: LineRules;
  /**
   * Reads the line and decides for one request; holds and abandonment are written back. The
   * requester counts as seen (its `lastSeenAt` is written) unless `touch` is false: a held-open
   * request trying again was seen when it arrived, and its tries need not write.
   */
  decide(
    request: { token?: string | undefined; item: string },
    now: number,
    opts?: { touch?: boolean; dueAt?: number },
  ): Promise<LineDecision>;
  /**
   * A waiter's busy answer is going out: it is due back at `dueAt` (its `Retry-After`). Written
   * with the visit, so a waiter that does not come back is soon passed over (line-rules.ts).
   * `decide` takes the due time instead when it is known before the decision (a request about to
   * be held open is due back when its hold ends).
   */
  expectBack(token: string, now: number, dueAt: number): Promise<void>;
  /** Joins at the end, unless the line holds `queue.maxLength` places; the new token and its quote. */
  join(item: string, decision: LineDecision, now: number): Promise<JoinOutcome>;
  /** The quote for a client already in line (after `decide`). */
  quote(item: string, decision: LineDecision, now: number): WaitQuote;
  /** An admitted waiter leaves; its wait is recorded for calibration. */
  admitted(token: string, now: number): Promise<void>;
  /**
   * A slot was just reserved for this waiter; it leaves the line once its ticket's notice is
   * through (`admitted`), or stays if none could be (`stillWaiting`). Meanwhile decisions pass it
   * by: counting it again would hold a second slot for it, and a held-open waiter behind it would
   * be told busy while that slot stood free.
   */
  admitting(token: string, now: number): void;
  stillWaiting(token: string): void;
  /** `GET /api/queue/{token}`: where it stands; also counts as the client being seen. */
  status(token: string, item: string, now: number): Promise<WaitQuote | undefined>;
  /**
   * Periodic: sweeps abandoned places, starts and ends holds, measures the admission rate.
   * Returns the tokens whose hold started (a held-open request among them can be answered now).
   */
  maintain(now: number): Promise<string[]>;
  length(): number;
  /** Whether this token's place was in the line at the latest read (or joined since). */
  holds(token: string): boolean;
  admissionRate(): number;
  calibration(): Calibration;
  /** The estimate the latest newcomer got (metrics). */
  lastEstimate(): number;
  /** The range the latest newcomer got, when it got one. */
  lastRange(): [number, number] | undefined;
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
    dueGraceMs: DUE_GRACE_MS,
  };
  const items = new Map<string, string | undefined>();
  const samples: CalibrationSample[] = [];
  /** What recent waits say the range should be (`errorFactors`), refreshed every tick. */
  let factors: { low: number; high: number } | undefined;
  let lineLength = 0;
  /** Tokens known to be in line (joined or seen here, not seen leaving): per-client place counts. */
  const inLine = new Set<string>();
  let lastEstimate = 0;
  let lastRange: [number, number] | undefined;
  let admittedSinceTick = 0;
  let admissionRate: RateState | undefined;
  let lastTick: number | undefined;

  const remember = (token: string): void => {
    if (inLine.has(token)) return;
    if (inLine.size >= IN_LINE_MAX) {
      const oldest = inLine.values().next();
      if (!oldest.done) inLine.delete(oldest.value);
    }
    inLine.add(token);
  };
  const forget = (token: string): void => {
    inLine.delete(token);
    items.delete(token);
    ranges.delete(token);
  };
  /** The first range each waiter was given, for calibration (the store keeps only the estimate). */
  const ranges = new Map<string, [number, number]>();
  /** Per item, the latest wait model and what it was built from. */
  const models = new Map<string, { at: number; inputs: string; model: WaitModel }>();
  /** Per item, how its cycle has moved lately (`CycleWatch`). */
  const cycles = new Map<string, CycleWatch>();

  const itemOf = (token: string): string | undefined => {
    if (items.has(token)) return items.get(token);
    const item = tokens.read(token)?.item;
    if (items.size >= ITEM_CACHE_MAX) items.clear();
    items.set(token, item);
    return item;
  };

  async function apply(decision: LineDecision, now: number): Promise<void> {
    const writes: Promise<unknown>[] = [];
    for (const t of decision.abandoned) {
      forget(t);
      writes.push(store.leaveLine(t));
    }
    for (const t of decision.holdsToStart) writes.push(store.setHeld(t, now));
    for (const t of decision.holdsToClear) writes.push(store.setHeld(t, undefined));
    if (decision.abandoned.length > 0)
      logger.info({ count: decision.abandoned.length }, 'waiters lost their place');
    await Promise.all(writes);
  }

  /** Waiters with a slot reserved and their notice on its way: token → when it was reserved. */
  const beingAdmitted = new Map<string, number>();
  const isBeingAdmitted = (token: string, now: number): boolean => {
    const since = beingAdmitted.get(token);
    if (since === undefined) return false;
    // A safety net: an admission that never finished must not hide its waiter for good.
    if (now - since <= ADMITTING_MAX_MS) return true;
    beingAdmitted.delete(token);
    return false;
  };

  async function decideOn(
    request: { token?: string | undefined; item: string },
    requester: PlaceInLine | undefined,
    now: number,
  ): Promise<LineDecision> {
    const free = monitor.freeSlots();
    let totalFree = 0;
    for (const n of free.values()) totalFree += n;
    let window: number | undefined = frontWindow(totalFree, beingAdmitted.size);
    const [length, first] = await Promise.all([store.lineLength(), store.lineFront(window)]);
    let read = first;
    let decision: LineDecision;
    for (;;) {
      const front = beingAdmitted.size === 0 ? read : read.filter((e) => !isBeingAdmitted(e.token, now));
      decision = decideLine({
        front,
        length,
        requester,
        now,
        rules,
        request,
        freeSlots: free,
        holdersOf: (item) => monitor.usableHolders(item),
        itemOf,
      });
      // A slot the front left over belongs to the earliest waiter due one beyond it, not to
      // whoever asks: read further while the read came back full.
      if (decision.leftOver === 0 || read.length < window) break;
      window = widerFrontWindow(window);
      if (window === undefined) break;
      read = await store.lineFront(window);
    }
    lineLength = length - decision.abandoned.length;
    await apply(decision, now);
    return decision;
  }

  /**
   * The seed's throughput method, for a cold start (no service time recorded yet): one transfer
   * of this item takes its size over the rate each transfer gets now on its servers.
   */
  function coldStartMs(item: string, servers: readonly string[]): number {
    let bytesPerSecond = 0;
    let active = 0;
    let size: number | undefined;
    for (const id of servers) {
      const s = monitor.server(id);
      bytesPerSecond += s?.report?.bytesPerSecond ?? 0;
      active += s?.report?.active ?? 0;
      size ??= s?.catalog?.get(item)?.size;
    }
    if (size === undefined || active === 0 || bytesPerSecond <= 0) return COLD_START_SERVICE_MS;
    return Math.min(MAX_COLD_START_MS, Math.max(MIN_COLD_START_MS, (size * active * 1000) / bytesPerSecond));
  }

  function quote(item: string, decision: LineDecision, now: number): WaitQuote {
    const holders = monitor.usableHolders(item);
    const known = holders.length > 0 ? holders : monitor.upHolders(item);
    let capacity = 0;
    let untracked = 0;
    for (const id of known) {
      capacity += monitor.capacityOf(id);
      untracked += monitor.server(id)?.untracked ?? 0;
    }
    // The seed's recorded service times, as this reception saw its slots held (`holdTimes`);
    // until it has seen a few, the content servers' record of transfer times, whose hand-overs
    // the estimator adds by Little's law from the slots whose tickets are not used yet. Only
    // counted here: the records are copied when a model is built, not on every quote.
    const holds = ledger.holdCount(known);
    const since: 'taken' | 'started' = holds >= MIN_HOLD_SAMPLES ? 'taken' : 'started';
    let recorded = holds;
    if (since === 'started') {
      recorded = 0;
      for (const id of known) recorded += monitor.server(id)?.report?.serviceTimesMs.length ?? 0;
    }
    // Rebuilt when capacity or the record's size changes, else at most every MODEL_REUSE_MS: the
    // ledger's counts change with every ticket, and a model per ticket was most of the CPU of a
    // 10,000-buyer rush.
    const inputs = `${capacity} ${untracked} ${since} ${recorded} ${known.join(',')}`;
    let cached = models.get(item);
    if (
      cached === undefined ||
      cached.inputs !== inputs ||
      now - cached.at > MODEL_REUSE_MS ||
      now < cached.at
    ) {
      if (models.size >= MODELS_MAX) {
        models.clear();
        cycles.clear();
      }
      let watch = cycles.get(item);
      if (!watch) {
        watch = new CycleWatch();
        cycles.set(item, watch);
      }
      const serviceTimesMs =
        since === 'taken'
          ? ledger.holdTimes(known)
          : known.flatMap((id) => monitor.server(id)?.report?.serviceTimesMs ?? []);
      const lineRate = rateOf(admissionRate);
      const inFlight = ledger.inFlight(known, now, since);
      // Until a round of slots has turned over here (the first holds to end are the shortest),
      // what the slots held now already show of the cycle: their tickets' ages (the in-flight
      // ages themselves once those count from issue).
      const heldSoFarMs =
        holds < capacity
          ? (since === 'taken' ? inFlight : ledger.inFlight(known, now, 'taken')).flatMap((f) =>
              f.elapsedMs === undefined ? [] : [f.elapsedMs],
            )
          : undefined;
      cached = {
        at: now,
        inputs,
        model: waitModel({
          capacity,
          inFlight,
          unknownInFlight: untracked,
          serviceTimesMs,
          completionsPerSecond: ledger.completionsPerSecond(),
          // The rate at which the line moves: the seed's two methods plus what the line shows.
          lineRatePerSecond: lineRate.perSecond,
          // Both rates are trusted as far as both were measured: a rush that just began has
          // a few seconds of them, not the EWMA's whole memory.
          rateWindowSeconds: Math.min(ledger.completionRateSeconds(), lineRate.seconds),
          coldStartServiceMs: coldStartMs(item, known),
          // The drift seen, or, while the cycle has been watched only briefly, what a rush does.
          cycleDriftRelVar: watch.driftRelVar(now, since),
          ...(heldSoFarMs ? { heldSoFarMs } : {}),
        }),
      };
      watch.record(now, cached.model);
      models.set(item, cached);
    }
    const estimate = cached.model.estimate(Math.max(1, decision.position - decision.freeForItem));
    const ra = retryAfterSeconds({
      estimateSeconds: estimate.seconds,
      nearFront: decision.position <= Math.max(1, capacity),
      holdSeconds: q.holdSeconds,
      maxRetryAfterSeconds: q.maxRetryAfterSeconds,
      random: random(),
    });
    const out: WaitQuote = {
      position: decision.position,
      estimatedWaitSeconds: estimate.seconds,
      retryAfterSeconds: ra,
    };
    out.estimatedWaitRangeSeconds = widenedRange(estimate, factors);
    return out;
  }

  async function sweep(now: number): Promise<void> {
    let swept = 0;
    for (let i = 0; i < SWEEP_BATCHES; i++) {
      const gone: LineEntry[] = await store.sweepLine(now - rules.abandonMs, SWEEP_BATCH);
      for (const e of gone) forget(e.token);
      swept += gone.length;
      if (gone.length < SWEEP_BATCH) break;
    }
    if (swept > 0) logger.info({ count: swept }, 'waiters lost their place');
  }

  return {
    rules,
    async decide(request, now, opts) {
      const token = request.token;
      let requester: PlaceInLine | undefined;
      if (token !== undefined) {
        requester = opts?.touch === false ? await store.findInLine(token) : undefined;
        // A place not written for half of `abandonSeconds` is touched anyway, so a request held
        // open (however the settings compare) never loses its place while it is held.
        if (requester === undefined || now - requester.entry.lastSeenAt > rules.abandonMs / 2)
          requester = await store.touchLine(token, now, opts?.dueAt);
      }
      if (request.token !== undefined) {
        if (requester) remember(request.token);
        else forget(request.token);
      }
      return decideOn(request, requester, now);
    },
    async join(item, decision, now) {
      const token = tokens.mint(item, now);
      const quoted = quote(item, decision, now);
      const joined = await store.joinLine(
        {
          token,
          now,
          firstEstimateSeconds: quoted.estimatedWaitSeconds,
          dueAt: now + quoted.retryAfterSeconds * 1000,
        },
        q.maxLength,
      );
      if (joined.kind === 'full') {
        lineLength = joined.length;
        return { kind: 'full' };
      }
      items.set(token, item);
      if (quoted.estimatedWaitRangeSeconds) {
        if (ranges.size >= IN_LINE_MAX) ranges.delete(ranges.keys().next().value as string);
        ranges.set(token, quoted.estimatedWaitRangeSeconds);
      }
      lastEstimate = quoted.estimatedWaitSeconds;
      lastRange = quoted.estimatedWaitRangeSeconds;
      lineLength = Math.max(lineLength, joined.position);
      remember(token);
      // Where it really landed: another reception may have joined in between.
      return { kind: 'joined', token, quote: { ...quoted, position: joined.position } };
    },
    quote,
    async expectBack(token, now, dueAt) {
      await store.touchLine(token, now, dueAt);
    },
    admitting(token, now) {
      if (beingAdmitted.size >= IN_LINE_MAX)
        beingAdmitted.delete(beingAdmitted.keys().next().value as string);
      beingAdmitted.set(token, now);
    },
    stillWaiting(token) {
      beingAdmitted.delete(token);
    },
    async admitted(token, now) {
      const entry = await store.leaveLine(token);
      beingAdmitted.delete(token);
      const range = ranges.get(token);
      forget(token);
      if (!entry) return;
      admittedSinceTick += 1;
      samples.push({
        estimateSeconds: entry.firstEstimateSeconds,
        actualSeconds: (now - entry.joinedAt) / 1000,
        ...(range ? { lowSeconds: range[0], highSeconds: range[1] } : {}),
      });
      if (samples.length > CALIBRATION_WINDOW) samples.splice(0, samples.length - CALIBRATION_WINDOW);
    },
    async status(token, item, now) {
      const place = await store.touchLine(token, now);
      if (!place) {
        forget(token);
        return undefined;
      }
      remember(token);
      // A passed-over waiter that shows up is back in its place, first for the next slot.
      if (isPassedOver(place.entry, now, rules)) await store.setHeld(token, undefined);
      const decision = await decideOn({ token, item }, place, now);
      if (decision.abandoned.includes(token)) return undefined;
      return quote(item, decision, now);
    },
    async maintain(now) {
      await sweep(now);
      const decision = await decideOn({ item: '' }, undefined, now);
      if (lastTick !== undefined && now > lastTick) {
        admissionRate = nextRateState(admissionRate, admittedSinceTick, now - lastTick);
        if (admittedSinceTick > 0) factors = errorFactors(samples);
        admittedSinceTick = 0;
      }
      lastTick = now;
      return decision.holdsToStart;
    },
    length: () => lineLength,
    holds: (token) => inLine.has(token),
    admissionRate: () => rateOf(admissionRate).perSecond,
    calibration: () => calibrationOf(samples),
    lastEstimate: () => lastEstimate,
    lastRange: () => lastRange,
  };
}
