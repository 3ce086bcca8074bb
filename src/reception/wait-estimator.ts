/**
 * The waiting time calculator (the seed's module 136, step Sa56): how long until a waiting client
 * gets a slot — a median and an 80 % interval — and what `Retry-After` to give it. Pure — every
 * measurement comes in as an argument — so it is unit-tested and its calibration is checked
 * offline against a simulated line (wait-simulation.ts).
 *
 * The model. A client that needs the k-th slot to free waits T_k, the moment the freeing count
 * N(t) of the busy slots reaches k: P(T_k ≤ t) = P(N(t) ≥ k). Each busy slot j frees first after
 * its residual R_j, then once per cycle (a service time plus the hand-over to the next client):
 * - R_j comes from the record of service times (the seed's first method, its whole distribution,
 *   not only its mean): for a transfer that has run e ms, the recorded times longer than e, less
 *   e; for a ticket not used yet, a whole service time; for a transfer that outran the record, a
 *   quarter of one; for a slot known only as a count, the renewal-theory residual E[S²]/2E[S].
 * - The cycle's mean: the record's mean, lengthened by the hand-overs the record does not time —
 *   by Little's law the share of busy slots whose ticket is not used yet is hand-over / cycle
 *   (taken up to 10 %: more is a burst that has just filled free slots, not a steady state) —
 *   blended with the throughput (the seed's second method, freeings per second) and the rate at
 *   which the line moves (admissions per second; the larger of the two, as each undercounts when
 *   its side stood idle). Each is weighted by its precision: the record's relative variance is
 *   cv²/n plus the binomial variance of the hand-over share; a rate that counted n freeings has
 *   about max(cv², ¼)/n, and counts only as far as the line was never empty meanwhile (admissions
 *   / freeings), since idle slots make a rate that says nothing about the cycle.
 * - Slot j's m-th freeing is R_j + (m−1) cycles: its probability by t is the record's own CDF for
 *   m = 1 and a gamma one of the same moments beyond (Wilson–Hilferty; the CLT makes it normal
 *   for large m). E[N(t)] and Var[N(t)] follow exactly from those (the freeings of one slot are
 *   nested, the slots independent), and N(t) is taken as normal; the median and the 10th and
 *   90th percentiles of T_k are where P(N(t) ≥ k) crosses 0.5, 0.1 and 0.9.
 * So near the front the interval is the spread of a few residuals, wide relative to the wait;
 * deep in line T_k ≈ k·cycle/c with a standard deviation that grows only with √k (σ√k/c, the
 * superposition CLT), so the interval narrows relative to the wait — except for what the
 * measurements do not know: the cycle's relative error (never below 2 %), which scales the whole
 * wait and is added on top. Past 2 rounds of slots the wait continues from that depth by the
 * closed form, and more than 16 slots are pooled into 16 groups of similar residuals, so an
 * estimate costs the same at any position and capacity.
 * With neither record nor rate (a cold start) a lognormal record (cv ½) of `coldStartServiceMs`
 * is assumed, with a 50 % error on its cycle: a wide interval.
 *
 * The figures it is held to (45–55 % admitted by the median, 75–85 % inside the interval) are
 * checked by the unit test on simulated lines; the first estimate against the real wait is
 * recorded by the waiting line, so the same figures are measured in production too.
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
  /** Waiters admitted from the line per second, EWMA; 0 or absent when not measured. */
  lineRatePerSecond?: number;
  /** How many seconds of freeings the rates average over (an EWMA's memory); default 9 s. */
  rateWindowSeconds?: number;
  coldStartServiceMs: number;
  /**
   * How much the cycle has moved lately beyond what its measurement explains (a relative
   * variance, `cycleDrift`): a rush is not stationary — the line slows as it loads the machines
   * and speeds up as arrivals end — and that uncertainty is added to the cycle's own.
   */
  cycleDriftRelVar?: number;
  /**
   * While this reception has recorded fewer holds than it has slots (the first seconds of a
   * rush), how long each busy slot has been held so far, ms. Every one of those holds is at
   * least that long, so the cycle is taken as at least their median (`firstHoldsFloorMs`).
   */
  heldSoFarMs?: readonly number[];
}

/** What a model is built from: everything but the position. */
export type ModelInput = Omit<EstimateInput, 'slotsNeeded'>;

export type EstimateMethod = 'blend' | 'service-times' | 'rate' | 'cold-start';

export interface Estimate {
  /** The median wait, whole seconds, ≥ 1. */
  seconds: number;
  /** The 80 % interval, whole seconds: 0 ≤ low ≤ seconds ≤ high. */
  lowSeconds: number;
  highSeconds: number;
  method: EstimateMethod;
  /** The blended cycle of one slot (service time plus hand-over), ms. */
  cycleMs: number;
}

/** Fewer samples than this and the record of service times is not trusted. */
const MIN_SERVICE_SAMPLES = 3;
/** A slower rate than this is noise (one completion a minute and a half). */
const MIN_RATE = 0.01;
/** A transfer running past the record still has some time left; a quarter of the mean is assumed. */
const OVERRUN_REMAINING = 0.25;
/** Fewer recorded times longer than the elapsed time than this, and the transfer is overrunning. */
const MIN_TAIL = 3;
/** EWMA α 0.2 over the reception's 1 s ticks remembers about (2 − α) / α ticks. */
const DEFAULT_RATE_WINDOW_S = 9;
/** Shape assumed when no service time is recorded: a lognormal with this coefficient of variation. */
const ASSUMED_CV = 0.5;
/** Relative error assumed for a cold-start cycle (nothing measured at all). */
const COLD_START_REL_SD = 0.5;
/** Beyond this many rounds of slots, the wait continues by the closed form. */
const EXACT_ROUNDS = 2;
/** Slots are pooled into at most this many groups of similar residuals (bounded cost). */
const MAX_SLOT_GROUPS = 16;
/**
 * Little's law holds in a steady state; a burst that has just filled free slots shows many fresh
 * hand-overs at once. Past this share the rest is taken to be such a burst (the rates, which see
 * hand-overs over time, still lengthen the cycle when they really are longer).
 */
const MAX_HANDOVER_SHARE = 0.1;
const RATE_DISPERSION_MIN = 0.25;
/** Relative error of the record as a measure of the cycle, however many samples it holds. */
const RECORD_BIAS = 0.03;
/** However many samples, a rush is not stationary: the cycle is never known better than this. */
const CYCLE_REL_SD_FLOOR = 0.02;
const QUANTILE_PRECISION_MS = 20;
/** z of the 10th and 90th percentiles. */
const Z80 = 1.2815515655446004;

export function meanServiceMs(samples: readonly number[]): number | undefined {
  const valid = samples.filter((s) => Number.isFinite(s) && s >= 0);
  if (valid.length < MIN_SERVICE_SAMPLES) return undefined;
  return valid.reduce((a, b) => a + b, 0) / valid.length;
}

/** Φ, by Abramowitz–Stegun 7.1.26 (error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** The inverse of Φ (Acklam's rational approximation), for the assumed shape's quantiles. */
function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  const poly = (k: number[], x: number) => k.reduce((acc, v) => acc * x + v, 0);
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

/** The record of service times, sorted, with prefix sums for conditional moments. */
interface Record {
  sorted: Float64Array;
  s1: Float64Array;
  s2: Float64Array;
  s3: Float64Array;
  mean: number;
  variance: number;
}

function recordOf(values: readonly number[]): Record {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const s1 = new Float64Array(n + 1);
  const s2 = new Float64Array(n + 1);
  const s3 = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    const x = sorted[i] as number;
    s1[i + 1] = (s1[i] as number) + x;
    s2[i + 1] = (s2[i] as number) + x * x;
    s3[i + 1] = (s3[i] as number) + x * x * x;
  }
  const mean = (s1[n] as number) / n;
  const variance = Math.max(0, (s2[n] as number) / n - mean * mean);
  return { sorted, s1, s2, s3, mean, variance };
}

/** How many recorded times are ≤ x. */
function countAtMost(r: Record, x: number): number {
  let lo = 0;
  let hi = r.sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((r.sorted[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The samples the assumed shape gives when nothing is recorded: lognormal quantiles. */
function assumedSamples(meanMs: number): number[] {
  const sigma = Math.sqrt(Math.log(1 + ASSUMED_CV * ASSUMED_CV));
  const mu = Math.log(meanMs) - (sigma * sigma) / 2;
  const out: number[] = [];
  const n = 40;
  for (let i = 0; i < n; i++) out.push(Math.exp(mu + sigma * normalQuantile((i + 0.5) / n)));
  return out;
}

/** One busy slot (or a group of similar ones): when it first frees. */
interface Slot {
  weight: number;
  mean: number;
  variance: number;
  cdf: (t: number) => number;
}

function slotOf(r: Record, elapsedMs: number | undefined): Slot {
  const n = r.sorted.length;
  const e = elapsedMs !== undefined && Number.isFinite(elapsedMs) ? Math.max(0, elapsedMs) : 0;
  const done = countAtMost(r, e);
  const tail = n - done;
  if (tail >= MIN_TAIL) {
    const m1 = ((r.s1[n] as number) - (r.s1[done] as number)) / tail;
    const m2 = ((r.s2[n] as number) - (r.s2[done] as number)) / tail;
    return {
      weight: 1,
      mean: m1 - e,
      variance: Math.max(0, m2 - m1 * m1),
      cdf: (t) => (countAtMost(r, e + t) - done) / tail,
    };
  }
  return {
    weight: 1,
    mean: OVERRUN_REMAINING * r.mean,
    variance: OVERRUN_REMAINING * OVERRUN_REMAINING * r.variance,
    cdf: (t) => countAtMost(r, t / OVERRUN_REMAINING) / n,
  };
}

/** A slot whose transfer's age is unknown: the stationary residual, density (1 − F(u)) / E[S]. */
function unknownSlot(r: Record): Slot {
  const n = r.sorted.length;
  const ex2 = (r.s2[n] as number) / n;
  const ex3 = (r.s3[n] as number) / n;
  const mean = r.mean > 0 ? ex2 / (2 * r.mean) : 0;
  return {
    weight: 1,
    mean,
    variance: r.mean > 0 ? Math.max(0, ex3 / (3 * r.mean) - mean * mean) : 0,
    cdf: (t) => {
      if (r.mean <= 0) return 1;
      const below = countAtMost(r, t);
      // E[min(S, t)] / E[S]
      return Math.min(1, ((r.s1[below] as number) + t * (n - below)) / n / r.mean);
    },
  };
}

/** Pools slots with similar residuals, so that a thousand slots cost like 32. */
function grouped(slots: Slot[]): Slot[] {
  if (slots.length <= MAX_SLOT_GROUPS) return slots;
  const sorted = [...slots].sort((a, b) => a.mean - b.mean);
  const out: Slot[] = [];
  for (let g = 0; g < MAX_SLOT_GROUPS; g++) {
    const from = Math.floor((g * sorted.length) / MAX_SLOT_GROUPS);
    const to = Math.floor(((g + 1) * sorted.length) / MAX_SLOT_GROUPS);
    const rep = sorted[(from + to) >> 1] as Slot;
    out.push({ ...rep, weight: to - from });
  }
  return out;
}

interface Model {
  slots: Slot[];
  /** Total slot weight. */
  n: number;
  cycleMs: number;
  /** Variance of one service time, ms². */
  serviceVar: number;
  /** T_k at the closed form's depth, once computed: every deeper position continues from it. */
  atDepth?: { median: number; low: number; high: number };
}

/**
 * P(X ≤ t) for a sum of positive times with this mean and variance: the gamma distribution of
 * those moments, by Wilson–Hilferty — a normal would put the early freeings of skewed service
 * times (exponential ones) at negative times and so quote too short a wait near the front.
 */
function sumCdf(t: number, mean: number, variance: number): number {
  if (variance <= 0 || mean <= 0) return t >= mean ? 1 : 0;
  if (t <= 0) return 0;
  const a = (mean * mean) / variance;
  const c = 1 / (9 * a);
  return normalCdf((Math.cbrt(t / mean) - (1 - c)) / Math.sqrt(c));
}

/** P(N(t) ≥ k), N(t) the number of freeings by t, taken as normal with its exact mean and variance. */
function pFreed(model: Model, k: number, t: number): number {
  let mean = 0;
  let variance = 0;
  for (const s of model.slots) {
    let g = Math.min(1, Math.max(0, s.cdf(t)));
    let e1 = 0;
    let e2 = 0;
    for (let m = 1; g > 1e-9 && m < 10_000; m++) {
      e1 += g;
      e2 += (2 * m - 1) * g;
      g = Math.min(g, sumCdf(t, s.mean + m * model.cycleMs, s.variance + m * model.serviceVar));
    }
    mean += s.weight * e1;
    variance += s.weight * Math.max(0, e2 - e1 * e1);
  }
  const gap = k - 0.5 - mean;
  if (variance < 1e-12) return gap <= 0 ? 1 : 0;
  return 1 - normalCdf(gap / Math.sqrt(variance));
}

/** The t at which P(T_k ≤ t) = p. */
function quantileOf(model: Model, k: number, p: number, from = 0, guess?: number): number {
  let lo = from;
  let hi = guess ?? from + Math.max(1000, (k / model.n + 1) * model.cycleMs);
  let fLo = pFreed(model, k, lo) - p;
  if (fLo >= 0) return lo;
  let fHi = pFreed(model, k, hi) - p;
  for (let i = 0; i < 60 && fHi < 0; i++) {
    lo = hi;
    fLo = fHi;
    hi = from + (hi - from) * 2;
    fHi = pFreed(model, k, hi) - p;
  }
  // Illinois false position (a few evaluations where bisection takes a dozen), with a bisection
  // every third step for the step-shaped CDFs of a regular record. Whole seconds are quoted: a
  // few ms, or a probability off by 1e-4, is precision enough.
  let side = 0;
  for (let i = 0; hi - lo > QUANTILE_PRECISION_MS && i < 100; i++) {
    const t = i % 3 === 2 || fHi - fLo <= 0 ? (lo + hi) / 2 : hi - (fHi * (hi - lo)) / (fHi - fLo);
    const f = pFreed(model, k, t) - p;
    if (Math.abs(f) < 1e-4) return t;
    if (f >= 0) {
      hi = t;
      fHi = f;
      if (side === 1) fLo /= 2;
      side = 1;
    } else {
      lo = t;
      fLo = f;
      if (side === -1) fHi /= 2;
      side = -1;
    }
  }
  return (lo + hi) / 2;
}

/** The intrinsic median and 80 % interval of T_k, ms (what the model's randomness alone spreads). */
function intrinsic(model: Model, k: number): { median: number; low: number; high: number } {
  const depth = Math.ceil(EXACT_ROUNDS * model.n);
  if (k <= depth) {
    const median = quantileOf(model, k, 0.5);
    return {
      median,
      low: quantileOf(model, k, 0.1, 0, median),
      high: quantileOf(model, k, 0.9, median),
    };
  }
  // Past the depth the slots have long lost their phases: the line moves n slots per cycle, and
  // each further freeing adds a service time's variance shared by n slots (the superposition CLT).
  model.atDepth ??= intrinsic(model, depth);
  const at = model.atDepth;
  const extra = k - depth;
  const sdAt = (at.high - at.low) / (2 * Z80);
  const median = at.median + (extra * model.cycleMs) / model.n;
  const sd = Math.sqrt(sdAt * sdAt + (extra * model.serviceVar) / (model.n * model.n));
  return { median, low: median - Z80 * sd, high: median + Z80 * sd };
}

/** How surely the rates were measured with every slot busy: admissions / freeings, at most 1. */
function rateSaturation(input: ModelInput): number {
  const line = input.lineRatePerSecond;
  if (line === undefined) return 1;
  if (!(input.completionsPerSecond >= MIN_RATE)) return 1;
  return Math.min(1, Math.max(0, line) / input.completionsPerSecond);
}

/**
 * The line's model for one moment, to be asked for any number of positions: building it (sorting
 * the record, pooling the slots) and the wait at the closed form's depth are paid once, and each
 * position's answer is kept, so a reception quoting thousands of waiters a second pays for a few
 * model evaluations, not one per quote (the 10,000-buyer rehearsal spent half the reception's CPU
 * on estimates before this).
 */
export interface WaitModel {
  estimate(slotsNeeded: number): Estimate;
  /** The cycle (ms) and the relative variance its measurements leave, before any drift. */
  readonly cycleMs: number;
  readonly cycleRelVar: number;
}

/**
 * The drift of the cycle: the variance of log(cycle) over a few recent models, less the mean
 * variance each model's own measurements explain (the noise any two estimates differ by), never
 * below 0. Fewer than 3 models say nothing.
 */
export function cycleDrift(history: readonly { cycleMs: number; relVar: number }[]): number {
  const valid = history.filter(
    (h) => h.cycleMs > 0 && Number.isFinite(h.cycleMs) && Number.isFinite(h.relVar),
  );
  if (valid.length < 3) return 0;
  const logs = valid.map((h) => Math.log(h.cycleMs));
  const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
  const variance = logs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (logs.length - 1);
  const noise = valid.reduce((a, h) => a + h.relVar, 0) / valid.length;
  return Math.max(0, variance - noise);
}

/**
 * The drift assumed for a cycle watched only briefly, as a relative standard deviation: what a
 * rush does to it before `cycleDrift` has seen enough to say. In a 10,000-buyer rehearsal
 * (`rushgate rush --buyers`, by arrival time) the waiters who joined in the first 8 s were quoted
 * 20–40 % short — the cycle lengthened as the rush loaded the machines — and their 80 % ranges
 * held 7–20 % of them, while later joiners were quoted within 15 %.
 */
const UNWATCHED_DRIFT_REL_SD = 0.25;
/** How long the cycle must be watched before that assumption is gone (the drift window). */
const DRIFT_WATCH_MS = 30_000;

/**
 * The relative variance to add for a cycle watched for `watchedMs`: `UNWATCHED_DRIFT_REL_SD`
 * squared at first, falling to 0 once it has been watched for `DRIFT_WATCH_MS`. Pure.
 */
export function unwatchedDrift(watchedMs: number): number {
  const left = Math.min(1, Math.max(0, 1 - watchedMs / DRIFT_WATCH_MS));
  return (UNWATCHED_DRIFT_REL_SD * left) ** 2;
}

/** The cycle's drift is measured over this long. */
const DRIFT_WINDOW_MS = 30_000;
/** A model a second at most goes into the drift's history. */
const DRIFT_SAMPLE_MS = 1000;
const DRIFT_HISTORY_MAX = 64;

/** What the record a model was built from is: this reception's hold times, or the servers' transfer times. */
export type CycleSource = 'taken' | 'started';

/**
 * How one item's cycle has moved lately: the cycles of its recent models, one a second at most,
 * for `cycleDrift`, and since when the cycle has been measured from the same record, for
 * `unwatchedDrift`. Pure (times come in as arguments).
 *
 * Models are rebuilt whenever the record grows, which early in a rush is with every hold. Kept
 * all, 64 of them spanned under a second in a 10,000-buyer rehearsal, so the drift compared
 * models a few ms apart (about 0), and the cycle counted as barely watched (`unwatchedDrift`
 * near its whole 25 %) until the record had stopped growing for 30 s. Kept a second apart, the
 * drift of that rehearsal's first 12 s read 0.08–0.11 (the cycle lengthening as the rush loaded
 * the machine) while the unwatched part fell as meant. A switch of record starts the watch over:
 * the cycle moving then is the measure changing, not the line. So does a window with no model
 * at all (between rushes): the next rush is watched afresh.
 */
export class CycleWatch {
  private source: CycleSource | undefined;
  private from = 0;
  private readonly models: { at: number; cycleMs: number; relVar: number }[] = [];

  /** The relative variance to add to a model built now from `source`: drift seen, or unwatched. */
  driftRelVar(now: number, source: CycleSource): number {
    const h = this.models;
    while (h.length > 0 && (h[0]?.at ?? now) < now - DRIFT_WINDOW_MS) h.shift();
    if (h.length > DRIFT_HISTORY_MAX) h.splice(0, h.length - DRIFT_HISTORY_MAX);
    if (this.source !== source || h.length === 0 || now < this.from) {
      this.source = source;
      this.from = now;
      h.length = 0;
    }
    return Math.max(cycleDrift(h), unwatchedDrift(now - this.from));
  }

  /** The model just built (after `driftRelVar`). */
  record(now: number, model: Pick<WaitModel, 'cycleMs' | 'cycleRelVar'>): void {
    const last = this.models.at(-1)?.at;
    if (last === undefined || now - last >= DRIFT_SAMPLE_MS)
      this.models.push({ at: now, cycleMs: model.cycleMs, relVar: model.cycleRelVar });
  }
}

/** Fewer busy slots than this say nothing about the cycle by their ages. */
const MIN_AGED_SLOTS = 3;

/**
 * The shortest cycle the slots held now allow, ms: the median of how long they have been held so
 * far, or 0. In the first seconds of a rush few holds have ended, and the guesses at hand are
 * short: the content servers' throughput (which, while sockets buffer the item, counts a
 * transfer done long before its client has read it) or a handful of first holds to end, the
 * shortest ones. In a 10,000-buyer rehearsal (3 × 50 slots), 1.0 s in, the throughput said
 * 470 ms while the 150 tickets, a second old, were still held — 99 of them not even used yet —
 * and they went on to be held 2.2 s; the waiters quoted then were told 1–3 s for waits of
 * 3–8 s, and their ranges held almost none of them. A lower bound only: tickets younger than the
 * cycle assumed (the first second's) say nothing. Pure.
 */
export function firstHoldsFloorMs(heldSoFarMs: readonly number[] | undefined): number {
  if (!heldSoFarMs) return 0;
  const ages = heldSoFarMs.filter((a) => Number.isFinite(a) && a >= 0).sort((a, b) => a - b);
  if (ages.length < MIN_AGED_SLOTS) return 0;
  return ages[ages.length >> 1] as number;
}

/** Positions whose answers one model keeps; beyond this it starts over (a bounded memo). */
const MEMO_MAX = 4096;

export function waitModel(input: ModelInput): WaitModel {
  const finite = (x: number) => (Number.isFinite(x) ? x : 0);
  const valid = input.serviceTimesMs.filter((s) => Number.isFinite(s) && s >= 0);
  const recorded = valid.length >= MIN_SERVICE_SAMPLES && valid.some((s) => s > 0);
  const busy = input.inFlight.length + Math.max(0, Math.floor(finite(input.unknownInFlight)));
  const n = Math.max(1, Math.floor(finite(input.capacity)), busy);
  const window = input.rateWindowSeconds ?? DEFAULT_RATE_WINDOW_S;

  const rates = [input.completionsPerSecond, input.lineRatePerSecond ?? 0].filter(
    (r) => Number.isFinite(r) && r >= MIN_RATE,
  );
  // Both rates count much the same freeings, so they make one measurement, not two; each counts
  // short when its side stood idle (slots free, or nobody in line), so the larger is the one.
  const rate = rates.length > 0 ? Math.max(...rates) : undefined;

  let record: Record;
  let method: EstimateMethod;
  let logCycle: number;
  let relVar: number;
  if (recorded) {
    record = recordOf(valid);
    const cv2 = record.variance / (record.mean * record.mean);
    // The record times transfers only; a cycle also holds the hand-over to the next client. By
    // Little's law the share of busy slots still in hand-over is hand-over / cycle.
    const notStarted = input.inFlight.filter((f) => f.elapsedMs === undefined).length;
    const handover =
      input.inFlight.length > 0 ? Math.min(MAX_HANDOVER_SHARE, notStarted / input.inFlight.length) : 0;
    const recordCycle = record.mean / (1 - handover);
    // That share is counted on a few slots: its binomial variance (with a quarter-count prior, so
    // that seeing none is not taken as certainty) is most of the record's error about the cycle.
    const known = input.inFlight.length;
    const prior = (notStarted + 0.25) / (known + 0.5);
    const shareVar = known > 0 ? (prior * (1 - prior)) / known : 0;
    // And the record times transfers as the content servers see them, not the slot's whole
    // cycle (the reception's reaction, the notice, the client's connect and request, what the
    // sockets buffered): a bias no number of samples shrinks. Without this term a record of
    // hundreds of regular times outweighed the line's own speed 7 : 1, and a 10,000-buyer
    // rehearsal was quoted 47 s where the line, moving at 99 a second, needed 76.
    const wRecord = 1 / (cv2 / valid.length + shareVar + RECORD_BIAS * RECORD_BIAS);
    if (rate !== undefined) {
      // Freeings of regular service times come evenly, but over a window of a few cycles they
      // still scatter like about a quarter of a Poisson count.
      // And freeings measure the cycle only while the line kept every slot busy: a line that
      // admitted less than the slots freed was empty at times, and its slots may have stood idle.
      const saturation = rateSaturation(input);
      const wRate =
        (saturation * saturation * Math.max(1, rate * window)) / Math.max(cv2, RATE_DISPERSION_MIN);
      logCycle = (wRecord * Math.log(recordCycle) + wRate * Math.log((n / rate) * 1000)) / (wRecord + wRate);
      relVar = 1 / (wRecord + wRate);
      method = 'blend';
    } else {
      logCycle = Math.log(recordCycle);
      relVar = 1 / wRecord;
      method = 'service-times';
    }
  } else if (rate !== undefined) {
    const cycle = (n / rate) * 1000;
    record = recordOf(assumedSamples(cycle));
    logCycle = Math.log(cycle);
    relVar = 1 / Math.max(1, rate * window);
    method = 'rate';
  } else {
    const cycle = Math.max(1, finite(input.coldStartServiceMs));
    record = recordOf(assumedSamples(cycle));
    logCycle = Math.log(cycle);
    relVar = COLD_START_REL_SD * COLD_START_REL_SD;
    method = 'cold-start';
  }
  // A cycle shorter than the slots have already been held is refuted by them: the record is
  // stretched to it, shape kept (the slots' residuals come from the same record).
  const floorMs = firstHoldsFloorMs(input.heldSoFarMs);
  if (floorMs > Math.exp(logCycle)) {
    const stretch = floorMs / Math.exp(logCycle);
    record = recordOf(Array.from(record.sorted, (x) => x * stretch));
    logCycle = Math.log(floorMs);
  }
  const cycleMs = Math.exp(logCycle);
  relVar += CYCLE_REL_SD_FLOOR * CYCLE_REL_SD_FLOOR;
  const measuredRelVar = relVar;
  const drift = input.cycleDriftRelVar;
  if (drift !== undefined && Number.isFinite(drift) && drift > 0) relVar += drift;

  const slots: Slot[] = input.inFlight.map(({ elapsedMs }) => slotOf(record, elapsedMs));
  const unknown = Math.max(0, n - input.inFlight.length);
  for (let i = 0; i < unknown; i++) slots.push(unknownSlot(record));
  const model: Model = { slots: grouped(slots), n, cycleMs, serviceVar: record.variance };
  const memo = new Map<number, Estimate>();
  return {
    cycleMs,
    cycleRelVar: measuredRelVar,
    estimate(needed) {
      const slotsNeeded = Math.max(1, Math.ceil(finite(needed)));
      let e = memo.get(slotsNeeded);
      if (e === undefined) {
        if (memo.size >= MEMO_MAX) memo.clear();
        e = estimateAt(model, slotsNeeded, relVar, method);
        memo.set(slotsNeeded, e);
      }
      return e;
    },
  };
}

export function estimateWait(input: EstimateInput): Estimate {
  return waitModel(input).estimate(input.slotsNeeded);
}

function estimateAt(model: Model, slotsNeeded: number, relVar: number, method: EstimateMethod): Estimate {
  const at = intrinsic(model, slotsNeeded);
  // What the measurements do not know: the cycle's relative error scales the whole wait.
  const known = Z80 * Math.sqrt(relVar) * at.median;
  const lowMs = at.median - Math.hypot(at.median - at.low, known);
  const highMs = at.median + Math.hypot(at.high - at.median, known);

  const seconds = Math.max(1, Math.round(at.median / 1000));
  return {
    seconds,
    lowSeconds: Math.min(seconds, Math.max(0, Math.round(lowMs / 1000))),
    highSeconds: Math.max(seconds, Math.round(highMs / 1000)),
    method,
    cycleMs: model.cycleMs,
  };
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

/**
 * A rate measured from a standstill: an EWMA of counts per tick that knows how many ticks it has
 * run since it last stood at zero. An EWMA that starts from nothing lags a rush that starts at
 * once: α = 0.2 reads 20 % of the rate after the first tick, 49 % after three, just when a rush
 * gives all its first estimates, and a rate read too low made a cycle too long — the 40-buyer
 * rehearsal admitted 97 % of its waiters before their first estimates. `rateOf` divides by the
 * weight the ticks so far carry, 1 − (1 − α)^ticks (the bias correction of Adam, Kingma and Ba),
 * and says over how many seconds the rate was measured, so the estimator weighs it by that.
 */
export interface RateState {
  ewma: number;
  /** Ticks since the EWMA last stood below MIN_RATE (a standstill); 0 at a standstill. */
  ticks: number;
  /** Seconds those ticks covered. */
  seconds: number;
}

export const RATE_ALPHA = 0.2;

export function nextRateState(
  previous: RateState | undefined,
  completions: number,
  intervalMs: number,
): RateState {
  // From a standstill the EWMA starts over at zero, so that the correction in `rateOf` is exact.
  const fromStill = previous === undefined || previous.ewma < MIN_RATE;
  const ewma = nextRate(fromStill ? 0 : previous.ewma, completions, intervalMs, RATE_ALPHA);
  if (fromStill && ewma < MIN_RATE * RATE_ALPHA) return { ewma: 0, ticks: 0, seconds: 0 };
  return {
    ewma,
    ticks: (fromStill ? 0 : previous.ticks) + 1,
    seconds: (fromStill ? 0 : previous.seconds) + intervalMs / 1000,
  };
}

/** The corrected rate (0 at a standstill) and how many seconds it was measured over (at most the EWMA's memory). */
export function rateOf(state: RateState | undefined): { perSecond: number; seconds: number } {
  if (state === undefined || state.ticks === 0) return { perSecond: 0, seconds: 0 };
  const weight = 1 - (1 - RATE_ALPHA) ** state.ticks;
  return { perSecond: state.ewma / weight, seconds: Math.min(DEFAULT_RATE_WINDOW_S, state.seconds) };
}

/** Shorter estimates are whole seconds that a ratio says little about (1 s quoted, 0.3 s waited). */
const CONFORMAL_MIN_ESTIMATE_S = 5;
const CONFORMAL_MIN_SAMPLES = 50;

/**
 * The range the past says to give, as factors of the estimate: the 10th and 90th percentiles of
 * actual / estimated wait over recent admitted waiters whose first estimate was at least
 * `minEstimateSeconds` (split-conformal calibration: recent errors, measured, stand for the next
 * ones). The model's range covers what its measurements do not know; what it cannot know — a
 * line that slows as a rush loads the machines, then speeds up as arrivals end — shows only in
 * the waits that came true: in the 10,000-buyer rehearsal the model's 80 % range held 19 % of the
 * waiters. Undefined with fewer than `minSamples` such waiters.
 *
 * It only widens. Replacing the model's estimate and range by these factors was tried and
 * measured (10,000-buyer rehearsal, side by side: median relative error 0.96 against 0.18 with the
 * model's estimate): in a rush every buyer arrives within the first waits, so the first waiters
 * admitted — quoted by a cold model, admitted early — were all the past there was while most
 * buyers were quoted, and the factors they gave cut everyone's estimate.
 */
export function errorFactors(
  samples: readonly CalibrationSample[],
  minEstimateSeconds = CONFORMAL_MIN_ESTIMATE_S,
  minSamples = CONFORMAL_MIN_SAMPLES,
): { low: number; high: number } | undefined {
  const ratios: number[] = [];
  for (const s of samples) {
    if (s.estimateSeconds >= minEstimateSeconds && Number.isFinite(s.actualSeconds) && s.actualSeconds >= 0)
      ratios.push(s.actualSeconds / s.estimateSeconds);
  }
  if (ratios.length < minSamples) return undefined;
  ratios.sort((a, b) => a - b);
  const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))] ?? 1;
  return { low: at(0.1), high: at(0.9) };
}

/** The model's range, widened (never narrowed) to what `errorFactors` says, for estimates long enough. */
export function widenedRange(
  e: Pick<Estimate, 'seconds' | 'lowSeconds' | 'highSeconds'>,
  factors: { low: number; high: number } | undefined,
  minEstimateSeconds = CONFORMAL_MIN_ESTIMATE_S,
): [number, number] {
  if (factors === undefined || e.seconds < minEstimateSeconds) return [e.lowSeconds, e.highSeconds];
  return [
    Math.max(0, Math.min(e.lowSeconds, Math.floor(e.seconds * factors.low))),
    Math.max(e.highSeconds, Math.ceil(e.seconds * factors.high)),
  ];
}

export interface CalibrationSample {
  estimateSeconds: number;
  actualSeconds: number;
  /** The 80 % interval quoted with the estimate, when it had one. */
  lowSeconds?: number;
  highSeconds?: number;
}

export interface Calibration {
  samples: number;
  /** Share of waiters admitted no later than their first estimate. */
  admittedBeforeEstimate: number;
  /** Share of the waiters quoted a range whose actual wait fell inside it; 0 when none was. */
  admittedInRange: number;
  /** Waiters quoted a range (the denominator of `admittedInRange`). */
  rangeSamples: number;
  medianAbsoluteErrorSeconds: number;
  /** Median of |actual − estimate| / actual, over waiters whose actual wait was > 0. */
  medianRelativeError: number;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function calibrationOf(samples: readonly CalibrationSample[]): Calibration {
  const before = samples.filter((s) => s.actualSeconds <= s.estimateSeconds).length;
  const ranged = samples.filter((s) => s.lowSeconds !== undefined && s.highSeconds !== undefined);
  const inRange = ranged.filter(
    (s) => s.actualSeconds >= (s.lowSeconds ?? 0) && s.actualSeconds <= (s.highSeconds ?? 0),
  ).length;
  return {
    samples: samples.length,
    admittedBeforeEstimate: samples.length > 0 ? before / samples.length : 0,
    admittedInRange: ranged.length > 0 ? inRange / ranged.length : 0,
    rangeSamples: ranged.length,
    medianAbsoluteErrorSeconds: median(samples.map((s) => Math.abs(s.actualSeconds - s.estimateSeconds))),
    medianRelativeError: median(
      samples
        .filter((s) => s.actualSeconds > 0)
        .map((s) => Math.abs(s.actualSeconds - s.estimateSeconds) / s.actualSeconds),
    ),
  };
}
