/**
 * The `memory:` store: everything in plain maps, lost when the process ends. For tests, demos and
 * a reception that may forget its orders on restart. Each method runs to completion without
 * awaiting anything, so on Node's single thread every method is one atomic step by construction.
 * Returned records are copies: callers cannot change the store's state by mutating them.
 */

import { DeadlineIndex } from './deadline-index.js';
import { LineIndex } from './line-index.js';
import {
  applyEvent,
  copyTicket,
  deadlineOf,
  EVENT_ID_MAX,
  EVENT_ID_RETENTION_MS,
  isOutstanding,
  newOrder,
  newTicket,
  orderStatusOf,
  pastDeadline,
  purchaseKey,
  purgeVerdict,
  reserveVerdict,
} from './rules.js';
import { TimeQueue } from './time-queue.js';
import type {
  AppliedEvent,
  CreateOrderResult,
  LineEntry,
  NewOrder,
  OrderRecord,
  ReserveLimits,
  ReserveResult,
  Store,
  TicketRecord,
} from './types.js';

interface IdempotencyEntry {
  orderId: string;
  expiresAt: number;
}

function copyOrder(o: OrderRecord): OrderRecord {
  return { ...o, tickets: o.tickets.map(copyTicket) };
}

export function createMemoryStore(): Store {
  const orders = new Map<string, OrderRecord>();
  const orderOfTicket = new Map<string, string>();
  const outstandingByServer = new Map<string, Set<string>>();
  const idempotency = new Map<string, IdempotencyEntry>();
  /** Purchase grants (CONTRACT §7): orders per purchase, and refunded purchases. */
  const purchaseOrders = new Map<string, string[]>();
  const revokedPurchases = new Map<string, number>();
  /** event id → `at`; insertion order is arrival order, so pruning walks from the front. */
  const seenEvents = new Map<string, number>();
  let latestEventAt = Number.NEGATIVE_INFINITY;
  /** The waiting line: ranks, front and sweeps in O(log N) (line-index.ts). */
  const waiting = new LineIndex();
  let lastSeq = 0;
  /** Retention's index: every order by a lower bound of its last activity. */
  const activity = new TimeQueue();
  /** The outstanding tickets by deadline, so a lapse looks only at the ones that may be due. */
  const deadlines = new DeadlineIndex();

  function hold(t: TicketRecord): void {
    trackDeadline(t);
    let set = outstandingByServer.get(t.server);
    if (!set) {
      set = new Set();
      outstandingByServer.set(t.server, set);
    }
    set.add(t.id);
  }

  function trackDeadline(t: TicketRecord): void {
    const deadline = deadlineOf(t);
    if (deadline !== undefined) deadlines.track(t.id, deadline);
  }

  function release(t: TicketRecord): void {
    deadlines.forget(t.id);
    const set = outstandingByServer.get(t.server);
    if (!set) return;
    set.delete(t.id);
    if (set.size === 0) outstandingByServer.delete(t.server);
  }

  function findTicket(ticketId: string): { order: OrderRecord; index: number } | undefined {
    const orderId = orderOfTicket.get(ticketId);
    const order = orderId === undefined ? undefined : orders.get(orderId);
    if (!order) return undefined;
    const index = order.tickets.findIndex((t) => t.id === ticketId);
    return index < 0 ? undefined : { order, index };
  }

  function pruneIdempotency(now: number): void {
    // Insertion order roughly follows expiry; stopping at the first live key bounds the work.
    for (const [key, entry] of idempotency) {
      if (entry.expiresAt > now) break;
      idempotency.delete(key);
    }
  }

  function rememberEvent(eventId: string, at: number): void {
    seenEvents.set(eventId, at);
    if (at > latestEventAt) latestEventAt = at;
    for (const [id, seenAt] of seenEvents) {
      if (seenEvents.size <= EVENT_ID_MAX && seenAt > latestEventAt - EVENT_ID_RETENTION_MS) break;
      seenEvents.delete(id);
    }
  }

  function endOutstanding(
    order: OrderRecord,
    index: number,
    status: 'failed' | 'lapsed' | 'revoked',
    at: number,
  ): TicketRecord | undefined {
    const t = order.tickets[index];
    if (!t || !isOutstanding(t.status)) return undefined;
    const ended: TicketRecord = { ...t, status, finishedAt: at };
    order.tickets[index] = ended;
    release(ended);
    order.status = orderStatusOf(order.tickets);
    return ended;
  }

  return {
    async createOrder(input: NewOrder, idempotencyTtlMs: number): Promise<CreateOrderResult> {
      pruneIdempotency(input.createdAt);
      if (input.idempotencyKey !== undefined) {
        const known = idempotency.get(input.idempotencyKey);
        const earlier = known && known.expiresAt > input.createdAt ? orders.get(known.orderId) : undefined;
        if (earlier) {
          return { kind: earlier.item === input.item ? 'existing' : 'conflict', order: copyOrder(earlier) };
        }
      }
      if (orders.has(input.id)) throw new Error(`order id ${input.id} already exists`);
      const order = newOrder(input);
      if (input.idempotencyKey !== undefined) {
        idempotency.delete(input.idempotencyKey);
        idempotency.set(input.idempotencyKey, {
          orderId: input.id,
          expiresAt: input.createdAt + idempotencyTtlMs,
        });
      }
      orders.set(order.id, order);
      if (order.purchase) {
        const key = purchaseKey(order.purchase);
        const ids = purchaseOrders.get(key) ?? [];
        ids.push(order.id);
        purchaseOrders.set(key, ids);
      }
      activity.push(order.createdAt, order.id);
      return { kind: 'created', order: copyOrder(order) };
    },

    async getOrder(orderId) {
      const order = orders.get(orderId);
      return order ? copyOrder(order) : undefined;
    },

    async findByIdempotencyKey(key, now) {
      const known = idempotency.get(key);
      const order = known && known.expiresAt > now ? orders.get(known.orderId) : undefined;
      return order ? copyOrder(order) : undefined;
    },

    async reserveTicket(input, limits: ReserveLimits): Promise<ReserveResult> {
      const order = orders.get(input.orderId);
      if (!order) return { kind: 'unknown_order' };
      const onServer = outstandingByServer.get(input.server);
      const verdict = reserveVerdict(order, input.server, onServer?.size ?? 0, limits);
      if (verdict !== 'ok') return { kind: verdict };
      if (orderOfTicket.has(input.id)) throw new Error(`ticket id ${input.id} already exists`);
      const lapsed: TicketRecord[] = [];
      for (let i = 0; i < order.tickets.length; i++) {
        const ended = endOutstanding(order, i, 'lapsed', input.issuedAt);
        if (ended) lapsed.push(copyTicket(ended));
      }
      const ticket = newTicket(input);
      order.tickets.push(ticket);
      order.status = orderStatusOf(order.tickets);
      orderOfTicket.set(ticket.id, order.id);
      hold(ticket);
      return { kind: 'reserved', order: copyOrder(order), ticket: copyTicket(ticket), lapsed };
    },

    async endTicket(ticketId, status, at) {
      const found = findTicket(ticketId);
      if (!found) return undefined;
      const ended = endOutstanding(found.order, found.index, status, at);
      return ended ? copyTicket(ended) : undefined;
    },

    async applyTransferEvent(event): Promise<AppliedEvent> {
      if (seenEvents.has(event.eventId)) return { applied: false, freedSlot: false };
      const found = findTicket(event.ticketId);
      if (!found) return { applied: false, freedSlot: false };
      rememberEvent(event.eventId, event.at);
      const { order, index } = found;
      const step = applyEvent(order.tickets[index]!, event);
      order.tickets[index] = step.ticket;
      if (step.freedSlot) release(step.ticket);
      if (step.retook) hold(step.ticket);
      // A transfer that started changes the deadline from `claimBy` to `expiresAt`.
      else if (!step.freedSlot) trackDeadline(step.ticket);
      order.status = orderStatusOf(order.tickets);
      return {
        applied: true,
        ticket: copyTicket(step.ticket),
        order: copyOrder(order),
        freedSlot: step.freedSlot,
      };
    },

    async lapseUnclaimed(now) {
      const lapsed: TicketRecord[] = [];
      for (const id of deadlines.due(now)) {
        const found = findTicket(id);
        const t = found?.order.tickets[found.index];
        if (!found || !t || !isOutstanding(t.status)) continue;
        if (!pastDeadline(t, now)) {
          trackDeadline(t);
          continue;
        }
        const ended = endOutstanding(found.order, found.index, 'lapsed', now);
        if (ended) lapsed.push(copyTicket(ended));
      }
      return lapsed;
    },

    async outstanding() {
      const out = new Map<string, Set<string>>();
      for (const [server, ids] of outstandingByServer) out.set(server, new Set(ids));
      return out;
    },

    async ticketsOfOrder(orderId) {
      return orders.get(orderId)?.tickets.map(copyTicket) ?? [];
    },

    async joinLine({ token, now, firstEstimateSeconds, dueAt }, maxLength) {
      // A token already in line keeps its place: joining twice must not push it back or duplicate it.
      const present = waiting.find(token);
      if (present) return { kind: 'joined', ...present };
      if (waiting.size >= maxLength) return { kind: 'full', length: waiting.size };
      const entry: LineEntry = {
        token,
        seq: ++lastSeq,
        joinedAt: now,
        lastSeenAt: now,
        firstEstimateSeconds,
        ...(dueAt !== undefined ? { dueAt } : {}),
      };
      const position = waiting.add(entry);
      return { kind: 'joined', entry: { ...entry }, position };
    },

    async touchLine(token, now, dueAt) {
      return waiting.touch(token, now, dueAt);
    },

    async findInLine(token) {
      return waiting.find(token);
    },

    async setHeld(token, heldSince) {
      waiting.setHeld(token, heldSince);
    },

    async leaveLine(token) {
      return waiting.remove(token);
    },

    async lineFront(limit) {
      return waiting.front(limit);
    },

    async lineLength() {
      return waiting.size;
    },

    async sweepLine(seenBefore, limit) {
      const gone = waiting.stale(seenBefore, limit);
      for (const e of gone) waiting.remove(e.token);
      return gone;
    },

    async ordersOfPurchase(p) {
      return [...(purchaseOrders.get(purchaseKey(p)) ?? [])];
    },

    async revokePurchase(p, at) {
      if (!revokedPurchases.has(purchaseKey(p))) revokedPurchases.set(purchaseKey(p), at);
    },

    async isPurchaseRevoked(p) {
      return revokedPurchases.has(purchaseKey(p));
    },

    async purgeInactive(now, retentionMs, limit) {
      let purged = 0;
      let examined = 0;
      while (examined < limit) {
        const next = activity.popAtOrBefore(now - retentionMs);
        if (!next) break;
        examined++;
        const order = orders.get(next.id);
        if (!order) continue;
        const verdict = purgeVerdict(order, now, retentionMs);
        if (!verdict.purge) {
          activity.push(verdict.activeAt, order.id);
          continue;
        }
        orders.delete(order.id);
        if (order.purchase) {
          const key = purchaseKey(order.purchase);
          const ids = purchaseOrders.get(key)?.filter((id) => id !== order.id) ?? [];
          if (ids.length > 0) purchaseOrders.set(key, ids);
          else purchaseOrders.delete(key);
        }
        for (const t of order.tickets) orderOfTicket.delete(t.id);
        const key = order.idempotencyKey;
        if (key !== undefined && idempotency.get(key)?.orderId === order.id) idempotency.delete(key);
        purged++;
      }
      return { purged, more: examined === limit };
    },

    async close() {},
  };
}
