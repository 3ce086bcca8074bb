/**
 * The order desk: one order's way through the reception (the seed's FIG. 6A and FIG. 12A,
 * Sa32–Sa36 and Sa52–Sa56). The acceptor hands it a validated request; it checks the item is
 * known, consults the waiting line, asks the allocator for a ranking, reserves a slot with the
 * issuer, has the notice acknowledged by the dispatcher, and either returns the ticket or puts
 * the client in line with an estimate. It never answers a ticket before the order and the ticket
 * are in the store, and never before the notice is acknowledged under `strict`.
 */
import type { Config } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import { buildGrantGate } from '../grants/gate.js';
import { grantOrderKey } from '../grants/orders.js';
import { checkItemPath } from '../items/item-path.js';
import type { Revocation } from '../protocol/internal.js';
import type { OrderRecord, Purchase, Store, TicketRecord } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { type Allocation, allocate } from './allocator.js';
import { clientKeyOf } from './client-key.js';
import { ClientShares } from './client-limits.js';
import { FIRST_HOLD_WITHIN_MS, HeldOpen, spreadHold } from './held-open.js';
import type { LineDecision } from './line-rules.js';
import type { LoadMonitor } from './load-monitor.js';
import type { Mailer } from './mailer.js';
import type { ReceptionMetrics } from './metrics.js';
import type { NoticeDispatcher } from './notice-dispatcher.js';
import type { QueueTokens } from './queue-token.js';
import { RateLimiter } from './rate-limiter.js';
import type { SlotLedger } from './slot-ledger.js';
import type { TicketIssuer } from './ticket-issuer.js';
import type { WaitingLine, WaitQuote } from './waiting-line.js';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface OrderRequest {
  item: string;
  clientAddress: string;
  email?: string | undefined;
  queueToken?: string | undefined;
  idempotencyKey?: string | undefined;
  /** A purchase grant (CONTRACT §7), as sent; checked before the line. */
  grant?: string | undefined;
  /**
   * `Prefer: wait=N` (CONTRACT §3), ms: a retry of a client in line is held open this long and
   * answered as soon as it is admitted. Ignored for newcomers (they need their token first).
   */
  preferWaitMs?: number | undefined;
  /** Aborted when the client goes away while its request is held open. */
  signal?: AbortSignal | undefined;
}

export type OrderOutcome =
  /** `201`: a new ticket, for a new order or (a fresh ticket) an existing one. */
  | { kind: 'ticketed'; order: OrderRecord; ticket: TicketRecord }
  /** `200`: the same Idempotency-Key again; the order as it stands. */
  | { kind: 'existing'; order: OrderRecord; ticket: TicketRecord | undefined }
  | ({
      kind: 'busy';
      queueToken: string | null;
      /** The wait that was held open (`Preference-Applied`), ms. */
      heldMs?: number;
      /** The client's place (`seq`) when it is in line; orders held-open requests. */
      lineSeq?: number;
      /** When the client joined the line, when it is in line (its first hold is spread wider). */
      lineJoinedAt?: number;
    } & WaitQuote)
  | { kind: 'error'; code: ErrorCode; message?: string; retryAfterSeconds?: number };

export interface RevokeOutcome {
  orderId: string;
  revokedTickets: number;
  notified: string[];
  pending: string[];
}

export interface PurchaseRevokeOutcome {
  iss: string;
  sub: string;
  orders: string[];
  revokedTickets: number;
  notified: string[];
  pending: string[];
}

export interface OrderDesk {
  placeOrder(req: OrderRequest): Promise<OrderOutcome>;
  /** Why an order for this item would be refused at once (unknown item, not ready), if it would. */
  checkItem(item: string): ErrorCode | undefined;
  /**
   * A fresh ticket for an admitted order (CONTRACT §3). Its order was admitted once, so it comes
   * before the line; with `Prefer: wait` a busy answer is held open like a waiter's retry.
   */
  freshTicket(
    orderId: string,
    clientAddress: string,
    hold?: { preferWaitMs?: number | undefined; signal?: AbortSignal | undefined },
  ): Promise<OrderOutcome>;
  getOrder(orderId: string): Promise<OrderRecord | undefined>;
  queueStatus(token: string): Promise<WaitQuote | undefined>;
  revokeOrder(orderId: string): Promise<RevokeOutcome | undefined>;
  /** A refund (CONTRACT §7): refuses the purchase's grants from now on and revokes its orders. */
  revokePurchase(purchase: Purchase): Promise<PurchaseRevokeOutcome>;
  /** The latest allocation explanation per item (dashboard, debugging). */
  lastAllocation(): { item: string; at: number; allocation: Allocation } | undefined;
  /** Orders being worked on now; shutdown waits for them. */
  inProgress(): number;
  /** Requests held open with `Prefer: wait`. */
  heldOpen(): number;
  /** A slot may have freed (or a hold started): held-open waiters try again. */
  wake(): void;
  /** Answers every held-open request now (shutdown). */
  releaseHeld(): Promise<void>;
}

/** Held-open requests per reception process; past this a retry is answered at once. */
export const MAX_HELD_OPEN = 20_000;
const HELD_TICK_MS = 250;

/** Ticket-link mails per recipient: a burst of 5, then one every 10 minutes. */
export const MAIL_RULE = { perSecond: 1 / 600, burst: 5 };

/** How many servers one order tries before it is answered busy (each failed try is logged). */
const MAX_TRIES = 4;

export function buildOrderDesk(deps: {
  config: Config;
  store: Store;
  monitor: LoadMonitor;
  ledger: SlotLedger;
  issuer: TicketIssuer;
  dispatcher: NoticeDispatcher;
  line: WaitingLine;
  tokens: QueueTokens;
  mailer: Mailer;
  metrics: ReceptionMetrics;
  clock: Clock;
  logger: Logger;
  /** Uniform in [0, 1): where in its wait a held request ends (`spreadHold`). */
  random: () => number;
}): OrderDesk {
  const { config, store, monitor, ledger, issuer, dispatcher, line, tokens, mailer, metrics, clock, logger } =
    deps;
  const rc = config.reception;
  const strict = rc.tickets.policy === 'strict';
  const servers = new Map(config.contentServers.map((s) => [s.id, s]));
  let last: { item: string; at: number; allocation: Allocation } | undefined;
  let active = 0;
  const grants = buildGrantGate({
    settings: rc.grants,
    clockSkewSeconds: rc.tickets.clockSkewSeconds,
    now: () => clock.now(),
    isRevoked: (p) => store.isPurchaseRevoked(p),
    logger,
  });

  /**
   * One order per grant and item (CONTRACT §7): the grant's n-th order for the item is found by a
   * derived idempotency key, so a second click (or a browser and `rushgate get`) meets the same
   * order; a fulfilled one moves on to the next, up to `max`.
   */
  async function grantedOrder(
    item: string,
    req: OrderRequest & { clientKey: string },
    claims: { iss: string; sub: string; max: number; email?: string | undefined },
    now: number,
  ): Promise<{ order: OrderRecord; live: TicketRecord | undefined } | { code: ErrorCode }> {
    for (let n = 0; n < claims.max; n++) {
      const created = await store.createOrder(
        newOrder(
          issuer.newOrderId(),
          item,
          {
            ...req,
            email: req.email ?? claims.email,
            idempotencyKey: grantOrderKey(claims, item, n),
            purchase: { iss: claims.iss, sub: claims.sub },
          },
          now,
        ),
        IDEMPOTENCY_TTL_MS,
      );
      const order = created.order;
      if (created.kind === 'created') return { order, live: undefined };
      if (order.status === 'fulfilled') continue;
      if (order.tickets.some((t) => t.status === 'revoked')) return { code: 'bad_grant' };
      const live = order.tickets.findLast(
        (t) => (t.status === 'issued' || t.status === 'downloading') && t.expiresAt > now,
      );
      return { order, live };
    }
    return { code: 'grant_used' };
  }

  const shares = new ClientShares((id, server) => ledger.outstandingIds(server).has(id));
  ledger.onTicketGone((id) => shares.ticketEnded(id));
  const recipients = new RateLimiter(MAIL_RULE, 100_000);
  const limitRetry = Math.min(rc.queue.maxRetryAfterSeconds, rc.tickets.claimSeconds);
  const clientLimit = (what: string): OrderOutcome => ({
    kind: 'error',
    code: 'client_limit',
    message: `This client already holds ${what}.`,
    retryAfterSeconds: limitRetry,
  });
  const ticketsFull = (key: string) => shares.liveTickets(key) >= rc.limits.ticketsPerClient;

  /**
   * Tries the ranked servers in turn: reserve (the store refuses a server another reception just
   * filled), then the notice. A failed notice ends the ticket `failed`, which frees its slot, and
   * counts against that server's health at once.
   */
  async function ticketOn(
    order: OrderRecord,
    ranked: readonly string[],
    clientAddress: string,
    reserved?: () => void,
  ): Promise<
    { ticket: TicketRecord; order: OrderRecord } | { code: ErrorCode; message?: string } | undefined
  > {
    for (const serverId of ranked.slice(0, MAX_TRIES)) {
      const server = servers.get(serverId);
      const state = monitor.server(serverId);
      if (!server || !state) continue;
      const now = clock.now();
      const { result, notice } = await issuer.reserve({
        orderId: order.id,
        item: order.item,
        clientAddress,
        server,
        capacity: monitor.capacityOf(serverId),
        untracked: state.untracked,
        now,
      });
      if (result.kind === 'full') {
        logger.debug({ server: serverId, order: order.id }, 'store found the server full; trying the next');
        continue;
      }
      if (result.kind === 'ticket_limit') return { code: 'ticket_limit_reached' };
      if (result.kind === 'unknown_order') return { code: 'unknown_order' };
      // The store lapsed the order's earlier outstanding tickets in the same step.
      ledger.apply({ kind: 'reserved', ticket: result.ticket, lapsed: result.lapsed, at: now });
      reserved?.();
      if (strict) {
        try {
          await dispatcher.notify(serverId, notice);
        } catch (err) {
          const reason = (err as Error).message;
          metrics.noticeFailures.inc({ server: serverId });
          logger.warn(
            { server: serverId, order: order.id, reason },
            'ticket notice failed; trying the next server',
          );
          monitor.noticeFailed(serverId, reason);
          const failed = await store.endTicket(result.ticket.id, 'failed', clock.now());
          ledger.apply({
            kind: 'ended',
            tickets: failed ? [failed] : [],
            at: clock.now(),
            completion: false,
          });
          continue;
        }
      }
      metrics.ticketsIssued.inc({ server: serverId });
      return { ticket: result.ticket, order: result.order };
    }
    return undefined;
  }

  function sendMail(order: OrderRecord, ticket: TicketRecord): void {
    if (!order.email || !rc.mail) return;
    // However many clients name it, one address gets a bounded number of mails (no mail bomb).
    if (!recipients.take(order.email.toLowerCase(), clock.now()).allowed) {
      logger.info({ order: order.id }, 'mail limit reached for this recipient; ticket link not mailed');
      return;
    }
    void mailer.sendTicketLink({
      to: order.email,
      item: order.item,
      url: ticket.url,
      orderId: order.id,
      expiresAt: new Date(ticket.expiresAt),
    });
  }

  /** Asks to be held open (`Prefer: wait`); held when it is busy and in line with its token. */
  const wantsHold = (req: OrderRequest): req is OrderRequest & { preferWaitMs: number } =>
    req.preferWaitMs !== undefined && req.preferWaitMs > 0;

  function probeBusy(token: string, d: LineDecision): OrderOutcome {
    return {
      kind: 'busy',
      queueToken: token,
      position: d.position,
      estimatedWaitSeconds: 0,
      retryAfterSeconds: 1,
    };
  }

  /** `dueKnown`: the requester's due time was written with its visit (it is to be held open). */
  async function busy(
    item: string,
    decision: LineDecision | undefined,
    inLine: string | undefined,
    now: number,
    clientKey: string,
    dueKnown = false,
  ): Promise<OrderOutcome> {
    const d = decision ?? outsideLine(line.length() + 1);
    if (!rc.queue.enabled) return { kind: 'busy', queueToken: null, ...line.quote(item, d, now) };
    if (inLine !== undefined) {
      const quote = line.quote(item, d, now);
      if (!dueKnown) await line.expectBack(inLine, now, now + quote.retryAfterSeconds * 1000);
      return {
        kind: 'busy',
        queueToken: inLine,
        ...(d.requesterSeq !== undefined ? { lineSeq: d.requesterSeq } : {}),
        ...(d.requesterJoinedAt !== undefined ? { lineJoinedAt: d.requesterJoinedAt } : {}),
        ...quote,
      };
    }
    if (shares.placesAtLeast(clientKey, rc.limits.placesPerClient, line.holds))
      return clientLimit(`${rc.limits.placesPerClient} places in line`);
    const joined = await line.join(item, d, now);
    if (joined.kind === 'full') {
      return {
        kind: 'error',
        code: 'line_full',
        retryAfterSeconds: rc.queue.maxRetryAfterSeconds,
      };
    }
    shares.placeGiven(clientKey, joined.token);
    return { kind: 'busy', queueToken: joined.token, ...joined.quote };
  }

  const unknownItem = (item: string): OrderOutcome | undefined => {
    if (!monitor.anyReportArrived()) return { kind: 'error', code: 'unavailable' };
    if (monitor.upHolders(item).length === 0) {
      return { kind: 'error', code: 'unknown_item' };
    }
    return undefined;
  };

  /**
   * `arrival`: a request as it came in. `probe`: a held-open request trying again after a wake;
   * its busy answer is thrown away (it stays held), so no wait is estimated for it: a wake costs
   * a line decision, not an estimate. `last`: a held-open request's try when its wait is over;
   * its busy answer goes out.
   */
  async function place(
    req: OrderRequest,
    attempt: 'arrival' | 'probe' | 'last' = 'arrival',
    reserved?: () => void,
  ): Promise<OrderOutcome> {
    const probe = attempt === 'probe';
    const checked = checkItemPath(req.item);
    if (!checked.ok) return { kind: 'error', code: 'invalid_item_path', message: `item: ${checked.reason}` };
    const item = checked.path;
    const refused = unknownItem(item);
    if (refused) return refused;
    const now = clock.now();
    const clientKey = clientKeyOf(req.clientAddress, rc.tickets.bindPrefix);

    let order: OrderRecord | undefined;
    const gate = await grants.check(item, req.grant);
    if (gate.kind === 'refused') {
      logger.debug({ item, code: gate.code, reason: gate.reason }, 'grant refused');
      return { kind: 'error', code: gate.code };
    }
    if (gate.kind === 'granted') {
      const got = await grantedOrder(item, { ...req, clientKey }, gate.claims, now);
      if ('code' in got) return { kind: 'error', code: got.code };
      if (got.live) return { kind: 'existing', order: got.order, ticket: got.live };
      order = got.order;
    } else if (req.idempotencyKey !== undefined && !probe) {
      // (A held request's tries skip this: its key was read when it arrived, and should the
      // same key have been used since, the order's creation below finds that out.)
      // Read, not written: the order is created only when a ticket is to be reserved for it, so
      // the retries of a waiter (a key each) cost no write until it is admitted.
      const key = newOrder('', item, { ...req, clientKey }, now).idempotencyKey as string;
      const earlier = await store.findByIdempotencyKey(key, now);
      if (earlier) {
        const known = knownOrder(earlier, item);
        if (known) return known;
        order = earlier;
      }
    }

    // A token counts only for the item it was given for; otherwise the client is a newcomer.
    const token =
      req.queueToken !== undefined && tokens.read(req.queueToken)?.item === item ? req.queueToken : undefined;
    let decision: LineDecision | undefined;
    let inLine: string | undefined;
    let heldUntil: number | undefined;
    if (rc.queue.enabled) {
      // A request that will be held open if busy is due back when its hold ends: written with
      // the visit. Any other busy answer writes its Retry-After (see `busy`).
      heldUntil = attempt === 'arrival' && wantsHold(req) ? now + req.preferWaitMs : undefined;
      decision = await line.decide({ token, item }, now, {
        touch: !probe,
        ...(heldUntil !== undefined ? { dueAt: heldUntil } : {}),
      });
      inLine = decision.requesterInLine ? token : undefined;
      if (!decision.admitted) {
        if (probe && inLine !== undefined) return probeBusy(inLine, decision);
        return busy(item, decision, inLine, now, clientKey, heldUntil !== undefined || probe);
      }
    }

    const allocation = allocate({
      servers: monitor.snapshots(item, decision?.heldAhead ?? new Map()),
      tieTolerance: rc.allocation.tieTolerance,
    });
    last = { item, at: now, allocation };
    if (allocation.ranked.length === 0)
      return busy(item, decision, inLine, now, clientKey, heldUntil !== undefined || probe);
    if (ticketsFull(clientKey)) return clientLimit(`${rc.limits.ticketsPerClient} live tickets`);

    if (!order) {
      const created = await store.createOrder(
        newOrder(issuer.newOrderId(), item, { ...req, clientKey }, now),
        IDEMPOTENCY_TTL_MS,
      );
      // The same key may have been used meanwhile (a retry racing its lost answer).
      const known = created.kind === 'created' ? undefined : knownOrder(created.order, item);
      if (known) return known;
      order = created.order;
    }
    const waiter = inLine;
    const got = await ticketOn(order, allocation.ranked, req.clientAddress, () => {
      if (waiter !== undefined) line.admitting(waiter, clock.now());
      reserved?.();
    }).catch((err: unknown) => {
      if (waiter !== undefined) line.stillWaiting(waiter);
      throw err;
    });
    if (waiter !== undefined && (got === undefined || 'code' in got)) line.stillWaiting(waiter);
    if (got === undefined)
      return busy(item, decision, inLine, now, clientKey, heldUntil !== undefined || probe);
    if ('code' in got)
      return { kind: 'error', code: got.code, ...(got.message ? { message: got.message } : {}) };
    shares.ticketGiven(clientKey, got.ticket.id, got.ticket.server);
    if (inLine !== undefined) {
      await line.admitted(inLine, clock.now());
      metrics.admissions.inc();
    }
    sendMail(got.order, got.ticket);
    return { kind: 'ticketed', order: got.order, ticket: got.ticket };
  }

  const held = new HeldOpen({
    max: MAX_HELD_OPEN,
    now: () => clock.now(),
    tickMs: HELD_TICK_MS,
    freeSlots: () => {
      let n = 0;
      for (const free of monitor.freeSlots().values()) n += free;
      return n;
    },
  });

  /**
   * Holds one busy request open (`held-open.ts`): each wake's try (`tryOnce`) answers it once it is
   * no longer busy, and when `waitMs` runs out the last try's answer goes out, busy with the wait
   * it held. `undefined` at the cap (the caller answers at once).
   */
  function holdUntilAnswered(spec: {
    seq: number;
    group: string;
    waitMs: number;
    /** When the waiter joined the line, if known: a hold soon after is its first. */
    joinedAt?: number | undefined;
    signal: AbortSignal | undefined;
    first: Extract<OrderOutcome, { kind: 'busy' }>;
    tryOnce(last: boolean, reserved?: () => void): Promise<OrderOutcome>;
  }): Promise<OrderOutcome> | undefined {
    const { first } = spec;
    // Due back (written at arrival) at the end of the whole wait; answered a little before it.
    const firstHold = spec.joinedAt !== undefined && clock.now() - spec.joinedAt < FIRST_HOLD_WITHIN_MS;
    const waitMs = spreadHold(spec.waitMs, deps.random(), firstHold);
    const again = async (last: boolean, reserved?: () => void): Promise<OrderOutcome> => {
      try {
        return await spec.tryOnce(last, reserved);
      } catch (err) {
        // An outage met while held is an answer (store_unavailable), not a hung request.
        const code = (err as { code?: unknown }).code;
        if (code === 'store_unavailable')
          return { kind: 'error', code: 'store_unavailable', retryAfterSeconds: 1 };
        throw err;
      }
    };
    return held.hold<OrderOutcome>({
      seq: spec.seq,
      group: spec.group,
      deadline: clock.now() + waitMs,
      signal: spec.signal,
      attempt: async (reserved) => {
        const o = await again(false, reserved).catch((): OrderOutcome | undefined => undefined);
        return o === undefined || o.kind === 'busy' ? undefined : o;
      },
      expire: async () => {
        const o = await again(true).catch(() => first);
        return o.kind === 'busy' ? { ...o, heldMs: waitMs } : o;
      },
    });
  }

  /**
   * A retry with `Prefer: wait` from a client in line that is still busy: held open until it is
   * admitted or its wait runs out (then the busy answer as it stands, with the wait it held).
   */
  async function holdOpen(
    req: OrderRequest,
    first: Extract<OrderOutcome, { kind: 'busy' }>,
    waitMs: number,
  ): Promise<OrderOutcome> {
    const pending = holdUntilAnswered({
      seq: first.lineSeq ?? Number.MAX_SAFE_INTEGER,
      group: req.item,
      waitMs,
      joinedAt: first.lineJoinedAt,
      signal: req.signal,
      first,
      tryOnce: (last, reserved) => place(req, last ? 'last' : 'probe', reserved),
    });
    // At the cap: answered now, as a client that did not ask to wait (and due back as one).
    if (pending === undefined) {
      if (first.queueToken !== null) {
        const now = clock.now();
        await line.expectBack(first.queueToken, now, now + first.retryAfterSeconds * 1000);
      }
      return first;
    }
    return pending;
  }

  /** Fresh-ticket requests held open now: the place a busy one is told it has. */
  let freshHeld = 0;
  /** Held fresh tickets go before every waiter (seqs are positive), first come first served. */
  let freshSeq = Number.MIN_SAFE_INTEGER;

  /**
   * One try for a fresh ticket; `front` in the answer says whether it comes before the line.
   *
   * An order whose latest ticket ended unfulfilled (unused, cut off, its server lost) was
   * admitted once and never got its item, so it is not queued again behind everyone who came
   * after it: it takes any free slot, one held for a waiter included (that waiter, still first in
   * line, gets the next). Queued as a newcomer it waited for the whole line to drain: in a
   * 10,000-buyer rehearsal on a loaded machine, buyers slower than `claimSecondsWhileWaiting` to
   * start were served last, with most of the FIFO inversions. A hoarder gains little by it: only
   * an order's first unused ticket earns it that place (a slow client is slow once; one that
   * lets ticket after ticket lapse honours the line from its second), and each still lapses.
   * After a fulfilled download a fresh ticket is a second download, no line bypass: it honours the
   * holds like a newcomer.
   */
  async function fresh(
    orderId: string,
    clientAddress: string,
    reserved?: () => void,
  ): Promise<{ outcome: OrderOutcome; front: boolean; item?: string }> {
    const refuse = (outcome: OrderOutcome) => ({ outcome, front: false });
    const order = await store.getOrder(orderId);
    if (!order) return refuse({ kind: 'error', code: 'unknown_order' });
    if (order.tickets.some((t) => t.status === 'revoked')) {
      return refuse({ kind: 'error', code: 'order_closed', message: 'This order was revoked.' });
    }
    // A refunded purchase's order may have had no ticket to revoke yet (CONTRACT §7).
    if (order.purchase && (await store.isPurchaseRevoked(order.purchase))) {
      return refuse({ kind: 'error', code: 'order_closed', message: 'This purchase was refunded.' });
    }
    if (order.tickets.length >= rc.tickets.maxTicketsPerOrder) {
      return refuse({ kind: 'error', code: 'ticket_limit_reached' });
    }
    const unknown = unknownItem(order.item);
    if (unknown) return refuse(unknown);
    const now = clock.now();
    const latest = order.tickets.at(-1);
    // One live ticket per order (CONTRACT §3): while the latest is issued or downloading,
    // unexpired, on a server that is up, a fresh one would be a second slot for one order.
    if (
      latest &&
      (latest.status === 'issued' || latest.status === 'downloading') &&
      latest.expiresAt > now &&
      monitor.server(latest.server)?.health.status === 'up'
    ) {
      const untilLapse = Math.ceil((latest.expiresAt - now) / 1000);
      return refuse({
        kind: 'error',
        code: 'ticket_live',
        retryAfterSeconds: Math.max(1, Math.min(rc.queue.maxRetryAfterSeconds, untilLapse)),
      });
    }
    const unused = order.tickets.filter((t) => t.status === 'lapsed' && t.startedAt === undefined).length;
    const front = latest?.status !== 'fulfilled' && unused <= 1;
    // Behind the line, slots held for waiters stay theirs (taken out of every server's free slots).
    const decision = !front && rc.queue.enabled ? await line.decide({ item: order.item }, now) : undefined;
    // Its old ticket's slot is given up in the same step as the new one is reserved.
    const allocation = allocate({
      servers: monitor.snapshots(order.item, decision?.heldAhead ?? new Map()),
      tieTolerance: rc.allocation.tieTolerance,
      ...(latest ? { avoid: new Set([latest.server]) } : {}),
    });
    last = { item: order.item, at: now, allocation };
    const got =
      allocation.ranked.length > 0
        ? await ticketOn(order, allocation.ranked, clientAddress, reserved)
        : undefined;
    if (got === undefined) {
      const position = front ? freshHeld + 1 : line.length() + 1;
      return {
        outcome: { kind: 'busy', queueToken: null, ...line.quote(order.item, outsideLine(position), now) },
        front,
        item: order.item,
      };
    }
    if ('code' in got)
      return refuse({ kind: 'error', code: got.code, ...(got.message ? { message: got.message } : {}) });
    return { outcome: { kind: 'ticketed', order: got.order, ticket: got.ticket }, front };
  }

  /** A busy fresh-ticket request with `Prefer: wait`: held, ahead of the line's waiters. */
  async function holdFresh(
    orderId: string,
    item: string,
    clientAddress: string,
    first: Extract<OrderOutcome, { kind: 'busy' }>,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<OrderOutcome> {
    const pending = holdUntilAnswered({
      seq: freshSeq++,
      // Not the item's line group: a fresh ticket that stays busy must not stop its waiters' tries.
      group: `\0fresh ${item}`,
      waitMs,
      signal,
      first,
      tryOnce: async (_last, reserved) => (await fresh(orderId, clientAddress, reserved)).outcome,
    });
    if (pending === undefined) return first;
    freshHeld += 1;
    try {
      return await pending;
    } finally {
      freshHeld -= 1;
    }
  }

  return {
    async placeOrder(req) {
      active += 1;
      try {
        const outcome = await place(req);
        if (
          outcome.kind === 'busy' &&
          wantsHold(req) &&
          outcome.queueToken !== null &&
          outcome.queueToken === req.queueToken
        ) {
          return await holdOpen(req, outcome, req.preferWaitMs);
        }
        return outcome;
      } finally {
        active -= 1;
      }
    },

    heldOpen: () => held.count(),
    wake: () => held.wake(),
    releaseHeld: () => held.close(),

    async freshTicket(orderId, clientAddress, hold) {
      active += 1;
      try {
        const { outcome, front, item } = await fresh(orderId, clientAddress);
        const waitMs = hold?.preferWaitMs;
        // Behind the line there is no place to hold (no token): answered at once, as a newcomer.
        if (outcome.kind !== 'busy' || !front || item === undefined || waitMs === undefined || waitMs <= 0)
          return outcome;
        return await holdFresh(orderId, item, clientAddress, outcome, waitMs, hold?.signal);
      } finally {
        active -= 1;
      }
    },

    getOrder: (orderId) => store.getOrder(orderId),

    checkItem(item) {
      if (!monitor.anyReportArrived()) return 'unavailable';
      return monitor.upHolders(item).length === 0 ? 'unknown_item' : undefined;
    },

    async queueStatus(token) {
      const facts = tokens.read(token);
      if (!facts) return undefined;
      return line.status(token, facts.item, clock.now());
    },

    async revokeOrder(orderId) {
      const order = await store.getOrder(orderId);
      if (!order) return undefined;
      const now = clock.now();
      let revokedTickets = 0;
      let until = Math.ceil(now / 1000);
      for (const t of order.tickets) {
        until = Math.max(until, Math.ceil(t.expiresAt / 1000));
        if (t.expiresAt > now && t.status !== 'revoked') revokedTickets += 1;
        const ended = await store.endTicket(t.id, 'revoked', now);
        ledger.apply({ kind: 'ended', tickets: ended ? [ended] : [], at: now, completion: false });
      }
      const revocation: Revocation = {
        kind: 'order',
        orderId,
        until: until + rc.tickets.clockSkewSeconds,
      };
      const { notified, pending } = await dispatcher.revoke([revocation]);
      logger.info({ order: orderId, revokedTickets, notified, pending }, 'order revoked');
      return { orderId, revokedTickets, notified, pending };
    },

    async revokePurchase(purchase) {
      // Recorded first: from this moment no new order is made with the purchase's grants.
      await store.revokePurchase(purchase, clock.now());
      const orders = await store.ordersOfPurchase(purchase);
      const out: PurchaseRevokeOutcome = {
        ...purchase,
        orders,
        revokedTickets: 0,
        notified: [],
        pending: [],
      };
      for (const orderId of orders) {
        const r = await this.revokeOrder(orderId);
        if (!r) continue;
        out.revokedTickets += r.revokedTickets;
        for (const s of r.notified) if (!out.notified.includes(s)) out.notified.push(s);
        for (const s of r.pending) if (!out.pending.includes(s)) out.pending.push(s);
      }
      logger.info({ iss: purchase.iss, orders: orders.length }, 'purchase revoked');
      return out;
    },

    lastAllocation: () => last,
    inProgress: () => active,
  };
}

/** A decision for a client the line did not decide about (queue off, or a fresh ticket). */
function outsideLine(position: number): LineDecision {
  return {
    admitted: false,
    requesterInLine: false,
    abandoned: [],
    holdsToStart: [],
    holdsToClear: [],
    heldAhead: new Map(),
    position,
    freeForItem: 0,
    requesterHeld: false,
    leftOver: 0,
  };
}

/** What an Idempotency-Key's earlier order answers: 409 for another item, or the order as it stands once it has a ticket. */
function knownOrder(earlier: OrderRecord, item: string): OrderOutcome | undefined {
  if (earlier.item !== item) return { kind: 'error', code: 'idempotency_conflict' };
  if (earlier.tickets.length > 0) return { kind: 'existing', order: earlier, ticket: earlier.tickets.at(-1) };
  return undefined;
}

function newOrder(
  id: string,
  item: string,
  req: OrderRequest & { clientKey: string; purchase?: Purchase },
  now: number,
) {
  return {
    id,
    item,
    clientAddress: req.clientAddress,
    createdAt: now,
    ...(req.email !== undefined ? { email: req.email } : {}),
    // Scoped by the client's prefix: a key reused (or guessed) from another address is another
    // key, so it never answers someone else's order and ticket. Keys are visible ASCII, so the
    // space cannot be forged into either part. A grant's derived key is not scoped: the grant
    // itself proves the buyer, so the same purchase meets the same order from any address.
    ...(req.idempotencyKey !== undefined
      ? {
          idempotencyKey:
            req.purchase !== undefined ? req.idempotencyKey : `${req.clientKey} ${req.idempotencyKey}`,
        }
      : {}),
    ...(req.purchase !== undefined ? { purchase: req.purchase } : {}),
  };
}
