/**
 * A seeded discrete-event simulation of one item's waiting line, to check the wait estimator's
 * calibration offline (unit test, bench): `slots` slots, waiters that join in bursts or as Poisson
 * arrivals and are served strictly first come first served, admitted the moment a slot frees (as
 * with a held-open `Prefer: wait` request), then a hand-over (the client fetching its ticket's
 * link) and a transfer whose duration comes from `serviceMs`. Each waiter is quoted at its join
 * with what the reception knows then — the EWMAs of freeings and admissions per second ticked
 * every second, and one of the two records the reception quotes from (`feed`): its own record of
 * how long slots were held, from issue to free (hand-over and transfer: `SlotLedger.holdTimes`),
 * with every slot aged from when it was taken; or, before it has seen enough of those, the
 * content servers' record of transfer times, with transfers aged from their start (none yet for
 * a ticket not used) — and its quote is paired with its real wait.
 * Pure and deterministic: same options, same answer.
 */
import type { CalibrationSample, EstimateInput } from './wait-estimator.js';
import { nextRate } from './wait-estimator.js';

export type Random = () => number;

/** Mulberry32: small, fast, and good enough to draw service times. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Service-time distributions, ms, each with the given mean. */
export const distributions = {
  lognormal: (meanMs: number, sigma: number) => {
    const mu = Math.log(meanMs) - (sigma * sigma) / 2;
    return (random: Random) => Math.exp(mu + sigma * normal(random));
  },
  uniform: (minMs: number, maxMs: number) => (random: Random) => minMs + (maxMs - minMs) * random(),
  exponential: (meanMs: number) => (random: Random) => -meanMs * Math.log(1 - random()),
};

/** A stretch of arrivals: Poisson at `perSecond` for `seconds`, or `count` at once. */
export type ArrivalPhase = { perSecond: number; seconds: number } | { burst: number };

export interface Quote {
  seconds: number;
  lowSeconds?: number;
  highSeconds?: number;
}

export interface SimulationOptions {
  slots: number;
  serviceMs: (random: Random) => number;
  /** From admission to the transfer's start; default uniform 20–200 ms. */
  handoverMs?: (random: Random) => number;
  arrivals: readonly ArrivalPhase[];
  seed: number;
  estimate: (input: EstimateInput) => Quote;
  /** Which record the estimate is fed (see above); default `transfers`. */
  feed?: 'holds' | 'transfers';
  /** Times the record keeps; default 50 per slot pair. */
  recordSize?: number;
  /** Waiters are quoted but not counted before the record holds this many times; default 20. */
  warmupSamples?: number;
  /** Nor before this moment, ms from the start (a rush that has been running); default 0. */
  countFromMs?: number;
}

export interface SimulatedWait extends CalibrationSample {
  slotsNeeded: number;
}

const TICK_MS = 1000;

interface Slot {
  /** When it was taken (its waiter admitted). */
  takenAt: number;
  /** When its current transfer started, or undefined during the hand-over. */
  startedAt: number | undefined;
  /** When the hand-over ends (a transfer starts) or the transfer ends (the slot frees). */
  nextAt: number;
  busy: boolean;
  serviceMs: number;
}

export function simulateLine(options: SimulationOptions): SimulatedWait[] {
  const random = seededRandom(options.seed);
  const handover = options.handoverMs ?? ((r: Random) => 20 + 180 * r());
  const recordSize = options.recordSize ?? Math.max(50, 25 * options.slots);
  const warmup = options.warmupSamples ?? 20;
  const holds = options.feed === 'holds';

  const arrivals: number[] = [];
  let clock = 0;
  for (const phase of options.arrivals) {
    if ('burst' in phase) {
      for (let i = 0; i < phase.burst; i++) arrivals.push(clock);
      continue;
    }
    const end = clock + phase.seconds * 1000;
    for (;;) {
      clock += (-Math.log(1 - random()) / phase.perSecond) * 1000;
      if (clock >= end) break;
      arrivals.push(clock);
    }
    clock = end;
  }

  const slots: Slot[] = Array.from({ length: options.slots }, () => ({
    takenAt: 0,
    startedAt: undefined,
    nextAt: Number.POSITIVE_INFINITY,
    busy: false,
    serviceMs: 0,
  }));
  const record: number[] = [];
  const line: { joinedAt: number; quote: Quote | undefined; slotsNeeded: number }[] = [];
  let head = 0;
  const out: SimulatedWait[] = [];
  let freed = 0;
  let admitted = 0;
  let completionRate: number | undefined;
  let lineRate: number | undefined;
  let nextTick = TICK_MS;
  let nextArrival = 0;

  const occupy = (slot: Slot, now: number) => {
    slot.busy = true;
    slot.takenAt = now;
    slot.startedAt = undefined;
    slot.serviceMs = Math.max(1, options.serviceMs(random));
    slot.nextAt = now + Math.max(0, handover(random));
  };

  for (;;) {
    let slot: Slot | undefined;
    for (const s of slots) if (s.busy && (slot === undefined || s.nextAt < slot.nextAt)) slot = s;
    const arrivalAt = arrivals[nextArrival] ?? Number.POSITIVE_INFINITY;
    const slotAt = slot?.nextAt ?? Number.POSITIVE_INFINITY;
    if (arrivalAt === Number.POSITIVE_INFINITY && slotAt === Number.POSITIVE_INFINITY) break;
    const now = Math.min(arrivalAt, slotAt);
    while (nextTick <= now) {
      completionRate = nextRate(completionRate, freed, TICK_MS);
      lineRate = nextRate(lineRate, admitted, TICK_MS);
      freed = 0;
      admitted = 0;
      nextTick += TICK_MS;
    }

    if (slot !== undefined && slotAt <= arrivalAt) {
      if (slot.startedAt === undefined) {
        slot.startedAt = now;
        slot.nextAt = now + slot.serviceMs;
        continue;
      }
      record.push(holds ? now - slot.takenAt : slot.serviceMs);
      if (record.length > recordSize) record.shift();
      freed += 1;
      slot.busy = false;
      slot.nextAt = Number.POSITIVE_INFINITY;
      const waiter = line[head];
      if (waiter !== undefined) {
        head += 1;
        admitted += 1;
        occupy(slot, now);
        if (waiter.quote !== undefined) {
          const sample: SimulatedWait = {
            estimateSeconds: waiter.quote.seconds,
            actualSeconds: (now - waiter.joinedAt) / 1000,
            slotsNeeded: waiter.slotsNeeded,
          };
          if (waiter.quote.lowSeconds !== undefined) sample.lowSeconds = waiter.quote.lowSeconds;
          if (waiter.quote.highSeconds !== undefined) sample.highSeconds = waiter.quote.highSeconds;
          out.push(sample);
        }
      }
      continue;
    }

    nextArrival += 1;
    const free = slots.find((s) => !s.busy);
    if (free !== undefined && head === line.length) {
      occupy(free, now);
      continue;
    }
    const slotsNeeded = line.length - head + 1;
    const input: EstimateInput = {
      slotsNeeded,
      capacity: options.slots,
      inFlight: slots
        .filter((s) => s.busy)
        .map((s) => ({
          elapsedMs: holds ? now - s.takenAt : s.startedAt === undefined ? undefined : now - s.startedAt,
        })),
      unknownInFlight: 0,
      serviceTimesMs: [...record],
      completionsPerSecond: completionRate ?? 0,
      lineRatePerSecond: lineRate ?? 0,
      coldStartServiceMs: 10_000,
    };
    const counted =
      record.length >= warmup && completionRate !== undefined && now >= (options.countFromMs ?? 0);
    line.push({ joinedAt: now, quote: counted ? options.estimate(input) : undefined, slotsNeeded });
  }
  return out;
}
