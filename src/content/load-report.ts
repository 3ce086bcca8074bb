/**
 * The content server's load condition as the reception monitors it (the seed's Sa31: "a number of
 * clients to which services are provided ... or ... a memory quantity used"), answered on
 * `GET /load`, plus the two small meters that feed it: bytes per second out over a sliding window,
 * and the service times of recently fulfilled orders (the seed's "record of the required times"
 * that the reception's waiting-time calculator 136 averages). Pure: the caller passes `nowMs` and
 * the process facts (rss) in.
 */
import type { CatalogEntry, LoadReport } from '../protocol/internal.js';

/** A rate over less time than this is noise. */
const MIN_SPAN_MS = 200;

/**
 * Bytes written per second, averaged over the last `windowMs`, in one-second buckets — or over
 * the time since sending began, when that is shorter: at the start of a rush the reception reads
 * each transfer's rate off this (its cold-start estimate), and five seconds of idle window would
 * make a transfer look ten times slower than it is.
 */
export class ThroughputMeter {
  readonly #bucketMs: number;
  readonly #buckets: Float64Array;
  /** Index (time / bucketMs) of the newest bucket written. */
  #newest = -1;
  /** When bytes started flowing after a window with none. */
  #busySince: number | undefined;

  constructor(windowMs = 5000, bucketMs = 1000) {
    this.#bucketMs = bucketMs;
    this.#buckets = new Float64Array(Math.max(1, Math.ceil(windowMs / bucketMs)));
  }

  add(bytes: number, nowMs: number): void {
    this.#advance(nowMs);
    if (this.#busySince === undefined || this.#empty()) this.#busySince = nowMs;
    const n = this.#buckets.length;
    const i = this.#newest % n;
    this.#buckets[i] = (this.#buckets[i] ?? 0) + bytes;
  }

  /** Average over the window's completed buckets and the current partial one. */
  perSecond(nowMs: number): number {
    this.#advance(nowMs);
    let total = 0;
    for (const b of this.#buckets) total += b;
    const n = this.#buckets.length;
    const elapsedInCurrent = nowMs - this.#newest * this.#bucketMs;
    let spanMs = (n - 1) * this.#bucketMs + Math.max(1, elapsedInCurrent);
    if (total > 0 && this.#busySince !== undefined) {
      spanMs = Math.min(spanMs, Math.max(MIN_SPAN_MS, nowMs - this.#busySince));
    }
    return (total * 1000) / spanMs;
  }

  #empty(): boolean {
    for (const b of this.#buckets) if (b !== 0) return false;
    return true;
  }

  #advance(nowMs: number): void {
    const idx = Math.floor(nowMs / this.#bucketMs);
    if (this.#newest === -1) {
      this.#newest = idx;
      return;
    }
    if (idx <= this.#newest) return;
    const n = this.#buckets.length;
    const steps = Math.min(n, idx - this.#newest);
    for (let k = 1; k <= steps; k++) this.#buckets[(this.#newest + k) % n] = 0;
    this.#newest = idx;
  }
}

/** The last `capacity` service times, oldest first, in a ring (pushed on every completed download). */
export class ServiceTimes {
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;

  constructor(capacity = 50) {
    this.#ring = new Float64Array(capacity);
  }

  push(ms: number): void {
    this.#ring[this.#next] = Math.max(0, ms);
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
  }

  values(): number[] {
    const n = this.#ring.length;
    const start = (this.#next - this.#count + n) % n;
    const out: number[] = [];
    for (let i = 0; i < this.#count; i++) out.push(this.#ring[(start + i) % n] as number);
    return out;
  }
}

export interface LoadFacts {
  serverId: string;
  instanceId: string;
  nowMs: number;
  transfers: number;
  activeTickets: string[];
  untrackedActive: number;
  capacity: number;
  rssBytes: number;
  memoryLimitMb: number | null;
  bytesPerSecond: number;
  serviceTimesMs: number[];
  draining: boolean;
  catalogVersion: string;
  catalog: () => CatalogEntry[];
}

/**
 * Builds the report. The catalog is included only when the poller's `catalogSince` differs from
 * the current version (or is absent), so a steady poll costs a few hundred bytes.
 */
export function buildLoadReport(facts: LoadFacts, catalogSince: string | undefined): LoadReport {
  const report: LoadReport = {
    serverId: facts.serverId,
    instanceId: facts.instanceId,
    at: facts.nowMs,
    active: facts.transfers,
    activeTickets: facts.activeTickets,
    untrackedActive: facts.untrackedActive,
    capacity: facts.capacity,
    rssBytes: facts.rssBytes,
    memoryLimitBytes: facts.memoryLimitMb === null ? null : Math.round(facts.memoryLimitMb * 1024 * 1024),
    bytesPerSecond: Math.round(facts.bytesPerSecond),
    serviceTimesMs: facts.serviceTimesMs,
    draining: facts.draining,
    catalogVersion: facts.catalogVersion,
  };
  if (catalogSince !== facts.catalogVersion) report.catalog = facts.catalog();
  return report;
}
