/**
 * The waiting time calculator (the seed's module 136, step Sa56): how long until a waiting client
 * gets a slot, and what `Retry-After` to give it. Pure — every measurement comes in as an
 * argument — so it is unit-tested and its calibration can be checked offline.
 *
 * Two views, blended when both have data:
 * - by service times (the seed's "average from the record of the required times"): each busy
 *   slot frees after the mean service time minus what its transfer has already run, then again
 *   every mean service time; the k-th of those moments is when the k-th slot frees;
 * - by rate: the measured rate at which slots free (EWMA of completions per second), k / rate.
 * With neither (a cold start) it assumes one `coldStartServiceMs` per slot round.
 */

export interface InFlight {
  /** ms since its transfer started; undefined when the ticket is issued but not used yet. */
  elapsedMs: number | undefined;
}

export interface EstimateInput {
  /** Slots that must free before this client's turn (≥ 1): its position minus the free slots. */
  slotsNeeded: number;
  /** Usable capacity of the servers that can serve the item. */
  capacity: number;
  /** Occupied slots whose tickets are known here. */
  inFlight: readonly InFlight[];
  /** Occupied slots known only as a count (untracked transfers, other receptions' tickets). */
  unknownInFlight: number;
  /** Recent transfer durations, ms (the content servers' record). */
  serviceTimesMs: readonly number[];
  /** Slots freed per second, EWMA; 0 when nothing has been measured. */
  completionsPerSecond: number;
  coldStartServiceMs: number;
}

export type EstimateMethod = 'blend' | 'service-times' | 'rate' | 'cold-start';

export interface Estimate {
  seconds: number;
  method: EstimateMethod;
  byServiceTimesMs?: number;
  byRateMs?: number;
  /** The 80 % interval, seconds. */
  lowSeconds?: number;
  highSeconds?: number;
}

/** Fewer samples than this and the mean service time is not trusted. */
const MIN_SERVICE_SAMPLES = 3;
/** A slower rate than this is noise (one completion a minute and a half). */
const MIN_RATE = 0.01;
/** A transfer running past the mean still has some time left; a quarter of the mean is assumed. */
const OVERRUN_REMAINING = 0.25;

export function meanServiceMs(samples: readonly number[]): number | undefined {
  const valid = samples.filter((s) => Number.isFinite(s) && s >= 0);
  if (valid.length < MIN_SERVICE_SAMPLES) return undefined;
  return valid.reduce((a, b) => a + b, 0) / valid.length;
}

/** When the k-th slot frees, from per-slot remaining times and the mean service time. */
function bySlotCycles(
  remainingMs: number[],
  slotsNeeded: number,
  serviceMs: number,
  capacity: number,
): number {
  if (remainingMs.length === 0) {
    return Math.ceil(slotsNeeded / Math.max(1, capacity)) * serviceMs;
  }
  const sorted = [...remainingMs].sort((a, b) => a - b);
  const n = sorted.length;
  const k = slotsNeeded - 1;
  return (sorted[k % n] ?? 0) + Math.floor(k / n) * serviceMs;
}

export function estimateWait(input: EstimateInput): Estimate {
  const slotsNeeded = Math.max(1, Math.ceil(input.slotsNeeded));
  const serviceMs = meanServiceMs(input.serviceTimesMs);
  let byServiceTimesMs: number | undefined;
  if (serviceMs !== undefined) {
    const remaining = input.inFlight.map(({ elapsedMs }) =>
      elapsedMs === undefined ? serviceMs : Math.max(serviceMs - elapsedMs, serviceMs * OVERRUN_REMAINING),
    );
    for (let i = 0; i < input.unknownInFlight; i++) remaining.push(serviceMs / 2);
    byServiceTimesMs = bySlotCycles(remaining, slotsNeeded, serviceMs, input.capacity);
  }
  const byRateMs =
    input.completionsPerSecond >= MIN_RATE ? (slotsNeeded / input.completionsPerSecond) * 1000 : undefined;

  let ms: number;
  let method: EstimateMethod;
  if (byServiceTimesMs !== undefined && byRateMs !== undefined) {
    ms = (byServiceTimesMs + byRateMs) / 2;
    method = 'blend';
  } else if (byServiceTimesMs !== undefined) {
    ms = byServiceTimesMs;
    method = 'service-times';
  } else if (byRateMs !== undefined) {
    ms = byRateMs;
    method = 'rate';
  } else {
    ms = Math.ceil(slotsNeeded / Math.max(1, input.capacity)) * input.coldStartServiceMs;
    method = 'cold-start';
  }
  const out: Estimate = { seconds: Math.max(1, Math.ceil(ms / 1000)), method };
  if (byServiceTimesMs !== undefined) out.byServiceTimesMs = byServiceTimesMs;
  if (byRateMs !== undefined) out.byRateMs = byRateMs;
  return out;
}

export interface RetryAfterInput {
  estimateSeconds: number;
  /**
   * The client could be handed a held slot before it comes back (its position is within the
   * number of slots that could free at once). Its `Retry-After` then stays below `holdSeconds`,
   * so that a client polling at its `Retry-After` always returns before a slot held for it
   * since its last visit is passed on.
   */
  nearFront: boolean;
  holdSeconds: number;
  maxRetryAfterSeconds: number;
  /** Uniform in [0, 1). */
  random: number;
}

/** The estimate ±10 % (so retries spread out), capped, never below 1 s. */
export function retryAfterSeconds(input: RetryAfterInput): number {
  const jittered = Math.round(input.estimateSeconds * (0.9 + 0.2 * input.random));
  let cap = input.maxRetryAfterSeconds;
  if (input.nearFront) cap = Math.min(cap, Math.max(1, input.holdSeconds - 1));
  return Math.max(1, Math.min(cap, jittered));
}

/** One step of the completions-per-second EWMA over a measuring interval. */
export function nextRate(
  previous: number | undefined,
  completions: number,
  intervalMs: number,
  alpha = 0.2,
): number {
  const sample = intervalMs > 0 ? (completions * 1000) / intervalMs : 0;
  return previous === undefined ? sample : alpha * sample + (1 - alpha) * previous;
}

export interface CalibrationSample {
  estimateSeconds: number;
  actualSeconds: number;
  lowSeconds?: number;
  highSeconds?: number;
}

export interface Calibration {
  samples: number;
  /** Share of waiters admitted no later than their first estimate. */
  admittedBeforeEstimate: number;
  medianAbsoluteErrorSeconds: number;
}

export function calibrationOf(samples: readonly CalibrationSample[]): Calibration {
  if (samples.length === 0) return { samples: 0, admittedBeforeEstimate: 0, medianAbsoluteErrorSeconds: 0 };
  const before = samples.filter((s) => s.actualSeconds <= s.estimateSeconds).length;
  const errors = samples.map((s) => Math.abs(s.actualSeconds - s.estimateSeconds)).sort((a, b) => a - b);
  const mid = errors.length >> 1;
  const median =
    errors.length % 2 === 1 ? (errors[mid] ?? 0) : ((errors[mid - 1] ?? 0) + (errors[mid] ?? 0)) / 2;
  return {
    samples: samples.length,
    admittedBeforeEstimate: before / samples.length,
    medianAbsoluteErrorSeconds: median,
  };
}
