/**
 * The reception's local mirror of who holds which slot: the outstanding tickets per content
 * server (a ticket holds a slot from issue until it is fulfilled, abandoned or lapses), with when
 * each was issued and started, and the rate at which slots free. The store is the truth — its
 * `reserveTicket` is the atomic guard against overrunning a server — and this mirror is refreshed
 * from it every monitor interval; in between it follows this reception's own reservations and
 * the transfer events it receives, so allocation needs no store round trip to rank servers.
 */
import type { TicketRecord } from '../store/index.js';
import type { InFlight } from './wait-estimator.js';
import { nextRateState, type RateState, rateOf } from './wait-estimator.js';

/**
 * What the store just did to slots, as the mirror must follow it. Every path that changes a slot
 * in the store — a reservation (with the tickets it lapsed), a transfer event, a lapse, a failed
 * notice, a revocation, a lost server — hands its result to `apply`, the one place that updates
 * this mirror.
 */
export type SlotChange =
  | { kind: 'reserved'; ticket: TicketRecord; lapsed: readonly TicketRecord[]; at: number }
  | { kind: 'started'; ticket: TicketRecord; at: number }
  | {
      kind: 'ended';
      tickets: readonly TicketRecord[];
      at: number;
      /** The content server's clock when it happened (transfer events, lost servers). */
      serverAt?: number;
      /** False for tickets that never really held a slot in use (a failed notice, a revocation). */
      completion: boolean;
    };

interface Known {
  server: string;
  /** When this reception reserved it, or first saw it (a store refresh, a transfer event). */
  issuedAt: number;
  /** Reserved by this reception, so `issuedAt` is when its slot was taken. */
  reservedHere?: true;
  /** When it could first be used (issue, or a later `notBefore`): its claim window starts then. */
  usableFrom: number;
  startedAt?: number;
}

/** Hold times kept per server: about as many as a content server's record of service times. */
const HOLD_RECORD = 256;
/** Claim times kept (issue, or `notBefore`, to the transfer's start), over all servers. */
const CLAIM_RECORD = 256;

/** How long a freed ticket is remembered, to tell a stale load report from a real transfer. */
const FREED_MEMORY_MS = 60_000;
const FREED_MAX = 100_000;

export class SlotLedger {
  private readonly byServer = new Map<string, Set<string>>();
  private readonly known = new Map<string, Known>();
  /** ticket id → content-server time its slot was freed. */
  private readonly freed = new Map<string, { at: number; localAt: number }>();
  /** Per server, a ring of how long this reception's tickets held their slots (issue to free). */
  private readonly holds = new Map<string, { times: number[]; next: number }>();
  /** A ring of how long this reception's used tickets took to be used, as seen here. */
  private readonly claims: { times: number[]; next: number } = { times: [], next: 0 };
  /** Changes made while a store read is in flight, replayed on top of its answer. */
  private journal: { op: 'add' | 'del'; server: string; id: string }[] | undefined;
  private freedSinceTick = 0;
  private rate: RateState | undefined;
  private lastTick: number | undefined;
  private readonly freedListeners: ((ticketId: string, server: string, fromPeer: boolean) => void)[] = [];
  private fromPeer = false;

  /**
   * Called whenever a slot this mirror held is freed: held-open waiters can be admitted now, and
   * other receptions on the same store be told (`fromPeer` says the news came from one of them).
   */
  onFreed(listener: (ticketId: string, server: string, fromPeer: boolean) => void): void {
    this.freedListeners.push(listener);
  }

  /** Another reception freed this slot (it said so over the store's broadcast). */
  releasedByPeer(ticketId: string, server: string, now: number): void {
    this.fromPeer = true;
    try {
      this.released(ticketId, server, now);
    } finally {
      this.fromPeer = false;
    }
  }
  private readonly goneListeners: ((ticketId: string) => void)[] = [];

  /**
   * Calls `listener` whenever a ticket stops holding a slot here, by any path: `released`, or
   * gone from the store's view at a `refresh` (ended by another reception, or by the store).
   * It may be called more than once for one ticket.
   */
  onTicketGone(listener: (ticketId: string) => void): void {
    this.goneListeners.push(listener);
  }

  outstanding(server: string): number {
    return this.byServer.get(server)?.size ?? 0;
  }

  outstandingIds(server: string): ReadonlySet<string> {
    return this.byServer.get(server) ?? new Set();
  }

  totalOutstanding(): number {
    let n = 0;
    for (const s of this.byServer.values()) n += s.size;
    return n;
  }

  apply(change: SlotChange): void {
    switch (change.kind) {
      case 'reserved':
        this.reserved(change.ticket);
        for (const t of change.lapsed) this.released(t.id, t.server, change.at);
        return;
      case 'started':
        this.started(change.ticket.id, change.ticket.server, change.at);
        return;
      case 'ended':
        for (const t of change.tickets)
          this.released(t.id, t.server, change.at, change.serverAt, change.completion);
        return;
    }
  }

  reserved(ticket: { id: string; server: string; issuedAt: number; notBefore?: number }): void {
    this.setOf(ticket.server).add(ticket.id);
    this.journal?.push({ op: 'add', server: ticket.server, id: ticket.id });
    this.known.set(ticket.id, {
      server: ticket.server,
      issuedAt: ticket.issuedAt,
      usableFrom: Math.max(ticket.issuedAt, ticket.notBefore ?? ticket.issuedAt),
      reservedHere: true,
    });
  }

  /**
   * Outstanding tickets whose transfer has not started though they could be used since before
   * `before`. O(outstanding tickets), which the servers' capacity bounds; asked once a second.
   */
  unusedSince(before: number): { id: string; server: string }[] {
    const out: { id: string; server: string }[] = [];
    for (const [server, ids] of this.byServer) {
      for (const id of ids) {
        const k = this.known.get(id);
        if (k !== undefined && k.startedAt === undefined && k.usableFrom < before) out.push({ id, server });
      }
    }
    return out;
  }

  started(ticketId: string, server: string, at: number): void {
    const k = this.known.get(ticketId);
    if (k) {
      if (k.startedAt === undefined) {
        k.startedAt = at;
        if (k.reservedHere) this.recordClaim(at - k.usableFrom);
      }
    } else {
      this.known.set(ticketId, { server, issuedAt: at, usableFrom: at, startedAt: at });
    }
    this.setOf(server).add(ticketId);
    this.journal?.push({ op: 'add', server, id: ticketId });
  }

  /**
   * A slot was freed. `serverAt` is the content server's clock when it happened (for transfer
   * events), so that a load report made before it is not mistaken for a new transfer.
   * `completion` is false for tickets that never really held a slot (a failed notice).
   */
  released(ticketId: string, server: string, now: number, serverAt?: number, completion = true): void {
    const set = this.byServer.get(server);
    const had = set?.delete(ticketId) ?? false;
    this.journal?.push({ op: 'del', server, id: ticketId });
    const k = this.known.get(ticketId);
    if (had && completion && k?.reservedHere) this.recordHold(server, now - k.issuedAt);
    this.known.delete(ticketId);
    this.announceGone(ticketId);
    if (had && completion) this.freedSinceTick += 1;
    if (had) for (const l of this.freedListeners) l(ticketId, server, this.fromPeer);
    if (serverAt !== undefined) {
      this.freed.set(ticketId, { at: serverAt, localAt: now });
      if (this.freed.size > FREED_MAX) this.pruneFreed(now, true);
    }
  }

  /** When this ticket's slot was freed, by the content server's clock, if it was lately. */
  freedAt(ticketId: string): number | undefined {
    return this.freed.get(ticketId)?.at;
  }

  /** Call before reading `store.outstanding()`; changes from now on survive `refresh`. */
  beginRefresh(): void {
    this.journal = [];
  }

  /** The store read failed: stop journaling. */
  abortRefresh(): void {
    this.journal = undefined;
  }

  /**
   * Replaces the mirror with the store's view, then replays what changed during the read. The
   * sets become the mirror's own (`store.outstanding()` makes fresh ones on every call): copying
   * tens of thousands of ids every monitor interval was most of this method's cost.
   */
  refresh(outstanding: Map<string, Set<string>>, now: number): void {
    const journal = this.journal ?? [];
    this.journal = undefined;
    this.byServer.clear();
    for (const [server, ids] of outstanding) {
      this.byServer.set(server, ids);
      for (const id of ids) {
        if (!this.known.has(id)) this.known.set(id, { server, issuedAt: now, usableFrom: now });
      }
    }
    for (const { op, server, id } of journal) {
      if (op === 'add') this.setOf(server).add(id);
      else this.byServer.get(server)?.delete(id);
    }
    // This runs every monitor interval over every outstanding ticket (tens of thousands in a
    // rush): the per-server sets just rebuilt say what to keep, without a second set of all ids.
    for (const [id, k] of this.known) {
      if (this.byServer.get(k.server)?.has(id)) continue;
      this.known.delete(id);
      this.announceGone(id);
    }
    this.pruneFreed(now, false);
  }

  /**
   * Occupied slots of these servers as the estimator wants them, aged from when each slot was
   * `taken` (to go with `holdTimes`), or from when its transfer `started` (to go with the content
   * servers' record of transfer times; undefined while its ticket is not used yet).
   */
  inFlight(servers: readonly string[], now: number, since: 'taken' | 'started' = 'taken'): InFlight[] {
    const out: InFlight[] = [];
    for (const server of servers) {
      for (const id of this.byServer.get(server) ?? []) {
        const k = this.known.get(id);
        const from = since === 'taken' ? k?.issuedAt : k?.startedAt;
        out.push({ elapsedMs: from === undefined ? undefined : Math.max(0, now - from) });
      }
    }
    return out;
  }

  /**
   * How long this reception's tickets held their slots on these servers, ms, from issue until
   * the slot was free here again — the whole cycle a waiter waits through: the answer reaching
   * its client, the client's request, the transfer, and the news of its end. The content
   * servers' record times only the transfer: in a 10,000-buyer rehearsal the transfers took
   * 0.1 s (the sockets buffered the item whole) while each slot was held 1.5 s, and estimates
   * built on the transfers were low.
   */
  holdTimes(servers: readonly string[]): number[] {
    const out: number[] = [];
    for (const server of servers) out.push(...(this.holds.get(server)?.times ?? []));
    return out;
  }

  /** How many hold times `holdTimes` would return, without copying them (asked on every quote). */
  holdCount(servers: readonly string[]): number {
    let n = 0;
    for (const server of servers) n += this.holds.get(server)?.times.length ?? 0;
    return n;
  }

  /**
   * The `q` quantile of how long used tickets took to be used, from their usable moment to the
   * `started` event reaching this reception; undefined with fewer than `minSamples`. It measures
   * what the unused-ticket lapse sees: a loaded rush stretches it (the answer, the client's
   * connect, the event's trip), and an honest client must not lose its ticket to that.
   */
  claimMs(q: number, minSamples: number): number | undefined {
    const times = this.claims.times;
    if (times.length < minSamples || times.length === 0) return undefined;
    const sorted = [...times].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  private recordClaim(ms: number): void {
    const ring = this.claims;
    if (ring.times.length < CLAIM_RECORD) ring.times.push(Math.max(0, ms));
    else ring.times[ring.next] = Math.max(0, ms);
    ring.next = (ring.next + 1) % CLAIM_RECORD;
  }

  private recordHold(server: string, ms: number): void {
    let ring = this.holds.get(server);
    if (!ring) {
      ring = { times: [], next: 0 };
      this.holds.set(server, ring);
    }
    if (ring.times.length < HOLD_RECORD) ring.times.push(Math.max(0, ms));
    else ring.times[ring.next] = Math.max(0, ms);
    ring.next = (ring.next + 1) % HOLD_RECORD;
  }

  /** Folds the slots freed since the last tick into the completions-per-second EWMA. */
  tick(now: number): void {
    if (this.lastTick !== undefined && now > this.lastTick) {
      this.rate = nextRateState(this.rate, this.freedSinceTick, now - this.lastTick);
      this.freedSinceTick = 0;
    }
    this.lastTick = now;
  }

  completionsPerSecond(): number {
    return rateOf(this.rate).perSecond;
  }

  /** Over how many seconds `completionsPerSecond` was measured since slots last stood still. */
  completionRateSeconds(): number {
    return rateOf(this.rate).seconds;
  }

  private announceGone(ticketId: string): void {
    for (const l of this.goneListeners) l(ticketId);
  }

  private setOf(server: string): Set<string> {
    let set = this.byServer.get(server);
    if (!set) {
      set = new Set();
      this.byServer.set(server, set);
    }
    return set;
  }

  private pruneFreed(now: number, force: boolean): void {
    for (const [id, f] of this.freed) {
      if (!force && now - f.localAt < FREED_MEMORY_MS) break;
      if (force && this.freed.size <= FREED_MAX * 0.9 && now - f.localAt < FREED_MEMORY_MS) break;
      this.freed.delete(id);
    }
  }
}
