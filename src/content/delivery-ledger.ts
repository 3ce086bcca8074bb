/**
 * The delivery ledger: for every ticket in use on this content server, which distinct bytes of its
 * item have been written to a connection, and how many transfers under it are in progress. It is
 * what turns "bytes left the socket" into the order-level facts the reception needs (CONTRACT §4):
 * a ticket's first transfer (`started`), every byte of the item delivered at least once across any
 * number of parallel, overlapping or interrupted range requests (`fulfilled`, the end of the seed's
 * order processing that nullifies the ticket), and a ticket left idle with bytes missing
 * (`abandoned`). Pure: no I/O, no clock — every method takes `nowMs` — so it is tested exactly.
 *
 * Delivered bytes are a union of half-open intervals `[start, end)` kept sorted and disjoint in a
 * flat number array; a ticket is fulfilled when the union is `[0, size)`.
 */

/** What the ledger needs to know about a ticket when its first transfer begins. */
export interface LedgerTicket {
  jti: string;
  oid: string;
  /** Item path. */
  path: string;
  /** Item size in bytes. */
  size: number;
  /** The ticket's `exp`, seconds since the epoch: the entry is dropped after exp + skew. */
  exp: number;
}

/** A read-only view of one ticket's entry. */
export interface LedgerSnapshot extends LedgerTicket {
  delivered: number;
  active: number;
  fulfilled: boolean;
  /** When its first byte was written, ms. */
  firstByteAt?: number;
  /** When its last new byte was written, ms. */
  lastByteAt?: number;
}

export interface RecordResult {
  /** Distinct bytes delivered so far under the ticket. */
  delivered: number;
  /** True exactly once: on the write that completed the item. */
  fulfilled: boolean;
  /** With `fulfilled`: ms from the ticket's first byte to its last. */
  durationMs?: number;
}

export interface SweepResult {
  /** Tickets that just became abandoned (reported once per idle spell). */
  abandoned: LedgerSnapshot[];
  /** Entries forgotten because their ticket can no longer be used. */
  dropped: number;
}

interface Entry {
  ticket: LedgerTicket;
  /** Sorted, disjoint, non-adjacent half-open intervals: [s0, e0, s1, e1, ...]. */
  intervals: number[];
  delivered: number;
  active: number;
  fulfilled: boolean;
  /** Reported abandoned and not used since; the next transfer is a fresh `started`. */
  abandoned: boolean;
  idleSince: number;
  firstByteAt?: number;
  lastByteAt?: number;
}

export interface LedgerOptions {
  /**
   * Most disjoint intervals kept per ticket. A client with a valid ticket could otherwise grow the
   * list without bound by asking for every other byte. Past the cap a new disjoint interval is
   * not recorded: the ledger then under-counts, which is the safe side (the order is not marked
   * fulfilled; the client can ask the reception for a fresh ticket).
   */
  maxIntervals?: number;
}

const DEFAULT_MAX_INTERVALS = 4096;

export class DeliveryLedger {
  readonly #entries = new Map<string, Entry>();
  readonly #maxIntervals: number;
  #untracked = 0;
  /** Entries with `active > 0`, kept incrementally: `serving` runs on every request. */
  #activeTickets = 0;
  #transfers = 0;
  /** The most clients served at once since start: a scrape between two peaks would miss them. */
  #servingMax = 0;

  constructor(options: LedgerOptions = {}) {
    this.#maxIntervals = options.maxIntervals ?? DEFAULT_MAX_INTERVALS;
  }

  /**
   * A transfer under `ticket` begins. Returns `started: true` for the ticket's first transfer and
   * for the first one after it was reported abandoned (the client came back with a still-valid
   * ticket, and the reception must count it as downloading again).
   */
  beginTransfer(ticket: LedgerTicket, nowMs: number): { started: boolean } {
    let entry = this.#entries.get(ticket.jti);
    let started = false;
    if (!entry) {
      entry = {
        ticket: { ...ticket },
        intervals: [],
        delivered: 0,
        active: 0,
        fulfilled: false,
        abandoned: false,
        idleSince: nowMs,
      };
      this.#entries.set(ticket.jti, entry);
      started = true;
    } else if (entry.abandoned) {
      entry.abandoned = false;
      started = !entry.fulfilled;
    }
    if (entry.active === 0) this.#activeTickets++;
    entry.active++;
    this.#transfers++;
    this.#servingMax = Math.max(this.#servingMax, this.serving);
    return { started };
  }

  /** A transfer under `jti` ended, completed or cut short. */
  endTransfer(jti: string, nowMs: number): void {
    const entry = this.#entries.get(jti);
    if (!entry || entry.active === 0) return;
    entry.active--;
    this.#transfers--;
    if (entry.active === 0) {
      this.#activeTickets--;
      entry.idleSince = nowMs;
    }
  }

  /**
   * Bytes `[start, end)` of the ticket's item were written to a connection. For an empty item, a
   * completed body (`start === end === 0`) fulfils it.
   */
  recordBytes(jti: string, start: number, end: number, nowMs: number): RecordResult {
    const entry = this.#entries.get(jti);
    if (!entry) return { delivered: 0, fulfilled: false };
    if (entry.fulfilled) return { delivered: entry.delivered, fulfilled: false };
    const size = entry.ticket.size;
    const s = Math.max(0, Math.min(start, size));
    const e = Math.max(s, Math.min(end, size));
    if (e > s) {
      const added = insertInterval(entry.intervals, s, e, this.#maxIntervals);
      if (added > 0) {
        entry.delivered += added;
        entry.firstByteAt ??= nowMs;
        entry.lastByteAt = nowMs;
      }
    }
    if (entry.delivered < size || (size === 0 && end !== 0))
      return { delivered: entry.delivered, fulfilled: false };
    entry.fulfilled = true;
    entry.firstByteAt ??= nowMs;
    entry.lastByteAt ??= nowMs;
    // Keep the entry (so a repeat download under a non-strict ticket reports nothing twice) but
    // drop the intervals: they are no longer needed.
    entry.intervals = [];
    return { delivered: entry.delivered, fulfilled: true, durationMs: entry.lastByteAt - entry.firstByteAt };
  }

  /** Whether `jti` has a transfer in progress (a further range request of it is never refused). */
  isActive(jti: string): boolean {
    return (this.#entries.get(jti)?.active ?? 0) > 0;
  }

  /** Transfers of `jti` in progress now (the per-ticket connection cap counts these). */
  activeTransfers(jti: string): number {
    return this.#entries.get(jti)?.active ?? 0;
  }

  /** Ticket ids with at least one transfer in progress. */
  activeTickets(): string[] {
    const out: string[] = [];
    for (const [jti, e] of this.#entries) if (e.active > 0) out.push(jti);
    return out;
  }

  /** Transfers in progress that no ticket covers (policy `open`). */
  beginUntracked(): void {
    this.#untracked++;
    this.#servingMax = Math.max(this.#servingMax, this.serving);
  }

  endUntracked(): void {
    if (this.#untracked > 0) this.#untracked--;
  }

  get untrackedActive(): number {
    return this.#untracked;
  }

  /** Clients being served: distinct tickets with a transfer in progress plus untracked transfers. */
  get serving(): number {
    return this.#activeTickets + this.#untracked;
  }

  /** The highest `serving` since this ledger was made (this process started). */
  get servingMax(): number {
    return this.#servingMax;
  }

  /** Transfers in progress, ticketed or not. */
  get transfers(): number {
    return this.#transfers + this.#untracked;
  }

  get size(): number {
    return this.#entries.size;
  }

  snapshot(jti: string): LedgerSnapshot | undefined {
    const e = this.#entries.get(jti);
    return e ? snapshotOf(e) : undefined;
  }

  /**
   * Finds tickets idle (no transfer in progress) for `claimMs` with bytes still missing — each
   * reported once per idle spell — and forgets entries whose ticket expired (`exp + skew`) and
   * that have nothing in progress. An expiring entry never reported is reported abandoned on the
   * way out, so the reception hears about every unfinished ticket.
   */
  sweep(nowMs: number, options: { claimMs: number; skewMs: number }): SweepResult {
    const abandoned: LedgerSnapshot[] = [];
    let dropped = 0;
    for (const [jti, e] of this.#entries) {
      if (e.active > 0) continue;
      const expired = nowMs >= e.ticket.exp * 1000 + options.skewMs;
      if (!e.fulfilled && !e.abandoned && (expired || nowMs - e.idleSince >= options.claimMs)) {
        e.abandoned = true;
        abandoned.push(snapshotOf(e));
      }
      if (expired) {
        this.#entries.delete(jti);
        dropped++;
      }
    }
    return { abandoned, dropped };
  }
}

function snapshotOf(e: Entry): LedgerSnapshot {
  const snap: LedgerSnapshot = {
    ...e.ticket,
    delivered: e.delivered,
    active: e.active,
    fulfilled: e.fulfilled,
  };
  if (e.firstByteAt !== undefined) snap.firstByteAt = e.firstByteAt;
  if (e.lastByteAt !== undefined) snap.lastByteAt = e.lastByteAt;
  return snap;
}

/**
 * Merges `[s, e)` into the sorted flat interval list in place and returns how many bytes it added
 * that were not there before. Adjacent intervals are merged too, so the list stays minimal.
 */
export function insertInterval(list: number[], s: number, e: number, maxIntervals = Infinity): number {
  if (e <= s) return 0;
  const n = list.length / 2;
  // First interval whose end reaches s (touching counts: [0,5) and [5,9) merge).
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[2 * mid + 1] as number) < s) lo = mid + 1;
    else hi = mid;
  }
  const first = lo;
  // Intervals first..last-1 overlap or touch [s, e).
  let last = first;
  let covered = 0;
  let ns = s;
  let ne = e;
  while (last < n && (list[2 * last] as number) <= e) {
    const is = list[2 * last] as number;
    const ie = list[2 * last + 1] as number;
    covered += Math.max(0, Math.min(ie, e) - Math.max(is, s));
    if (is < ns) ns = is;
    if (ie > ne) ne = ie;
    last++;
  }
  const merged = last - first;
  if (merged === 0 && n >= maxIntervals) return 0;
  list.splice(2 * first, 2 * merged, ns, ne);
  return e - s - covered;
}

/** Total bytes covered by a flat interval list (tests and invariants). */
export function coveredBytes(list: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < list.length; i += 2) total += (list[i + 1] as number) - (list[i] as number);
  return total;
}
