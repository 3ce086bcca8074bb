/**
 * The `sqlite:PATH` store (better-sqlite3): orders, tickets, applied event ids, idempotency keys
 * and the waiting line in one SQLite file, so a reception restarted after a crash carries on
 * where it stopped. better-sqlite3 is synchronous, so each method runs its reads and its writes
 * without yielding to the event loop: one atomic step, as src/store/types.ts asks.
 *
 * Durability: WAL journal with `synchronous = NORMAL`. A commit has been written to the WAL
 * file (the OS page cache) when it returns; only the checkpoint fsyncs. That survives the
 * reception's failure model, SIGKILL or a crash of the process, because the kernel still holds
 * and later writes the pages; it may lose the last commits only if the whole machine loses power.
 * So an order is durable against a process crash before `createOrder` resolves.
 *
 * One reception process owns a sqlite file (several receptions share a `redis://` store
 * instead): the file is opened with an exclusive lock, a second process gets a clear error. That
 * is what makes the in-memory index of hot data safe: outstanding tickets per server (read on
 * every allocation) and the waiting line (an order-statistic index, line-index.ts) are kept in
 * memory, rebuilt from the file at open and changed as each call's statements succeed (see
 * group commit below). Orders are read from the file on demand, except the most recently
 * created or ticketed ones (the order path creates an order and reserves its ticket back to back).
 *
 * Group commit: every call that arrives in one event-loop turn runs in one transaction (BEGIN
 * IMMEDIATE at the turn's first call, COMMIT in a `setImmediate` after the turn's I/O callbacks),
 * each multi-statement call in a SAVEPOINT of its own, so one bad call is undone alone. No call
 * resolves before that COMMIT returned — reads too, since they may have seen the batch's
 * uncommitted rows — so nothing leaves the store that is not in the file: the `201` still
 * follows its order's commit. Under a rush the order path's commits (create, reserve) were a
 * third of its CPU (issue 12); one commit now serves every order of the turn. If the COMMIT fails
 * (disk full), it is rolled back, every call of the batch rejects `store_unavailable`, and the
 * in-memory index is reloaded from the file, because it had already taken the batch's changes
 * (later calls of a batch must see the earlier ones: a slot taken is taken).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RushgateError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { DeadlineIndex } from './deadline-index.js';
import { LineIndex } from './line-index.js';
import {
  applyEvent,
  deadlineOf,
  EVENT_ID_MAX,
  EVENT_ID_RETENTION_MS,
  isOutstanding,
  newOrder,
  newTicket,
  orderStatusOf,
  pastDeadline,
  purgeVerdict,
  reserveVerdict,
} from './rules.js';
import type {
  AppliedEvent,
  CreateOrderResult,
  JoinResult,
  LineEntry,
  NewOrder,
  OrderRecord,
  OrderStatus,
  ReserveResult,
  Store,
  TicketRecord,
  TicketStatus,
} from './types.js';

/** WAL pages between automatic checkpoints (see openDatabase). */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;

/** SQLite's page cache, KiB (see openDatabase). */
const PAGE_CACHE_KIB = 64 * 1024;

/** Orders kept in the recent-order cache (see `recent` in openSqliteStore). */
const RECENT_ORDERS_MAX = 4096;

/** Bumped with every schema change; a migration runs from each older version to the next. */
const SCHEMA_VERSION = 3;

/** `probeWrite`'s row: a NUL can be in no client's Idempotency-Key, so it never meets a real one. */
const PROBE_KEY = '\u0000rushgate:probe';

const SCHEMA_V1 = `
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  item TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  client_address TEXT NOT NULL,
  email TEXT,
  idempotency_key TEXT
) WITHOUT ROWID;
CREATE TABLE tickets (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  order_id TEXT NOT NULL,
  server TEXT NOT NULL,
  url TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  claim_by INTEGER NOT NULL,
  status TEXT NOT NULL,
  delivered INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX tickets_of_order ON tickets (order_id, seq);
CREATE INDEX tickets_outstanding ON tickets (status) WHERE status IN ('issued', 'downloading');
CREATE TABLE idempotency (
  key TEXT PRIMARY KEY,
  order_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_at ON events (at);
CREATE TABLE line (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  token TEXT NOT NULL UNIQUE,
  joined_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  first_estimate REAL NOT NULL,
  held_since INTEGER
);
`;

/**
 * Purchase grants (CONTRACT §7) in tables of their own, created when missing: which orders each
 * purchase made, and which purchases were refunded. Kept apart from the orders table so that a
 * store without grants pays nothing for them.
 */
const SCHEMA_GRANTS = `
CREATE TABLE IF NOT EXISTS purchase_orders (
  order_id TEXT PRIMARY KEY,
  iss TEXT NOT NULL,
  sub TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS purchase_orders_by_purchase ON purchase_orders (iss, sub);
CREATE TABLE IF NOT EXISTS revoked_purchases (
  iss TEXT NOT NULL,
  sub TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (iss, sub)
) WITHOUT ROWID;
`;

/**
 * Retention (v2): `active_at`, a lower bound of the order's last activity, indexed, so the sweep
 * reads only the orders that may be due. It is written at creation and moved forward only by the
 * sweep (rules.ts `purgeVerdict`), never on a reservation or an event: those stay one write.
 */
const SCHEMA_V2 = `
ALTER TABLE orders ADD COLUMN active_at INTEGER NOT NULL DEFAULT 0;
UPDATE orders SET active_at = created_at;
CREATE INDEX orders_activity ON orders (active_at);
`;

/** The line's due times (v3): when each waiter said it would be back (types.ts `LineEntry.dueAt`). */
const SCHEMA_V3 = `
ALTER TABLE line ADD COLUMN due_at INTEGER;
`;

interface OrderRow {
  id: string;
  item: string;
  status: OrderStatus;
  created_at: number;
  client_address: string;
  email: string | null;
  idempotency_key: string | null;
}

interface TicketRow {
  id: string;
  order_id: string;
  server: string;
  url: string;
  issued_at: number;
  not_before: number;
  expires_at: number;
  claim_by: number;
  status: TicketStatus;
  delivered: number;
  started_at: number | null;
  finished_at: number | null;
}

interface LineRow {
  seq: number;
  token: string;
  joined_at: number;
  last_seen_at: number;
  first_estimate: number;
  held_since: number | null;
  due_at: number | null;
}

function ticketOf(r: TicketRow): TicketRecord {
  const t: TicketRecord = {
    id: r.id,
    orderId: r.order_id,
    server: r.server,
    url: r.url,
    issuedAt: r.issued_at,
    notBefore: r.not_before,
    expiresAt: r.expires_at,
    claimBy: r.claim_by,
    status: r.status,
    delivered: r.delivered,
  };
  if (r.started_at !== null) t.startedAt = r.started_at;
  if (r.finished_at !== null) t.finishedAt = r.finished_at;
  return t;
}

/**
 * An order's status is derived from its tickets (rules.ts `orderStatusOf`), so it is computed
 * here rather than read: the `status` column keeps the value the order was inserted with and is
 * not rewritten on every ticket change — that UPDATE dirtied one more page (one more WAL frame,
 * ~15% of a reservation's commit) on each reservation and each transfer event.
 */
function orderOf(r: OrderRow, tickets: TicketRecord[]): OrderRecord {
  const o: OrderRecord = {
    id: r.id,
    item: r.item,
    status: orderStatusOf(tickets),
    createdAt: r.created_at,
    clientAddress: r.client_address,
    tickets,
  };
  if (r.email !== null) o.email = r.email;
  if (r.idempotency_key !== null) o.idempotencyKey = r.idempotency_key;
  return o;
}

function copyOrder(o: OrderRecord): OrderRecord {
  return { ...o, tickets: o.tickets.map((t) => ({ ...t })) };
}

function lineEntryOf(r: LineRow): LineEntry {
  const e: LineEntry = {
    token: r.token,
    seq: r.seq,
    joinedAt: r.joined_at,
    lastSeenAt: r.last_seen_at,
    firstEstimateSeconds: r.first_estimate,
  };
  if (r.held_since !== null) e.heldSince = r.held_since;
  if (r.due_at !== null) e.dueAt = r.due_at;
  return e;
}

/** Opens (creating when needed) the database file and brings its schema up to date. */
function openDatabase(file: string): Database.Database {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Orders hold client addresses, e-mail addresses and ticket URLs: a new file is the owner's
  // alone (0600; SQLite gives its WAL the same mode). An existing file keeps the mode it has.
  if (file !== ':memory:') closeSync(openSync(file, 'a', 0o600));
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 2000');
    // Held from the first write until close: a second reception on the same file fails at open.
    // Set before WAL so that the WAL index lives in this process's memory (no -shm file).
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // A checkpoint copies the WAL back into the database and fsyncs both, in the committing call.
    // At the default (1000 pages, ~150 orders here) that fsync and copy were a third of each
    // order's store time; every 10000 pages (a ~40 MB WAL) the same hot index and table pages
    // are copied once for many more commits. Durability is unchanged: it is the commit's WAL
    // write that makes an order survive a crash, not the checkpoint.
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    // The default page cache (2 MiB, ~500 pages) holds a line of a few thousand; past that a
    // poll's UPDATE read its page back from the OS. 64 MiB holds a 100,000-waiter line (~13 MB of
    // table and index) with the hot orders beside it, and only grows as pages are used; it lasts
    // between transactions because the file is held exclusively. Measured with bench/line.ts,
    // together with the line's updates by rowid: polls at 100,000 waiting went from 0.55 to 0.77
    // of those at 1,000 (21,500 → 35,900/s), joins from 0.78 to 0.97.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`${file} has schema version ${version}, newer than this rushgate (${SCHEMA_VERSION})`);
    }
    db.transaction(() => {
      if (version < 1) db.exec(SCHEMA_V1);
      db.exec(SCHEMA_GRANTS);
      if (version < 2) db.exec(SCHEMA_V2);
      if (version < 3) db.exec(SCHEMA_V3);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(
        `sqlite store ${file} is in use by another process: one reception owns a sqlite file (share a redis:// store instead)`,
      );
    }
    throw err;
  }
  return db;
}

export async function openSqliteStore(opts: { file: string; logger: Logger }): Promise<Store> {
  const db = openDatabase(opts.file);

  const q = {
    order: db.prepare<[string], OrderRow>('SELECT * FROM orders WHERE id = ?'),
    ticketsOf: db.prepare<[string], TicketRow>('SELECT * FROM tickets WHERE order_id = ? ORDER BY seq'),
    ticket: db.prepare<[string], TicketRow>('SELECT * FROM tickets WHERE id = ?'),
    outstanding: db.prepare<[], TicketRow>(
      "SELECT * FROM tickets WHERE status IN ('issued', 'downloading') ORDER BY seq",
    ),
    insertOrder: db.prepare(
      `INSERT INTO orders (id, item, status, created_at, client_address, email, idempotency_key, active_at)
       VALUES (@id, @item, 'waiting', @createdAt, @clientAddress, @email, @idempotencyKey, @createdAt)`,
    ),
    insertPurchaseOrder: db.prepare<[string, string, string]>(
      'INSERT INTO purchase_orders (order_id, iss, sub) VALUES (?, ?, ?)',
    ),
    purchaseOf: db.prepare<[string], { iss: string; sub: string }>(
      'SELECT iss, sub FROM purchase_orders WHERE order_id = ?',
    ),
    ordersOfPurchase: db.prepare<[string, string], { order_id: string }>(
      'SELECT order_id FROM purchase_orders WHERE iss = ? AND sub = ?',
    ),
    revokePurchase: db.prepare<[string, string, number]>(
      'INSERT OR IGNORE INTO revoked_purchases (iss, sub, at) VALUES (?, ?, ?)',
    ),
    purchaseRevoked: db.prepare<[string, string], { at: number }>(
      'SELECT at FROM revoked_purchases WHERE iss = ? AND sub = ?',
    ),
    insertTicket: db.prepare(
      `INSERT INTO tickets (id, order_id, server, url, issued_at, not_before, expires_at, claim_by, status, delivered)
       VALUES (@id, @orderId, @server, @url, @issuedAt, @notBefore, @expiresAt, @claimBy, 'issued', 0)`,
    ),
    updateTicket: db.prepare(
      `UPDATE tickets SET status = @status, delivered = @delivered, started_at = @startedAt,
       finished_at = @finishedAt WHERE id = @id`,
    ),
    idempotency: db.prepare<[string], { order_id: string; expires_at: number }>(
      'SELECT order_id, expires_at FROM idempotency WHERE key = ?',
    ),
    putIdempotency: db.prepare<[string, string, number]>(
      'INSERT OR REPLACE INTO idempotency (key, order_id, expires_at) VALUES (?, ?, ?)',
    ),
    pruneIdempotency: db.prepare<[number]>('DELETE FROM idempotency WHERE expires_at <= ?'),
    eventSeen: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM events WHERE id = ?'),
    insertEvent: db.prepare<[string, number]>('INSERT INTO events (id, at) VALUES (?, ?)'),
    pruneEventsBefore: db.prepare<[number]>('DELETE FROM events WHERE at < ?'),
    pruneOldestEvents: db.prepare<[number]>(
      'DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY at LIMIT ?)',
    ),
    eventStats: db.prepare<[], { n: number; latest: number | null }>(
      'SELECT count(*) AS n, max(at) AS latest FROM events',
    ),
    purgeCandidates: db.prepare<[number, number], { id: string }>(
      'SELECT id FROM orders WHERE active_at <= ? ORDER BY active_at LIMIT ?',
    ),
    setActive: db.prepare<[number, string]>('UPDATE orders SET active_at = ? WHERE id = ?'),
    deleteOrder: db.prepare<[string]>('DELETE FROM orders WHERE id = ?'),
    deletePurchaseOrder: db.prepare<[string]>('DELETE FROM purchase_orders WHERE order_id = ?'),
    deleteTicketsOf: db.prepare<[string]>('DELETE FROM tickets WHERE order_id = ?'),
    deleteIdempotency: db.prepare<[string, string]>('DELETE FROM idempotency WHERE key = ? AND order_id = ?'),
    lineAll: db.prepare<[], LineRow>('SELECT * FROM line ORDER BY seq'),
    lineInsert: db.prepare<[string, number, number, number, number | null], LineRow>(
      `INSERT INTO line (token, joined_at, last_seen_at, first_estimate, due_at) VALUES (?, ?, ?, ?, ?) RETURNING *`,
    ),
    // By seq, the rowid, which the index knows: one B-tree descent instead of two per poll.
    lineTouch: db.prepare<[number, number]>('UPDATE line SET last_seen_at = ? WHERE seq = ?'),
    lineTouchDue: db.prepare<[number, number, number]>(
      'UPDATE line SET last_seen_at = ?, due_at = ? WHERE seq = ?',
    ),
    lineHeld: db.prepare<[number | null, number]>('UPDATE line SET held_since = ? WHERE seq = ?'),
    lineDelete: db.prepare<[number]>('DELETE FROM line WHERE seq = ?'),
  };

  // ── The in-memory index (see the module comment for why it is safe) ───────────────────────
  /** Outstanding tickets: id → what allocation and lapsing need without a query. */
  const outstandingTickets = new Map<
    string,
    { server: string; status: TicketStatus; claimBy: number; expiresAt: number }
  >();
  const byServer = new Map<string, Set<string>>();
  /** The outstanding tickets by deadline, so a lapse looks only at the ones that may be due. */
  let deadlines = new DeadlineIndex();
  /**
   * The line's ranks, front and sweep order, over the `line` table (the durable truth). A rank
   * cannot come from the table itself: `SELECT count(*) FROM line WHERE seq <= ?` walks the
   * index up to the rank, measured on this machine at 28 µs with 1,000 waiting, 228 µs at 10,000
   * and 3.1 ms at 100,000 — a poll at the back of a long line would block the loop for
   * milliseconds. This process owns the file (see above), so an in-process order-statistic
   * index, rebuilt from the table at open, is exact and O(log N). For the same reason the table
   * has no index on `last_seen_at`: the sweep order comes from the index, and one more B-tree
   * to update on every poll's UPDATE would be pure cost.
   */
  let waiting = new LineIndex();

  function hold(t: TicketRecord): void {
    const deadline = deadlineOf(t);
    if (deadline !== undefined) deadlines.track(t.id, deadline);
    outstandingTickets.set(t.id, {
      server: t.server,
      status: t.status,
      claimBy: t.claimBy,
      expiresAt: t.expiresAt,
    });
    let set = byServer.get(t.server);
    if (!set) {
      set = new Set();
      byServer.set(t.server, set);
    }
    set.add(t.id);
  }

  function release(t: TicketRecord): void {
    outstandingTickets.delete(t.id);
    deadlines.forget(t.id);
    const set = byServer.get(t.server);
    if (!set) return;
    set.delete(t.id);
    if (set.size === 0) byServer.delete(t.server);
  }

  /** Brings the index in line with a ticket's new state (after its transaction committed). */
  function track(t: TicketRecord): void {
    if (isOutstanding(t.status)) hold(t);
    else release(t);
  }

  /**
   * Recently created or ticketed orders, as last committed: an order is created and reserved for
   * in the same request, and reading it back (two queries) was a tenth of the reservation's cost.
   * Only the create and reserve paths fill it, once their statements ran; every other write to an
   * order drops its entry first, and a failed batch clears it (`load`), so a hit is always what
   * the file holds or is about to. Entries are private: callers get copies.
   */
  const recent = new Map<string, OrderRecord>();

  let eventCount = 0;
  let latestEventAt = Number.NEGATIVE_INFINITY;
  let createsSincePrune = 0;

  /** (Re)builds everything kept in memory from the file: at open, and after a failed batch. */
  function load(): void {
    outstandingTickets.clear();
    byServer.clear();
    deadlines = new DeadlineIndex();
    recent.clear();
    waiting = new LineIndex();
    for (const row of q.outstanding.iterate()) hold(ticketOf(row));
    for (const row of q.lineAll.iterate()) waiting.add(lineEntryOf(row));
    const stats = q.eventStats.get();
    eventCount = stats?.n ?? 0;
    latestEventAt = stats?.latest ?? Number.NEGATIVE_INFINITY;
  }
  load();
  opts.logger.info(
    { file: opts.file, outstanding: outstandingTickets.size, waiting: waiting.size },
    'store: sqlite',
  );

  // ── Group commit (see the module comment) ─────────────────────────────────────────────────
  interface Pending {
    resolve(value: unknown): void;
    reject(err: unknown): void;
    value: unknown;
  }
  /** The open transaction's answers, given when it commits; undefined when none is open. */
  let batch: Pending[] | undefined;
  /** The index could not be reloaded after a failed batch; the next write tries again first. */
  let stale = false;

  /** The answer of a call: now when no transaction is open, else once it committed. */
  function settle<T>(value: T): Promise<T> {
    const open = batch;
    if (!open) return Promise.resolve(value);
    return new Promise<T>((resolve, reject) => {
      open.push({ resolve: resolve as (v: unknown) => void, reject, value });
    });
  }

  /**
   * Runs one call's writes in the turn's transaction (opened by the turn's first call). A call
   * whose statements fail is undone alone (its SAVEPOINT, or SQLite's statement rollback) and
   * rejects at once; if SQLite rolled back the whole transaction instead (it may on a full disk),
   * the batch fails as a failed COMMIT would.
   */
  function write<T>(fn: () => T): Promise<T> {
    if (stale) {
      load();
      stale = false;
    }
    if (!batch) {
      db.exec('BEGIN IMMEDIATE');
      const opened: Pending[] = [];
      batch = opened;
      setImmediate(() => commit(opened));
    }
    try {
      return settle(fn());
    } catch (err) {
      if (!db.inTransaction && batch) fail(batch, err);
      return Promise.reject(err);
    }
  }

  function commit(b: Pending[]): void {
    if (batch !== b) return;
    try {
      db.exec('COMMIT');
    } catch (err) {
      fail(b, err);
      return;
    }
    batch = undefined;
    for (const p of b) p.resolve(p.value);
  }

  /** The batch did not reach the file: nothing of it happened, and every call of it says so. */
  function fail(b: Pending[], cause: unknown): void {
    batch = undefined;
    if (db.inTransaction) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // A failed ROLLBACK leaves the transaction to SQLite, which ends it on the next statement.
      }
    }
    try {
      load();
    } catch (err) {
      stale = true;
      opts.logger.error({ err }, 'store: reloading the index after a failed commit failed');
    }
    opts.logger.warn({ calls: b.length, err: cause }, 'store: a batch did not commit; its calls failed');
    const err = new RushgateError('store_unavailable', undefined, { cause });
    for (const p of b) p.reject(err);
  }

  function remember(order: OrderRecord): void {
    recent.delete(order.id);
    recent.set(order.id, copyOrder(order));
    if (recent.size > RECENT_ORDERS_MAX) {
      const oldest = recent.keys().next();
      if (!oldest.done) recent.delete(oldest.value);
    }
  }

  function readOrder(orderId: string): OrderRecord | undefined {
    const hit = recent.get(orderId);
    if (hit) return copyOrder(hit);
    const row = q.order.get(orderId);
    if (!row) return undefined;
    const order = orderOf(row, q.ticketsOf.all(orderId).map(ticketOf));
    const purchase = q.purchaseOf.get(orderId);
    if (purchase) order.purchase = { iss: purchase.iss, sub: purchase.sub };
    return order;
  }

  /** Reads an order that is about to change outside the cached paths (see `recent`). */
  function readOrderForChange(orderId: string): OrderRecord | undefined {
    recent.delete(orderId);
    return readOrder(orderId);
  }

  function writeTicket(t: TicketRecord): void {
    q.updateTicket.run({
      id: t.id,
      status: t.status,
      delivered: t.delivered,
      startedAt: t.startedAt ?? null,
      finishedAt: t.finishedAt ?? null,
    });
  }

  /** Ends one outstanding ticket of `order` (in memory and in the open transaction). */
  function endIn(order: OrderRecord, index: number, status: 'failed' | 'lapsed' | 'revoked', at: number) {
    const t = order.tickets[index];
    if (!t || !isOutstanding(t.status)) return undefined;
    const ended: TicketRecord = { ...t, status, finishedAt: at };
    order.tickets[index] = ended;
    writeTicket(ended);
    return ended;
  }

  /** Brings the record's status in line with its tickets (see orderOf: nothing is written). */
  function saveStatus(order: OrderRecord): void {
    order.status = orderStatusOf(order.tickets);
  }

  function rememberEvent(eventId: string, at: number): void {
    q.insertEvent.run(eventId, at);
    eventCount++;
    if (at > latestEventAt) latestEventAt = at;
    // Pruning every event would cost a range scan each time; every 1000th keeps the table bounded.
    if (eventCount % 1000 === 0) {
      eventCount -= q.pruneEventsBefore.run(latestEventAt - EVENT_ID_RETENTION_MS).changes;
      if (eventCount > EVENT_ID_MAX) eventCount -= q.pruneOldestEvents.run(eventCount - EVENT_ID_MAX).changes;
    }
  }

  const createTx = db.transaction((input: NewOrder, ttl: number): CreateOrderResult => {
    if (++createsSincePrune >= 1000) {
      createsSincePrune = 0;
      q.pruneIdempotency.run(input.createdAt);
    }
    if (input.idempotencyKey !== undefined) {
      const known = q.idempotency.get(input.idempotencyKey);
      const earlier = known && known.expires_at > input.createdAt ? readOrder(known.order_id) : undefined;
      if (earlier) return { kind: earlier.item === input.item ? 'existing' : 'conflict', order: earlier };
    }
    q.insertOrder.run({
      id: input.id,
      item: input.item,
      createdAt: input.createdAt,
      clientAddress: input.clientAddress,
      email: input.email ?? null,
      idempotencyKey: input.idempotencyKey ?? null,
    });
    if (input.idempotencyKey !== undefined) {
      q.putIdempotency.run(input.idempotencyKey, input.id, input.createdAt + ttl);
    }
    if (input.purchase !== undefined)
      q.insertPurchaseOrder.run(input.id, input.purchase.iss, input.purchase.sub);
    // Built rather than read back: a new order is exactly what was inserted, with no tickets.
    const order = newOrder(input);
    return { kind: 'created', order };
  });

  // Transactions are built once. Run inside the turn's transaction (`write`), better-sqlite3 makes
  // each a SAVEPOINT: undone alone if it throws.
  const reserveTx = db.transaction((order: OrderRecord, ticket: TicketRecord): TicketRecord[] => {
    const ended: TicketRecord[] = [];
    for (let i = 0; i < order.tickets.length; i++) {
      const e = endIn(order, i, 'lapsed', ticket.issuedAt);
      if (e) ended.push(e);
    }
    q.insertTicket.run(ticket);
    order.tickets.push(ticket);
    saveStatus(order);
    return ended;
  });

  const eventTx = db.transaction((eventId: string, at: number, order: OrderRecord, ticket: TicketRecord) => {
    rememberEvent(eventId, at);
    writeTicket(ticket);
    saveStatus(order);
  });

  /** One batch of retention, in one transaction: small (`limit`), so it blocks the loop briefly. */
  const purgeTx = db.transaction((now: number, retentionMs: number, limit: number) => {
    const ids = q.purgeCandidates.all(now - retentionMs, limit);
    let purged = 0;
    for (const { id } of ids) {
      const order = readOrderForChange(id);
      if (!order) continue;
      const verdict = purgeVerdict(order, now, retentionMs);
      if (!verdict.purge) {
        q.setActive.run(verdict.activeAt, id);
        continue;
      }
      q.deleteTicketsOf.run(id);
      q.deleteOrder.run(id);
      if (order.purchase) q.deletePurchaseOrder.run(id);
      if (order.idempotencyKey !== undefined) q.deleteIdempotency.run(order.idempotencyKey, id);
      purged++;
    }
    return { purged, more: ids.length === limit };
  });

  const sweepTx = db.transaction((gone: LineEntry[]) => {
    for (const e of gone) q.lineDelete.run(e.seq);
  });

  const endTx = db.transaction(
    (order: OrderRecord, index: number, status: 'failed' | 'lapsed' | 'revoked', at: number) => {
      const e = endIn(order, index, status, at);
      if (e) saveStatus(order);
      return e;
    },
  );

  const lapseTx = db.transaction((due: string[], now: number) => {
    const out: TicketRecord[] = [];
    for (const id of due) {
      const row = q.ticket.get(id);
      const order = row ? readOrderForChange(row.order_id) : undefined;
      if (!order) continue;
      const e = endIn(
        order,
        order.tickets.findIndex((t) => t.id === id),
        'lapsed',
        now,
      );
      if (!e) continue;
      saveStatus(order);
      out.push(e);
    }
    return out;
  });

  const probeInsert = db.prepare(
    'INSERT OR REPLACE INTO idempotency (key, order_id, expires_at) VALUES (?, ?, 0)',
  );
  const probeDelete = db.prepare('DELETE FROM idempotency WHERE key = ?');
  const probeTx = db.transaction(() => {
    probeInsert.run(PROBE_KEY, '');
    probeDelete.run(PROBE_KEY);
  });

  return {
    async createOrder(input, idempotencyTtlMs) {
      return write(() => {
        const result = createTx(input, idempotencyTtlMs);
        if (result.kind === 'created') remember(result.order);
        return result;
      });
    },

    async getOrder(orderId) {
      return settle(readOrder(orderId));
    },

    async findByIdempotencyKey(key, now) {
      const known = q.idempotency.get(key);
      return settle(known && known.expires_at > now ? readOrder(known.order_id) : undefined);
    },

    async reserveTicket(input, limits): Promise<ReserveResult> {
      return write((): ReserveResult => {
        const order = readOrder(input.orderId);
        if (!order) return { kind: 'unknown_order' };
        const verdict = reserveVerdict(order, input.server, byServer.get(input.server)?.size ?? 0, limits);
        if (verdict !== 'ok') return { kind: verdict };
        const ticket = newTicket(input);
        let ended: TicketRecord[];
        try {
          ended = reserveTx(order, ticket);
        } catch (err) {
          // The UNIQUE index on tickets.id is the duplicate check (no query of its own); the
          // savepoint rolled back, and `order` is a copy, so nothing is left half-done.
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
            throw new Error(`ticket id ${input.id} already exists`);
          }
          throw err;
        }
        remember(order);
        for (const e of ended) release(e);
        hold(ticket);
        return { kind: 'reserved', order, ticket: { ...ticket }, lapsed: ended.map((e) => ({ ...e })) };
      });
    },

    async endTicket(ticketId, status, at) {
      if (!outstandingTickets.has(ticketId)) return settle(undefined);
      return write(() => {
        const row = q.ticket.get(ticketId);
        const order = row ? readOrderForChange(row.order_id) : undefined;
        if (!order) return undefined;
        const index = order.tickets.findIndex((t) => t.id === ticketId);
        const ended = endTx(order, index, status, at);
        if (ended) release(ended);
        return ended;
      });
    },

    async applyTransferEvent(event): Promise<AppliedEvent> {
      const unchanged: AppliedEvent = { applied: false, freedSlot: false };
      if (q.eventSeen.get(event.eventId)) return settle(unchanged);
      const row = q.ticket.get(event.ticketId);
      const order = row ? readOrderForChange(row.order_id) : undefined;
      const index = order ? order.tickets.findIndex((t) => t.id === event.ticketId) : -1;
      if (!order || index < 0) return settle(unchanged);
      return write((): AppliedEvent => {
        const step = applyEvent(order.tickets[index]!, event);
        order.tickets[index] = step.ticket;
        eventTx(event.eventId, event.at, order, step.ticket);
        track(step.ticket);
        return { applied: true, ticket: { ...step.ticket }, order, freedSlot: step.freedSlot };
      });
    },

    async lapseUnclaimed(now) {
      const due: string[] = [];
      for (const id of deadlines.due(now)) {
        const t = outstandingTickets.get(id);
        if (!t) continue;
        if (pastDeadline(t, now)) due.push(id);
        else deadlines.track(id, deadlineOf(t) ?? now);
      }
      if (due.length === 0) return settle([]);
      // Whatever is not lapsed below (failed statements, a row that changed) stays due. A batch
      // that fails to commit reloads the whole index, deadlines included (`load`).
      const requeue = () => {
        for (const id of due) {
          const t = outstandingTickets.get(id);
          if (t) deadlines.track(id, deadlineOf(t) ?? now);
        }
      };
      return write(() => {
        let lapsed: TicketRecord[];
        try {
          lapsed = lapseTx(due, now);
        } catch (err) {
          requeue();
          throw err;
        }
        for (const t of lapsed) release(t);
        requeue();
        return lapsed;
      });
    },

    async outstanding() {
      const out = new Map<string, Set<string>>();
      for (const [server, ids] of byServer) out.set(server, new Set(ids));
      return settle(out);
    },

    async ticketsOfOrder(orderId) {
      return settle(q.ticketsOf.all(orderId).map(ticketOf));
    },

    async joinLine({ token, now, firstEstimateSeconds, dueAt }, maxLength) {
      const present = waiting.find(token);
      if (present) return settle<JoinResult>({ kind: 'joined', ...present });
      if (waiting.size >= maxLength) return settle<JoinResult>({ kind: 'full', length: waiting.size });
      return write((): JoinResult => {
        const row = q.lineInsert.get(token, now, now, firstEstimateSeconds, dueAt ?? null);
        if (!row) throw new Error('line insert returned nothing');
        const entry = lineEntryOf(row);
        const position = waiting.add(entry);
        return { kind: 'joined', entry, position };
      });
    },

    async touchLine(token, now, dueAt) {
      const seq = waiting.seqOf(token);
      if (seq === undefined) return settle(undefined);
      return write(() => {
        if (dueAt === undefined) q.lineTouch.run(now, seq);
        else q.lineTouchDue.run(now, dueAt, seq);
        return waiting.touch(token, now, dueAt);
      });
    },

    async findInLine(token) {
      return settle(waiting.find(token));
    },

    async setHeld(token, heldSince) {
      const seq = waiting.seqOf(token);
      if (seq === undefined) return settle(undefined);
      return write(() => {
        q.lineHeld.run(heldSince ?? null, seq);
        waiting.setHeld(token, heldSince);
      });
    },

    async leaveLine(token) {
      const seq = waiting.seqOf(token);
      if (seq === undefined) return settle(undefined);
      return write(() => {
        q.lineDelete.run(seq);
        return waiting.remove(token);
      });
    },

    async lineFront(limit) {
      return settle(waiting.front(limit));
    },

    async lineLength() {
      return settle(waiting.size);
    },

    async sweepLine(seenBefore, limit) {
      const gone = waiting.stale(seenBefore, limit);
      if (gone.length === 0) return settle(gone);
      return write(() => {
        sweepTx(gone);
        for (const e of gone) waiting.remove(e.token);
        return gone;
      });
    },

    async ordersOfPurchase(p) {
      return settle(q.ordersOfPurchase.all(p.iss, p.sub).map((r) => r.order_id));
    },

    async revokePurchase(p, at) {
      return write(() => {
        q.revokePurchase.run(p.iss, p.sub, at);
      });
    },

    async isPurchaseRevoked(p) {
      return settle(q.purchaseRevoked.get(p.iss, p.sub) !== undefined);
    },

    async purgeInactive(now, retentionMs, limit) {
      return write(() => purgeTx(now, retentionMs, limit));
    },

    async probeWrite() {
      // Insert and delete: the page is dirtied, so the batch's commit writes the WAL.
      return write(() => probeTx());
    },

    async close() {
      // Whatever the turn wrote is committed first: its callers are waiting for it.
      if (batch) commit(batch);
      if (db.open) db.close();
      opts.logger.debug({ file: opts.file }, 'sqlite store closed');
    },
  };
}
