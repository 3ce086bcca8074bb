/**
 * What `rushgate rush` reports after a rehearsal (CONTRACT §5), computed from what each simulated
 * buyer went through: outcomes and file integrity, tickets per content server, waits, the
 * calibration of the first estimate against the real wait (median absolute and relative error,
 * share admitted no later than the estimate, share admitted inside the first 80 % range), FIFO
 * inversions, the share of usable slots in use while anyone waited (from samples of the
 * reception's `/status`), p50/p99 time to admission and to completion, and throughput.
 * A figure that could not be measured is `null` and printed as such, never as 0.
 * Pure: numbers in, numbers and text out.
 */
import { formatBytes } from './progress.js';

export type BuyerOutcome = 'done' | 'busy_timeout' | 'integrity' | 'failed' | 'unfinished';

export interface BuyerRecord {
  outcome: BuyerOutcome;
  /** ms since the rush started. */
  startedMs: number;
  /** The buyer's own source address, when it had one. */
  address?: string;
  /** ms from this buyer's start to its first ticket. */
  admittedAfterMs?: number;
  /** ms since the rush started at which the first ticket arrived. */
  admittedAtMs?: number;
  /** ms from this buyer's start to its end. */
  finishedAfterMs?: number;
  /** The first busy answer's estimate, when the buyer had to wait. */
  firstEstimateSeconds?: number;
  /** The first busy answer's 80 % range, when the reception gave one. */
  firstRangeSeconds?: [number, number];
  firstPosition?: number;
  /** ms since the rush started: the try that got the first busy answer was sent, and it arrived. */
  joinAskedAtMs?: number;
  joinedAtMs?: number;
  busyAnswers: number;
  /**
   * Every try at the reception: when it was sent and answered (ms since the rush started) and
   * how (`t` ticketed, `b` busy, `h` busy after being held open, `e` anything else). Shows where a
   * waiter's time went: a FIFO inversion is a waiter that was not at the reception when its turn came.
   */
  tries?: [number, number, 't' | 'b' | 'h' | 'e'][];
  /** Busy answers to requests the reception held open. */
  heldAnswers?: number;
  attempts: number;
  tickets: string[];
  bytes: number;
  /** For a finished download: whether a stated `Repr-Digest` matched every byte. */
  digestChecked?: boolean;
  errorCode?: string;
  /** What the failure said (the reception's message, or the network error). */
  errorMessage?: string;
}

/** One reading of the reception's `/status`. */
export interface SlotSample {
  at: number;
  waiting: number;
  usable: number;
  used: number;
}

export interface Percentiles {
  p50: number | null;
  p99: number | null;
}

export interface RushReport {
  url: string;
  clients: number;
  concurrency: number;
  durationSeconds: number;
  /** `per-buyer`: each buyer from its own 127.x.y.z; `shared`: the system's choice for all. */
  sourceAddresses: 'per-buyer' | 'shared';
  rateBytesPerSecond: number | null;
  outcomes: Record<BuyerOutcome, number>;
  integrity: {
    /** Finished downloads whose bytes matched the stated `Repr-Digest`. */
    intact: number;
    /** Downloads whose bytes did not match it. */
    mismatched: number;
    /** Finished downloads for which no digest was stated. */
    unchecked: number;
  };
  ticketsPerServer: Record<string, number>;
  tickets: number;
  /** Order and ticket requests made to the reception. */
  attempts: number;
  busyAnswers: number;
  /** Busy answers to requests the reception held open (`Prefer: wait` applied). */
  heldAnswers: number;
  /** Buyers that got at least one busy answer before their first ticket. */
  waited: number;
  /** From the first busy answer to the first ticket, over the buyers that waited and got in. */
  waitSeconds: Percentiles & { max: number | null };
  calibration: {
    samples: number;
    /** Share of waiters admitted no later than their first estimate (null without samples). */
    admittedBeforeEstimate: number | null;
    medianAbsErrorSeconds: number | null;
    /** Median of |actual − estimate| / actual (actual floored at 1 ms). */
    medianRelativeError: number | null;
    /** Waiters whose first busy answer had a range, and the share admitted inside it. */
    rangeSamples: number;
    admittedInsideRange: number | null;
  };
  fifo: {
    toleranceSeconds: number;
    /** Pairs of waiters of which one surely took its place before the other asked. */
    pairs: number;
    /** Of those, the later one admitted more than the tolerance before the earlier one. */
    inversions: number;
    buyersOvertaken: number;
    worstSeconds: number | null;
  };
  slotUse: {
    /** Readings of `/status`, and those taken while anyone waited. */
    samples: number;
    samplesWhileWaiting: number;
    /** Mean share of usable slots in use over the readings while anyone waited. */
    whileWaiting: number | null;
    statusErrors: number;
  } | null;
  admissionSeconds: Percentiles;
  completionSeconds: Percentiles;
  throughput: { bytes: number; bytesPerSecond: number; completionsPerSecond: number };
  errors: Record<string, number>;
  /**
   * The first message seen for each error code, so a count of failures comes with its cause
   * (`reception_unreachable` alone does not say whether connections were refused or timed out).
   */
  errorExamples: Record<string, string>;
}

export interface ReportMeta {
  url: string;
  clients: number;
  concurrency: number;
  durationMs: number;
  ownAddresses?: boolean;
  rate?: number | null;
  fifoToleranceSeconds?: number;
  /** null: `/status` was not sampled, so slot use is not measured. */
  slotSamples?: readonly SlotSample[] | null;
  statusErrors?: number;
}

/** Nearest-rank percentile of `values` (any order); null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? null;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (n: number | null, digits = 3): number | null =>
  n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits;

/** Seconds from the first busy answer to the first ticket; from the buyer's start for older records. */
function actualWaitSeconds(b: BuyerRecord): number | undefined {
  if (b.joinedAtMs !== undefined && b.admittedAtMs !== undefined)
    return Math.max(0, b.admittedAtMs - b.joinedAtMs) / 1000;
  return b.admittedAfterMs === undefined ? undefined : b.admittedAfterMs / 1000;
}

/**
 * FIFO inversions among waiters that got in. A pair counts when one was surely ahead of the other:
 * its first busy answer arrived before the other's first try was sent, or no later than the
 * other's and with a smaller position (a place's rank only falls while it waits, so the other's
 * rank was at least its own later position then). It is an inversion when the one behind was
 * admitted more than `tolerance` seconds before the one ahead. Quadratic, but on typed arrays:
 * 10,000 waiters take about a second.
 */
export function fifoInversions(buyers: readonly BuyerRecord[], toleranceSeconds: number): RushReport['fifo'] {
  const w = buyers.filter(
    (b) => b.joinedAtMs !== undefined && b.joinAskedAtMs !== undefined && b.admittedAtMs !== undefined,
  );
  const n = w.length;
  // NaN compares false: a buyer that named no position is ordered by time alone.
  const position = Float64Array.from(w, (b) => b.firstPosition ?? Number.NaN);
  const joined = Float64Array.from(w, (b) => b.joinedAtMs!);
  const asked = Float64Array.from(w, (b) => b.joinAskedAtMs!);
  const admitted = Float64Array.from(w, (b) => b.admittedAtMs!);
  const tol = toleranceSeconds * 1000;
  let pairs = 0;
  let inversions = 0;
  let worst = 0;
  const overtaken = new Uint8Array(n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      const ahead = joined[a]! < asked[b]! || (joined[a]! <= joined[b]! && position[a]! < position[b]!);
      if (!ahead) continue;
      pairs++;
      const lead = admitted[a]! - admitted[b]!;
      if (lead > tol) {
        inversions++;
        overtaken[a] = 1;
        if (lead > worst) worst = lead;
      }
    }
  }
  return {
    toleranceSeconds,
    pairs,
    inversions,
    buyersOvertaken: overtaken.reduce((s, v) => s + v, 0),
    worstSeconds: inversions === 0 ? (pairs === 0 ? null : 0) : round(worst / 1000),
  };
}

/** Mean share of usable slots in use over the readings taken while anyone waited. Pure. */
export function slotUseOf(
  samples: readonly SlotSample[],
  statusErrors = 0,
): NonNullable<RushReport['slotUse']> {
  const waiting = samples.filter((s) => s.waiting > 0 && s.usable > 0);
  const share = waiting.reduce((sum, s) => sum + s.used / s.usable, 0);
  return {
    samples: samples.length,
    samplesWhileWaiting: waiting.length,
    whileWaiting: waiting.length === 0 ? null : round(share / waiting.length),
    statusErrors,
  };
}

/** Long enough for a network error and its address, short enough for one line. */
const MAX_EXAMPLE_CHARS = 200;

export function buildReport(buyers: readonly BuyerRecord[], meta: ReportMeta): RushReport {
  const outcomes: Record<BuyerOutcome, number> = {
    done: 0,
    busy_timeout: 0,
    integrity: 0,
    failed: 0,
    unfinished: 0,
  };
  const ticketsPerServer: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const errorExamples: Record<string, string> = {};
  let tickets = 0;
  let attempts = 0;
  let busyAnswers = 0;
  let heldAnswers = 0;
  let bytes = 0;
  let intact = 0;
  let unchecked = 0;
  const admissions: number[] = [];
  const completions: number[] = [];
  const waits: number[] = [];
  const absErrors: number[] = [];
  const relErrors: number[] = [];
  let beforeEstimate = 0;
  let rangeSamples = 0;
  let insideRange = 0;
  let waited = 0;

  for (const b of buyers) {
    outcomes[b.outcome]++;
    attempts += b.attempts;
    busyAnswers += b.busyAnswers;
    heldAnswers += b.heldAnswers ?? 0;
    bytes += b.bytes;
    for (const s of b.tickets) {
      ticketsPerServer[s] = (ticketsPerServer[s] ?? 0) + 1;
      tickets++;
    }
    if (b.outcome === 'done') {
      if (b.digestChecked === true) intact++;
      else unchecked++;
    }
    if (b.admittedAfterMs !== undefined) admissions.push(b.admittedAfterMs / 1000);
    if (b.outcome === 'done' && b.finishedAfterMs !== undefined) completions.push(b.finishedAfterMs / 1000);
    if (b.outcome !== 'done') {
      const code = b.errorCode ?? b.outcome;
      errors[code] = (errors[code] ?? 0) + 1;
      if (b.errorMessage !== undefined && errorExamples[code] === undefined)
        errorExamples[code] = b.errorMessage.slice(0, MAX_EXAMPLE_CHARS);
    }
    if (b.firstEstimateSeconds !== undefined) {
      waited++;
      const actual = actualWaitSeconds(b);
      if (actual !== undefined && b.admittedAfterMs !== undefined) {
        waits.push(actual);
        const err = Math.abs(actual - b.firstEstimateSeconds);
        absErrors.push(err);
        relErrors.push(err / Math.max(actual, 0.001));
        if (actual <= b.firstEstimateSeconds) beforeEstimate++;
        if (b.firstRangeSeconds) {
          rangeSamples++;
          if (actual >= b.firstRangeSeconds[0] && actual <= b.firstRangeSeconds[1]) insideRange++;
        }
      }
    }
  }
  const seconds = Math.max(meta.durationMs, 1) / 1000;
  return {
    url: meta.url,
    clients: meta.clients,
    concurrency: meta.concurrency,
    durationSeconds: round(seconds) ?? 0,
    sourceAddresses: meta.ownAddresses ? 'per-buyer' : 'shared',
    rateBytesPerSecond: meta.rate ?? null,
    outcomes,
    integrity: { intact, mismatched: outcomes.integrity, unchecked },
    ticketsPerServer: Object.fromEntries(
      Object.entries(ticketsPerServer).sort(([a], [b]) => a.localeCompare(b)),
    ),
    tickets,
    attempts,
    busyAnswers,
    heldAnswers,
    waited,
    waitSeconds: {
      p50: round(percentile(waits, 50)),
      p99: round(percentile(waits, 99)),
      max: round(percentile(waits, 100)),
    },
    calibration: {
      samples: absErrors.length,
      admittedBeforeEstimate: absErrors.length === 0 ? null : round(beforeEstimate / absErrors.length),
      medianAbsErrorSeconds: round(median(absErrors)),
      medianRelativeError: round(median(relErrors)),
      rangeSamples,
      admittedInsideRange: rangeSamples === 0 ? null : round(insideRange / rangeSamples),
    },
    fifo: fifoInversions(buyers, meta.fifoToleranceSeconds ?? 1),
    slotUse: meta.slotSamples ? slotUseOf(meta.slotSamples, meta.statusErrors ?? 0) : null,
    admissionSeconds: { p50: round(percentile(admissions, 50)), p99: round(percentile(admissions, 99)) },
    completionSeconds: { p50: round(percentile(completions, 50)), p99: round(percentile(completions, 99)) },
    throughput: {
      bytes,
      bytesPerSecond: Math.round(bytes / seconds),
      completionsPerSecond: round(outcomes.done / seconds) ?? 0,
    },
    errors,
    errorExamples,
  };
}

const NOT_MEASURED = 'not measured';
const secs = (n: number | null) => (n === null ? NOT_MEASURED : `${n.toFixed(n < 10 ? 2 : 1)} s`);
const pct = (n: number | null) => (n === null ? NOT_MEASURED : `${Math.round(n * 1000) / 10}%`);

/** The report as lines for a terminal or a log. */
export function formatReport(r: RushReport): string[] {
  const servers = Object.entries(r.ticketsPerServer)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  const errs = Object.entries(r.errors)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  const cal = r.calibration;
  const f = r.fifo;
  const slot = r.slotUse;
  return [
    `rush of ${r.clients} buyers for ${r.url} (concurrency ${r.concurrency}, ${r.durationSeconds.toFixed(1)} s, ` +
      `${r.sourceAddresses === 'per-buyer' ? 'one source address per buyer' : 'shared source address'}, ` +
      `${r.rateBytesPerSecond === null ? 'unthrottled' : `${formatBytes(r.rateBytesPerSecond)}/s each`})`,
    `  outcomes            done ${r.outcomes.done}, still busy ${r.outcomes.busy_timeout}, integrity ${r.outcomes.integrity}, failed ${r.outcomes.failed}, unfinished ${r.outcomes.unfinished}`,
    `  files               ${r.integrity.intact} intact (sha-256 = Repr-Digest), ${r.integrity.mismatched} mismatched, ${r.integrity.unchecked} unchecked (no digest stated)`,
    `  tickets per server  ${servers || 'none'} (${r.tickets} in all, ${r.attempts} order/ticket requests)`,
    `  busy answers        ${r.busyAnswers} (${r.heldAnswers} to held-open requests; ${r.waited} buyers waited)`,
    r.waited === 0
      ? '  waits               nobody waited'
      : `  waits               p50 ${secs(r.waitSeconds.p50)}, p99 ${secs(r.waitSeconds.p99)}, max ${secs(r.waitSeconds.max)}`,
    cal.samples === 0
      ? '  calibration         nobody waited and got in: not measured'
      : `  calibration         ${pct(cal.admittedBeforeEstimate)} admitted no later than their first estimate; median |actual − estimate| ${secs(cal.medianAbsErrorSeconds)}, relative ${pct(cal.medianRelativeError)}; ` +
        (cal.rangeSamples === 0
          ? 'inside the first range: not measured (no range given)'
          : `${pct(cal.admittedInsideRange)} inside the first range (${cal.rangeSamples})`) +
        ` (${cal.samples} waiters)`,
    f.pairs === 0
      ? `  FIFO                no comparable pairs of waiters: not measured`
      : `  FIFO                ${f.inversions} inversions beyond ${f.toleranceSeconds} s in ${f.pairs} pairs (${f.buyersOvertaken} buyers overtaken, worst ${secs(f.worstSeconds)})`,
    slot === null
      ? '  slot use            not measured (give --status with the reception’s internal /status URL)'
      : `  slot use            ${pct(slot.whileWaiting)} of usable slots in use while anyone waited (${slot.samplesWhileWaiting} of ${slot.samples} readings${slot.statusErrors ? `, ${slot.statusErrors} failed` : ''})`,
    `  time to admission   p50 ${secs(r.admissionSeconds.p50)}, p99 ${secs(r.admissionSeconds.p99)}`,
    `  time to completion  p50 ${secs(r.completionSeconds.p50)}, p99 ${secs(r.completionSeconds.p99)}`,
    `  throughput          ${formatBytes(r.throughput.bytesPerSecond)}/s (${formatBytes(r.throughput.bytes)}), ${r.throughput.completionsPerSecond} downloads/s`,
    `  errors              ${errs || 'none'}`,
    ...Object.entries(r.errorExamples).map(([c, m]) => `    ${c}: ${m}`),
  ];
}
