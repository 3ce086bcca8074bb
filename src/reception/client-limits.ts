/**
 * Per-client shares (CONTRACT §3 "Fair shares"): how many live tickets and places in line one
 * client prefix holds, against `limits.ticketsPerClient` and `limits.placesPerClient`. It is asked
 * on every order, so both answers cost O(1) (amortized for places) however much a prefix holds:
 * walking a prefix's tickets on every order made the reception 3.5× slower with 13,779 tickets
 * from one address (the reception bench, where wrk sends from one address).
 *
 * - Tickets are counted as they are given and uncounted when the slot ledger frees them
 *   (`ticketEnded`, which the ledger calls for every path a ticket ends by: fulfilled, lapsed,
 *   failed, revoked, abandoned, lost, or gone from the store's view at a refresh).
 * - Places leave the line inside the waiting line, which says only whether a token is still in
 *   it; a prefix's places are checked against it when their number doubled since the last check,
 *   or reached the limit, so the work per place given stays constant.
 *
 * Memory is bounded: a prefix holding nothing is dropped; past `maxClients` prefixes, or
 * `maxTickets` tickets, or `maxPlaces` places, the least recently given-to prefix (or the oldest
 * ticket) is forgotten, which can only let that client have more, never refuse anyone wrongly.
 * Counts are this reception's own: behind several receptions sharing a store, a client's cap
 * applies per reception it reaches.
 */

export interface ShareBounds {
  maxClients?: number;
  maxTickets?: number;
  maxPlaces?: number;
}

/** The slot ledger's word on whether a ticket still holds a slot. */
export type TicketLiveness = (ticketId: string, server: string) => boolean;

const DEFAULT_BOUNDS: Required<ShareBounds> = {
  maxClients: 100_000,
  maxTickets: 1_000_000,
  maxPlaces: 1_000_000,
};
/** A prefix's places are first checked against the line when it holds this many. */
const PLACE_CHECK_FLOOR = 16;

interface Share {
  readonly key: string;
  tickets: number;
  places: Set<string>;
  /** Check `places` against the line when it reaches this size. */
  checkPlacesAt: number;
}

export class ClientShares {
  private readonly shares = new Map<string, Share>();
  /** Ticket id → the share it counts in (the object, so a forgotten share is never confused with a new one). */
  private readonly owners = new Map<string, Share>();
  private placesHeld = 0;
  private readonly bounds: Required<ShareBounds>;

  /**
   * `isLive` is asked once per ticket given: a ticket the ledger freed while its notice was out
   * (revoked, its server lost) must not be counted, since its end was already announced.
   */
  constructor(
    private readonly isLive: TicketLiveness = () => true,
    bounds: ShareBounds = {},
  ) {
    this.bounds = { ...DEFAULT_BOUNDS, ...bounds };
  }

  /** Live tickets this client was given by this reception. */
  liveTickets(key: string): number {
    return this.shares.get(key)?.tickets ?? 0;
  }

  /**
   * Whether this client holds at least `limit` places; `inLine(token)` is the line's word. Exact
   * whenever it says true (the places are checked then); it may count places that left until
   * they are checked, which never matters below the limit.
   */
  placesAtLeast(key: string, limit: number, inLine: (token: string) => boolean): boolean {
    const share = this.shares.get(key);
    if (!share) return false;
    if (share.places.size >= Math.min(limit, share.checkPlacesAt)) this.checkPlaces(share, inLine);
    return share.places.size >= limit;
  }

  ticketGiven(key: string, ticketId: string, server: string): void {
    if (this.owners.has(ticketId) || !this.isLive(ticketId, server)) return;
    const share = this.touch(key);
    share.tickets += 1;
    this.owners.set(ticketId, share);
    if (this.owners.size > this.bounds.maxTickets) {
      const oldest = this.owners.keys().next().value;
      if (oldest !== undefined) this.ticketEnded(oldest);
    }
  }

  /** The ledger freed this ticket's slot (by whatever path); unknown ids are ignored. */
  ticketEnded(ticketId: string): void {
    const share = this.owners.get(ticketId);
    if (!share) return;
    this.owners.delete(ticketId);
    share.tickets -= 1;
    this.forgetIfEmpty(share);
  }

  placeGiven(key: string, token: string): void {
    const share = this.touch(key);
    if (share.places.has(token)) return;
    share.places.add(token);
    this.placesHeld += 1;
    while (this.placesHeld > this.bounds.maxPlaces && this.shares.size > 0) this.evictOldest();
  }

  /** Prefixes remembered. */
  get size(): number {
    return this.shares.size;
  }

  /** Tickets and places remembered over all prefixes (memory bounds, tests). */
  get tracked(): { tickets: number; places: number } {
    return { tickets: this.owners.size, places: this.placesHeld };
  }

  private checkPlaces(share: Share, inLine: (token: string) => boolean): void {
    for (const t of share.places) {
      if (inLine(t)) continue;
      share.places.delete(t);
      this.placesHeld -= 1;
    }
    share.checkPlacesAt = Math.max(PLACE_CHECK_FLOOR, 2 * share.places.size);
    this.forgetIfEmpty(share);
  }

  private touch(key: string): Share {
    const share = this.shares.get(key) ?? {
      key,
      tickets: 0,
      places: new Set<string>(),
      checkPlacesAt: PLACE_CHECK_FLOOR,
    };
    // Re-insertion keeps the map in last-use order, so the first key is the least recently used.
    this.shares.delete(key);
    this.shares.set(key, share);
    while (this.shares.size > this.bounds.maxClients) this.evictOldest();
    return share;
  }

  private evictOldest(): void {
    const oldest = this.shares.values().next().value;
    if (oldest === undefined) return;
    this.shares.delete(oldest.key);
    this.placesHeld -= oldest.places.size;
    oldest.places.clear();
    // Its tickets stay in `owners` until they end (bounded by maxTickets), counting in a share
    // nobody asks about any more.
  }

  private forgetIfEmpty(share: Share): void {
    if (share.tickets === 0 && share.places.size === 0 && this.shares.get(share.key) === share)
      this.shares.delete(share.key);
  }
}
