/**
 * What `rushgate rush` reports after a rehearsal, computed from what each simulated buyer went
 * through: outcomes, tickets per content server, busy answers, the waits estimated against the
 * waits actually spent (the calibration of the seed's waiting time calculator 136: share admitted
 * no later than the first estimate, median absolute error), p50/p99 time to admission and to
 * completion, throughput, and errors by code. Pure: numbers in, numbers and text out.
 */
import { formatBytes } from './progress.js';

export type BuyerOutcome = 'done' | 'busy_timeout' | 'integrity' | 'failed' | 'unfinished';

export interface BuyerRecord {
  outcome: BuyerOutcome;
  /** ms since the rush started. */
  startedMs: number;
  /** ms from this buyer's start to its first ticket. */
  admittedAfterMs?: number;
  /** ms from this buyer's start to its end. */
  finishedAfterMs?: number;
  /** The first busy answer's estimate, when the buyer had to wait. */
  firstEstimateSeconds?: number;
  busyAnswers: number;
  attempts: number;
  tickets: string[];
  bytes: number;
  errorCode?: string;
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
  outcomes: Record<BuyerOutcome, number>;
  ticketsPerServer: Record<string, number>;
  tickets: number;
  /** Order and ticket requests made to the reception. */
  attempts: number;
  busyAnswers: number;
  /** Buyers that got at least one busy answer before their first ticket. */
  waited: number;
  calibration: {
    samples: number;
    /** Share of waiters admitted no later than their first estimate (null without samples). */
    admittedBeforeEstimate: number | null;
    medianAbsErrorSeconds: number | null;
  };
  admissionSeconds: Percentiles;
  completionSeconds: Percentiles;
  throughput: { bytes: number; bytesPerSecond: number; completionsPerSecond: number };
  errors: Record<string, number>;
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

export function buildReport(
  buyers: readonly BuyerRecord[],
  meta: { url: string; clients: number; concurrency: number; durationMs: number },
): RushReport {
  const outcomes: Record<BuyerOutcome, number> = {
    done: 0,
    busy_timeout: 0,
    integrity: 0,
    failed: 0,
    unfinished: 0,
  };
  const ticketsPerServer: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let tickets = 0;
  let attempts = 0;
  let busyAnswers = 0;
  let bytes = 0;
  const admissions: number[] = [];
  const completions: number[] = [];
  const errorsOfEstimate: number[] = [];
  let beforeEstimate = 0;
  let waited = 0;

  for (const b of buyers) {
    outcomes[b.outcome]++;
    attempts += b.attempts;
    busyAnswers += b.busyAnswers;
    bytes += b.bytes;
    for (const s of b.tickets) {
      ticketsPerServer[s] = (ticketsPerServer[s] ?? 0) + 1;
      tickets++;
    }
    if (b.admittedAfterMs !== undefined) admissions.push(b.admittedAfterMs / 1000);
    if (b.outcome === 'done' && b.finishedAfterMs !== undefined) completions.push(b.finishedAfterMs / 1000);
    if (b.outcome !== 'done') {
      const code = b.errorCode ?? b.outcome;
      errors[code] = (errors[code] ?? 0) + 1;
    }
    if (b.firstEstimateSeconds !== undefined) {
      waited++;
      if (b.admittedAfterMs !== undefined) {
        const actual = b.admittedAfterMs / 1000;
        errorsOfEstimate.push(Math.abs(actual - b.firstEstimateSeconds));
        if (actual <= b.firstEstimateSeconds) beforeEstimate++;
      }
    }
  }
  const seconds = Math.max(meta.durationMs, 1) / 1000;
  return {
    url: meta.url,
    clients: meta.clients,
    concurrency: meta.concurrency,
    durationSeconds: round(seconds) ?? 0,
    outcomes,
    ticketsPerServer: Object.fromEntries(
      Object.entries(ticketsPerServer).sort(([a], [b]) => a.localeCompare(b)),
    ),
    tickets,
    attempts,
    busyAnswers,
    waited,
    calibration: {
      samples: errorsOfEstimate.length,
      admittedBeforeEstimate:
        errorsOfEstimate.length === 0 ? null : round(beforeEstimate / errorsOfEstimate.length),
      medianAbsErrorSeconds: round(median(errorsOfEstimate)),
    },
    admissionSeconds: { p50: round(percentile(admissions, 50)), p99: round(percentile(admissions, 99)) },
    completionSeconds: { p50: round(percentile(completions, 50)), p99: round(percentile(completions, 99)) },
    throughput: {
      bytes,
      bytesPerSecond: Math.round(bytes / seconds),
      completionsPerSecond: round(outcomes.done / seconds) ?? 0,
    },
    errors,
  };
}

const secs = (n: number | null) => (n === null ? '–' : `${n.toFixed(n < 10 ? 2 : 1)} s`);

/** The report as lines for a terminal or a log. */
export function formatReport(r: RushReport): string[] {
  const servers = Object.entries(r.ticketsPerServer)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');
  const errs = Object.entries(r.errors)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  const cal = r.calibration;
  return [
    `rush of ${r.clients} buyers for ${r.url} (concurrency ${r.concurrency}, ${r.durationSeconds.toFixed(1)} s)`,
    `  outcomes            done ${r.outcomes.done}, still busy ${r.outcomes.busy_timeout}, integrity ${r.outcomes.integrity}, failed ${r.outcomes.failed}, unfinished ${r.outcomes.unfinished}`,
    `  tickets per server  ${servers || 'none'} (${r.tickets} in all, ${r.attempts} order/ticket requests)`,
    `  busy answers        ${r.busyAnswers} (${r.waited} buyers waited)`,
    cal.samples === 0
      ? '  waits               nobody waited'
      : `  waits               ${Math.round((cal.admittedBeforeEstimate ?? 0) * 100)}% admitted no later than their first estimate; median |actual − estimate| ${secs(cal.medianAbsErrorSeconds)} (${cal.samples} waiters)`,
    `  time to admission   p50 ${secs(r.admissionSeconds.p50)}, p99 ${secs(r.admissionSeconds.p99)}`,
    `  time to completion  p50 ${secs(r.completionSeconds.p50)}, p99 ${secs(r.completionSeconds.p99)}`,
    `  throughput          ${formatBytes(r.throughput.bytesPerSecond)}/s (${formatBytes(r.throughput.bytes)}), ${r.throughput.completionsPerSecond} downloads/s`,
    `  errors              ${errs || 'none'}`,
  ];
}
