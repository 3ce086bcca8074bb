/**
 * What this content server has been told about tickets beyond the tickets themselves: the
 * reception's notices of issued tickets (the seed's Sa35, "the permission ticket receiver 141
 * knows ... in advance ... by receiving the corresponding notice"), and revocations — of one
 * ticket, or of every ticket of an order (the seed's "permission ticket registered as an invalid
 * permission ticket"), including the local revocation of a strict ticket whose order was
 * fulfilled. It is the `TicketState` that `verifyTicket` consults.
 *
 * Memory stays bounded without any coordination: a notice is forgotten at its ticket's
 * `exp + clockSkewSeconds` and a revocation at its `until + clockSkewSeconds`, because after that
 * the ticket fails `expired` anyway. Pure: times come in as `nowMs`.
 */
import type { Notice, Revocation } from '../protocol/internal.js';
import type { TicketClaims, TicketState } from '../tickets/index.js';

interface NoticeEntry {
  oid: string;
  path: string;
  /** Forget after this, ms. */
  dropAt: number;
}

/** `until` values above this are taken as milliseconds rather than seconds (see normalizeUntil). */
const MS_THRESHOLD = 100_000_000_000;

/**
 * The protocol gives `until` in seconds since the epoch, like `exp`. A value that can only be
 * milliseconds (past the year 5138 as seconds) is read as milliseconds, so that a sender mixing up
 * units makes a revocation last as long as meant instead of for millennia.
 */
export function normalizeUntil(until: number): number {
  return until > MS_THRESHOLD ? Math.floor(until / 1000) : until;
}

export class TicketRegistry implements TicketState {
  readonly #skewMs: number;
  readonly #notices = new Map<string, NoticeEntry>();
  /** jti → drop time, ms. */
  readonly #revokedTickets = new Map<string, number>();
  /** oid → drop time, ms. */
  readonly #revokedOrders = new Map<string, number>();

  constructor(options: { clockSkewSeconds: number }) {
    this.#skewMs = options.clockSkewSeconds * 1000;
  }

  /**
   * Records notices; returns how many were taken. A notice whose ticket has already expired is
   * not kept (and not counted); a repeated notice refreshes the same entry, so a batch retried by
   * the reception changes nothing.
   */
  addNotices(notices: readonly Notice[], nowMs: number): number {
    let accepted = 0;
    for (const n of notices) {
      const dropAt = n.exp * 1000 + this.#skewMs;
      if (dropAt <= nowMs) continue;
      this.#notices.set(n.jti, { oid: n.oid, path: n.path, dropAt });
      accepted++;
    }
    return accepted;
  }

  /** Records revocations; returns how many were taken (all valid ones: repeats are harmless). */
  addRevocations(revocations: readonly Revocation[], nowMs: number): number {
    let accepted = 0;
    for (const r of revocations) {
      const dropAt = normalizeUntil(r.until) * 1000 + this.#skewMs;
      accepted++;
      // Every ticket it covers is past `expired` already: nothing to remember.
      if (dropAt <= nowMs) continue;
      const map = r.kind === 'order' ? this.#revokedOrders : this.#revokedTickets;
      const key = r.kind === 'order' ? r.orderId : r.ticketId;
      map.set(key, Math.max(dropAt, map.get(key) ?? 0));
    }
    return accepted;
  }

  /** Local revocation of one ticket, e.g. a strict ticket whose order was just fulfilled. */
  revokeTicket(jti: string, exp: number): void {
    const dropAt = exp * 1000 + this.#skewMs;
    this.#revokedTickets.set(jti, Math.max(dropAt, this.#revokedTickets.get(jti) ?? 0));
  }

  hasNotice(claims: TicketClaims): boolean {
    const n = this.#notices.get(claims.jti);
    // A notice names the order and item too; a mismatch means it is not this ticket's notice.
    return n !== undefined && n.oid === claims.oid && n.path === claims.path;
  }

  isRevoked(claims: TicketClaims): boolean {
    return this.#revokedTickets.has(claims.jti) || this.#revokedOrders.has(claims.oid);
  }

  /** Forgets entries past their drop time; returns how many. Called every few seconds. */
  sweep(nowMs: number): number {
    let dropped = 0;
    for (const map of [this.#notices, this.#revokedTickets, this.#revokedOrders] as Map<
      string,
      number | NoticeEntry
    >[]) {
      for (const [key, value] of map) {
        const dropAt = typeof value === 'number' ? value : value.dropAt;
        if (dropAt <= nowMs) {
          map.delete(key);
          dropped++;
        }
      }
    }
    return dropped;
  }

  counts(): { notices: number; revokedTickets: number; revokedOrders: number } {
    return {
      notices: this.#notices.size,
      revokedTickets: this.#revokedTickets.size,
      revokedOrders: this.#revokedOrders.size,
    };
  }
}
