/**
 * The store's rules as pure functions: how an order's status follows from its tickets, whether a
 * reservation may go ahead, and how one transfer event moves one ticket (the seed's "completion
 * report" step that frees a content server's slot). No I/O and no clock: the `memory:` and
 * `sqlite:` backends call these inside their atomic step, and the Redis Lua scripts (`lua/`)
 * implement the same rules line for line, so every backend behaves alike: change both together.
 */
import type {
  NewOrder,
  OrderRecord,
  OrderStatus,
  ReserveLimits,
  TicketRecord,
  TicketStatus,
  TransferEventType,
} from './types.js';

/** How long (and how many) transfer-event ids are remembered for idempotency. */
export const EVENT_ID_RETENTION_MS = 60 * 60 * 1000;
export const EVENT_ID_MAX = 200_000;

export function isOutstanding(status: TicketStatus): boolean {
  return status === 'issued' || status === 'downloading';
}

/**
 * `fulfilled` is final and wins; otherwise a running transfer (`downloading`) is what the client
 * experiences even when a later ticket exists (a client may come back with an older, still-valid
 * ticket); then `ticketed` while a ticket waits to be used; `lapsed` once every ticket ended.
 */
export function orderStatusOf(tickets: readonly { status: TicketStatus }[]): OrderStatus {
  if (tickets.length === 0) return 'waiting';
  let downloading = false;
  let issued = false;
  for (const t of tickets) {
    if (t.status === 'fulfilled') return 'fulfilled';
    if (t.status === 'downloading') downloading = true;
    else if (t.status === 'issued') issued = true;
  }
  if (downloading) return 'downloading';
  if (issued) return 'ticketed';
  return 'lapsed';
}

export type ReserveVerdict = 'ok' | 'full' | 'ticket_limit';

/**
 * Whether a reservation may go ahead. A fulfilled order may take a fresh ticket too (CONTRACT §3:
 * the end of its download was lost); it stays fulfilled, and `maxTicketsPerOrder` bounds how
 * often. The order's own outstanding tickets on the server do not count against it: they lapse in
 * the same step, so they must not keep it out of a server they are about to leave (capacity still
 * holds after the step).
 */
export function reserveVerdict(
  order: { tickets: readonly { server: string; status: TicketStatus }[] },
  server: string,
  outstandingOnServer: number,
  limits: ReserveLimits,
): ReserveVerdict {
  if (order.tickets.length >= limits.maxTicketsPerOrder) return 'ticket_limit';
  let own = 0;
  for (const t of order.tickets) if (t.server === server && isOutstanding(t.status)) own++;
  if (outstandingOnServer - own + limits.untracked >= limits.capacity) return 'full';
  return 'ok';
}

/** A new order as every backend records it: no tickets yet, so `waiting`. */
export function newOrder(input: NewOrder): OrderRecord {
  const order: OrderRecord = {
    id: input.id,
    item: input.item,
    status: 'waiting',
    createdAt: input.createdAt,
    clientAddress: input.clientAddress,
    tickets: [],
  };
  if (input.email !== undefined) order.email = input.email;
  if (input.idempotencyKey !== undefined) order.idempotencyKey = input.idempotencyKey;
  if (input.purchase !== undefined) order.purchase = { iss: input.purchase.iss, sub: input.purchase.sub };
  return order;
}

/** One string per purchase, for map keys and store keys (`iss` is a URL: no newline in it). */
export function purchaseKey(p: { iss: string; sub: string }): string {
  return `${p.iss}\n${p.sub}`;
}

/** The ticket a reservation inserts: the known fields only (nothing extra a caller passed), issued. */
export function newTicket(input: Omit<TicketRecord, 'status' | 'delivered'>): TicketRecord {
  return {
    id: input.id,
    orderId: input.orderId,
    server: input.server,
    url: input.url,
    issuedAt: input.issuedAt,
    notBefore: input.notBefore,
    expiresAt: input.expiresAt,
    claimBy: input.claimBy,
    status: 'issued',
    delivered: 0,
  };
}

export interface EventStep {
  ticket: TicketRecord;
  /** Went from outstanding to final. */
  freedSlot: boolean;
  /** Went from final (lapsed/failed) back to outstanding: it holds a slot again. */
  retook: boolean;
}

/**
 * One transfer event applied to one ticket. `fulfilled` is final: nothing moves it again. A
 * `started` event revives a `lapsed` or `failed` ticket (the transfer IS happening, so it counts
 * against capacity again) but not a `revoked` one: revocation is an operator's decision, and the
 * content server refuses revoked tickets anyway. `delivered` only grows (reports may reorder).
 */
export function applyEvent(
  current: TicketRecord,
  event: { type: TransferEventType; delivered: number; at: number },
): EventStep {
  const t: TicketRecord = { ...current };
  if (t.status === 'fulfilled') return { ticket: t, freedSlot: false, retook: false };
  if (event.delivered > t.delivered) t.delivered = event.delivered;
  const wasOutstanding = isOutstanding(t.status);
  switch (event.type) {
    case 'started': {
      if (t.startedAt === undefined) t.startedAt = event.at;
      if (t.status === 'issued') {
        t.status = 'downloading';
        return { ticket: t, freedSlot: false, retook: false };
      }
      if (t.status === 'lapsed' || t.status === 'failed') {
        t.status = 'downloading';
        delete t.finishedAt;
        return { ticket: t, freedSlot: false, retook: true };
      }
      return { ticket: t, freedSlot: false, retook: false };
    }
    case 'fulfilled': {
      t.status = 'fulfilled';
      t.finishedAt = event.at;
      return { ticket: t, freedSlot: wasOutstanding, retook: false };
    }
    case 'abandoned': {
      if (!wasOutstanding) return { ticket: t, freedSlot: false, retook: false };
      t.status = 'lapsed';
      t.finishedAt = event.at;
      return { ticket: t, freedSlot: true, retook: false };
    }
  }
}

/** Copies, so that no caller can change a backend's state through a returned record. */
export function copyTicket(t: TicketRecord): TicketRecord {
  return { ...t };
}

/**
 * Whether an outstanding ticket is past its deadline (`lapseUnclaimed`): an `issued` one unused at
 * `claimBy`, a `downloading` one at `expiresAt` — its server may have died mid-transfer, and then
 * no event will ever end it (issue 8).
 */
export function pastDeadline(
  t: Pick<TicketRecord, 'status' | 'claimBy' | 'expiresAt'>,
  now: number,
): boolean {
  const d = deadlineOf(t);
  return d !== undefined && d <= now;
}

/** When `pastDeadline` turns true for this ticket; undefined for one that is not outstanding. */
export function deadlineOf(t: Pick<TicketRecord, 'status' | 'claimBy' | 'expiresAt'>): number | undefined {
  if (t.status === 'issued') return t.claimBy;
  if (t.status === 'downloading') return t.expiresAt;
  return undefined;
}

/**
 * When an order was last active: its creation, and for each ticket its issue, start, end and —
 * because a content server still accepts a ticket until then — its expiry. Retention counts from
 * here (`reception.retention`). Every input is a stored field, so no backend writes anything on
 * each change just to keep an activity time up to date.
 */
export function lastActivityOf(order: Pick<OrderRecord, 'createdAt' | 'tickets'>): number {
  let at = order.createdAt;
  for (const t of order.tickets) {
    at = Math.max(at, t.issuedAt, t.expiresAt, t.startedAt ?? at, t.finishedAt ?? at);
  }
  return at;
}

export type PurgeVerdict =
  | { purge: true }
  /** Not yet: look again once `activeAt` + retention has passed (a lower bound, never later). */
  | { purge: false; activeAt: number };

/**
 * Whether an order may be purged now. Never while a ticket of it is outstanding (its slot and its
 * events still need the order); such an order is looked at again a retention after `now`. The
 * backends keep a lower bound of each order's activity in an index and call this for the orders
 * the index says might be due, so the index never needs to be exact, only never too late.
 */
export function purgeVerdict(
  order: Pick<OrderRecord, 'createdAt' | 'tickets'>,
  now: number,
  retentionMs: number,
): PurgeVerdict {
  if (order.tickets.some((t) => isOutstanding(t.status))) return { purge: false, activeAt: now };
  const activeAt = lastActivityOf(order);
  return activeAt + retentionMs <= now ? { purge: true } : { purge: false, activeAt };
}
