/**
 * The reception's store: orders, their tickets (which double as slot reservations), transfer
 * events already applied, idempotency keys, and the waiting line. One interface, several
 * backends (`memory:`, `sqlite:`, later `redis://`), one conformance test that every backend
 * passes (test/store-contract.ts).
 *
 * Atomicity is part of the interface, not an accident of one backend: every method is one atomic
 * step. In particular `reserveTicket` checks the server's outstanding count and inserts the
 * ticket in one step, so two receptions sharing a store can never both take the last slot. Times
 * are ms since the epoch and always passed in (no backend reads the clock), so tests are exact.
 */

export type OrderStatus = 'waiting' | 'ticketed' | 'downloading' | 'fulfilled' | 'lapsed';

/**
 * `issued` and `downloading` tickets are *outstanding*: each holds one slot on its server.
 * The other states are final and hold nothing.
 */
export type TicketStatus = 'issued' | 'downloading' | 'fulfilled' | 'lapsed' | 'revoked' | 'failed';

export const OUTSTANDING: readonly TicketStatus[] = ['issued', 'downloading'];

export interface TicketRecord {
  id: string;
  orderId: string;
  server: string;
  url: string;
  issuedAt: number;
  notBefore: number;
  expiresAt: number;
  /** An `issued` ticket not started by then lapses and frees its slot (`claimSeconds`). */
  claimBy: number;
  status: TicketStatus;
  /** Distinct bytes delivered, as last reported by the content server. */
  delivered: number;
  /** When the first transfer under it started (`downloading`), if it did. */
  startedAt?: number;
  /** When it reached a final state. */
  finishedAt?: number;
}

export interface OrderRecord {
  id: string;
  item: string;
  status: OrderStatus;
  createdAt: number;
  clientAddress: string;
  email?: string;
  idempotencyKey?: string;
  /** The purchase whose grant made the order (CONTRACT §7). */
  purchase?: Purchase;
  /** Oldest first. */
  tickets: TicketRecord[];
}

export interface NewOrder {
  id: string;
  item: string;
  clientAddress: string;
  createdAt: number;
  email?: string;
  idempotencyKey?: string;
  purchase?: Purchase;
}

/** A grant's purchase (CONTRACT §7): the shop's `iss` and purchase id `sub`. */
export interface Purchase {
  iss: string;
  sub: string;
}

export type CreateOrderResult =
  | { kind: 'created'; order: OrderRecord }
  /** Same Idempotency-Key and same item: the earlier order. */
  | { kind: 'existing'; order: OrderRecord }
  /** Same Idempotency-Key, another item (CONTRACT §3: 409). */
  | { kind: 'conflict'; order: OrderRecord };

export interface ReserveLimits {
  capacity: number;
  /**
   * Load on the server that no ticket in this store covers (transfers the load report shows
   * whose tickets we do not know, e.g. policy `open`), counted against capacity too.
   */
  untracked: number;
  maxTicketsPerOrder: number;
}

export type ReserveResult =
  /** `lapsed`: the order's earlier outstanding tickets that this step ended (their slots freed). */
  | { kind: 'reserved'; order: OrderRecord; ticket: TicketRecord; lapsed: TicketRecord[] }
  | { kind: 'full' }
  | { kind: 'ticket_limit' }
  | { kind: 'unknown_order' };

export type TransferEventType = 'started' | 'fulfilled' | 'abandoned';

export interface AppliedEvent {
  /** False when the event id was seen before (a retried batch): nothing changed. */
  applied: boolean;
  ticket?: TicketRecord;
  order?: OrderRecord;
  /** True when this event moved the ticket from outstanding to final: a slot was freed. */
  freedSlot: boolean;
}

/** A place in the waiting line. `seq` orders the line: lower is earlier. */
export interface LineEntry {
  token: string;
  seq: number;
  joinedAt: number;
  lastSeenAt: number;
  /** The first estimated wait given to this client, seconds (for calibration). */
  firstEstimateSeconds: number;
  /** When a slot started being held for this entry, if one is. */
  heldSince?: number;
  /**
   * When the client is due back: its last busy answer's `Retry-After` after it was seen, or the
   * end of the request it holds open. Unknown (absent) until an answer says; a waiter well past
   * it is not coming back soon, so no slot is held for it (line-rules.ts `isOverdue`).
   */
  dueAt?: number;
}

export type JoinResult =
  | { kind: 'joined'; entry: LineEntry; position: number }
  /** `queue.maxLength` reached (CONTRACT §3 `line_full`). */
  | { kind: 'full'; length: number };

export interface PlaceInLine {
  entry: LineEntry;
  /** 1-based rank: 1 is next in line. */
  position: number;
}

/**
 * Messages between the receptions that share a store (Redis pub/sub); absent for stores that one
 * process owns. Delivery is best effort: nothing correct may depend on a message arriving.
 */
export interface Broadcast {
  publish(message: string): Promise<void>;
  /** Messages from the other receptions (never this one's own). */
  subscribe(listener: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

export interface Store {
  /** Durable before it resolves (the `201` is sent after). */
  createOrder(order: NewOrder, idempotencyTtlMs: number): Promise<CreateOrderResult>;
  getOrder(orderId: string): Promise<OrderRecord | undefined>;
  /**
   * The order an Idempotency-Key (as stored: scoped) named, while the key is kept at `now`; reads
   * only. A waiter's retries carry a key each, and only an admission needs an order written.
   */
  findByIdempotencyKey(key: string, now: number): Promise<OrderRecord | undefined>;

  /**
   * Atomically: if the order exists, has fewer than `maxTicketsPerOrder`
   * tickets, and the server's outstanding tickets + `untracked` < `capacity`, insert the ticket
   * (status `issued`) and set the order `ticketed`. Earlier outstanding tickets of the order are
   * marked `lapsed` (a fresh ticket replaces them). A fulfilled order may take one too (CONTRACT §3:
   * the end of its download was lost); it stays fulfilled.
   */
  reserveTicket(
    ticket: Omit<TicketRecord, 'status' | 'delivered'>,
    limits: ReserveLimits,
  ): Promise<ReserveResult>;

  /**
   * Ends an outstanding ticket without a transfer event: `failed` (its notice was not
   * acknowledged), `lapsed` (unused past `claimBy`), or `revoked`. Frees its slot. Returns the
   * ticket when it was outstanding.
   */
  endTicket(
    ticketId: string,
    status: 'failed' | 'lapsed' | 'revoked',
    at: number,
  ): Promise<TicketRecord | undefined>;

  /** Applies one transfer event idempotently (by `eventId`). */
  applyTransferEvent(event: {
    eventId: string;
    ticketId: string;
    type: TransferEventType;
    delivered: number;
    at: number;
  }): Promise<AppliedEvent>;

  /**
   * Ends as `lapsed` every `issued` ticket whose `claimBy` ≤ now and every `downloading` ticket
   * whose `expiresAt` ≤ now (its server may have died mid-transfer); returns them.
   */
  lapseUnclaimed(now: number): Promise<TicketRecord[]>;

  /** Outstanding ticket ids per server id (servers with none may be absent). */
  outstanding(): Promise<Map<string, Set<string>>>;

  /** Every ticket id of an order (for revocation). */
  ticketsOfOrder(orderId: string): Promise<TicketRecord[]>;

  // ── Waiting line ──────────────────────────────────────────────────────────────────────────
  // A rush puts 100,000 clients in line: every operation costs O(log N) in the line's length N
  // (O(k + log N) when it returns k entries), never a walk of the whole line. A position is a
  // rank in an ordered index.

  /**
   * Adds a new entry at the end unless the line already holds `maxLength` entries; `seq` is
   * assigned by the store (strictly increasing). `position` is the new entry's 1-based rank.
   */
  joinLine(
    entry: { token: string; now: number; firstEstimateSeconds: number; dueAt?: number },
    maxLength: number,
  ): Promise<JoinResult>;
  /**
   * Updates `lastSeenAt`, and `dueAt` when one is given (otherwise it stays as it was); the entry
   * and its 1-based position, or undefined when not in line.
   */
  touchLine(token: string, now: number, dueAt?: number): Promise<PlaceInLine | undefined>;
  /** As `touchLine`, without counting as seen. */
  findInLine(token: string): Promise<PlaceInLine | undefined>;
  setHeld(token: string, heldSince: number | undefined): Promise<void>;
  /** Removes an entry (admitted or abandoned); returns it when it was there. */
  leaveLine(token: string): Promise<LineEntry | undefined>;
  /** The first `limit` entries, earliest first. */
  lineFront(limit: number): Promise<LineEntry[]>;
  lineLength(): Promise<number>;
  /**
   * Abandonment, swept incrementally: removes up to `limit` entries last seen before
   * `seenBefore` (least recently seen first) and returns them.
   */
  sweepLine(seenBefore: number, limit: number): Promise<LineEntry[]>;

  // ── Purchase grants (CONTRACT §7) ───────────────────────────────────────────────────────────

  /** Ids of every order made with a grant of this purchase. */
  ordersOfPurchase(p: Purchase): Promise<string[]>;
  /** Records a refund durably: the purchase's grants are refused from now on. */
  revokePurchase(p: Purchase, at: number): Promise<void>;
  isPurchaseRevoked(p: Purchase): Promise<boolean>;

  // ── Retention ─────────────────────────────────────────────────────────────────────────────

  /**
   * Purges up to `limit` orders last active `retentionMs` or more before `now` (rules.ts
   * `purgeVerdict`): the order, its tickets, its idempotency key and so its e-mail address. An
   * order with an outstanding ticket is never purged. One small atomic step; the caller repeats
   * while `more` says a full batch was examined, yielding in between.
   */
  purgeInactive(now: number, retentionMs: number, limit: number): Promise<PurgeResult>;

  /** Present when several receptions may share this store. */
  broadcast?: Broadcast;

  /**
   * A write that really reaches the storage and changes nothing, for a store whose reads (and
   * calls with nothing to write) keep working while its writes fail (SQLite on a full disk):
   * only this, or a call that failed, tells that writes are taken again.
   */
  probeWrite?(): Promise<void>;

  close(): Promise<void>;
}

export interface PurgeResult {
  purged: number;
  /** True when `limit` orders were examined: more may be due. */
  more: boolean;
}
