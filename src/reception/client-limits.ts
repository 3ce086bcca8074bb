/**
 * Per-client shares (CONTRACT §3 "Fair shares"): how many live tickets and places in line one
 * client prefix holds, against `limits.ticketsPerClient` and `limits.placesPerClient`. This only
 * remembers which tickets and places a prefix was given; whether each is still live is asked of
 * their owners (the slot ledger for tickets, the waiting line for places) when counting, and the
 * dead ones are forgotten then. The map of prefixes is bounded (least recently used goes first),
 * so a flood of prefixes costs bounded memory. Counts are this reception's own: behind several
 * receptions sharing a store, a client's cap applies per reception it reaches.
 */

const MAX_CLIENTS = 100_000;

interface Share {
  tickets: Map<string, string>;
  places: Set<string>;
}

export class ClientShares {
  private readonly shares = new Map<string, Share>();
  constructor(private readonly maxClients = MAX_CLIENTS) {}

  /** Live tickets of this client; `isLive(ticketId, server)` is the ledger's word. */
  liveTickets(key: string, isLive: (ticketId: string, server: string) => boolean): number {
    const share = this.shares.get(key);
    if (!share) return 0;
    for (const [id, server] of share.tickets) if (!isLive(id, server)) share.tickets.delete(id);
    this.forgetIfEmpty(key, share);
    return share.tickets.size;
  }

  /** Places this client holds; `inLine(token)` is the line's word. */
  places(key: string, inLine: (token: string) => boolean): number {
    const share = this.shares.get(key);
    if (!share) return 0;
    for (const t of share.places) if (!inLine(t)) share.places.delete(t);
    this.forgetIfEmpty(key, share);
    return share.places.size;
  }

  ticketGiven(key: string, ticketId: string, server: string): void {
    this.touch(key).tickets.set(ticketId, server);
  }

  placeGiven(key: string, token: string): void {
    this.touch(key).places.add(token);
  }

  get size(): number {
    return this.shares.size;
  }

  private touch(key: string): Share {
    const share = this.shares.get(key) ?? { tickets: new Map(), places: new Set() };
    // Re-insertion keeps the map in last-use order, so the first key is the least recently used.
    this.shares.delete(key);
    this.shares.set(key, share);
    while (this.shares.size > this.maxClients) {
      const oldest = this.shares.keys().next().value;
      if (oldest === undefined) break;
      this.shares.delete(oldest);
    }
    return share;
  }

  private forgetIfEmpty(key: string, share: Share): void {
    if (share.tickets.size === 0 && share.places.size === 0) this.shares.delete(key);
  }
}
