/**
 * The `redis://host:port/db` store (ioredis), for several receptions sharing one Redis: capacity,
 * orders, the waiting line and applied transfer events are then global (CONTRACT §2). Every
 * method that changes state is one Lua script from `lua/` (named after the operation, loaded at
 * open, run with EVALSHA through ioredis `defineCommand`), so it is one atomic step across all
 * receptions: a slot checked free and then taken cannot be taken by another reception between
 * the two. The scripts mirror src/store/rules.ts; `lua/_shared.lua` describes the key layout.
 *
 * Hot reads are cheap: `outstanding()` reads one set per server. The waiting line is two sorted
 * sets and a hash (`lua/_shared.lua`): a position is a ZRANK, the front a ZRANGE, a sweep a
 * ZRANGEBYSCORE over last-seen times, so no operation reads the whole line. Durability is Redis's own (configure AOF with `appendfsync everysec` or stricter for a
 * store that outlives a Redis restart). Applied event ids are kept one hour (Redis TTL);
 * idempotency keys for their TTL. Orders are purged `reception.retention` after their last
 * activity (`purgeInactive`, an incremental sweep over the `activity` sorted set).
 *
 * Keys start with `rushgate:` unless the URL says otherwise with `?prefix=NAME:`
 * (`redis://host:6379/0?prefix=shop:`), so that two deployments (or test runs) can share one
 * Redis database; every reception of one deployment must use the same prefix.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { maskUrl } from '../config/keys.js';
import { RushgateError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { EVENT_ID_RETENTION_MS, newOrder, newTicket, purchaseKey } from './rules.js';
import type {
  AppliedEvent,
  CreateOrderResult,
  JoinResult,
  LineEntry,
  OrderRecord,
  PlaceInLine,
  ReserveResult,
  Store,
  TicketRecord,
} from './types.js';

export const DEFAULT_KEY_PREFIX = 'rushgate:';

/** One file per operation in `lua/`; each gets `_shared.lua` prepended. */
const SCRIPTS = [
  'create_order',
  'reserve_ticket',
  'end_ticket',
  'apply_transfer_event',
  'lapse_unclaimed',
  'outstanding',
] as const;
/** Scripts that take their keys in KEYS (the count is the first argument of each call). */
const KEYED_SCRIPTS = [
  'purge_orders',
  'join_line',
  'touch_line',
  'find_in_line',
  'set_held',
  'leave_line',
  'line_front',
  'sweep_line',
  'migrate_line',
] as const;
type KeyedScriptName = (typeof KEYED_SCRIPTS)[number];
type ScriptName = (typeof SCRIPTS)[number];

/** Tickets lapsed per script run: bounds how long one run blocks Redis. */
const LAPSE_BATCH = 500;

/**
 * `tsc` does not copy `.lua` files, so the built `dist/store/redis.js` reads them from the
 * source tree that ships beside it.
 */
function luaDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'lua'), path.join(here, '..', '..', 'src', 'store', 'lua')];
  const found = candidates.find((dir) => existsSync(path.join(dir, '_shared.lua')));
  if (!found) throw new Error(`store Lua scripts not found in ${candidates.join(' or ')}`);
  return found;
}

function loadScripts(): Record<ScriptName | KeyedScriptName, string> {
  const dir = luaDir();
  const shared = readFileSync(path.join(dir, '_shared.lua'), 'utf8');
  return Object.fromEntries(
    [...SCRIPTS, ...KEYED_SCRIPTS].map((name) => [
      name,
      `${shared}\n${readFileSync(path.join(dir, `${name}.lua`), 'utf8')}`,
    ]),
  ) as Record<ScriptName | KeyedScriptName, string>;
}

/** A purchase's key part: fixed length whatever the shop's `iss` and `sub`. */
function purchaseHash(p: { iss: string; sub: string }): string {
  return createHash('sha256').update(purchaseKey(p)).digest('base64url');
}

function parseOrder(raw: string): OrderRecord {
  const o = JSON.parse(raw) as OrderRecord;
  if (!Array.isArray(o.tickets)) o.tickets = [];
  return o;
}

export interface RedisStoreOptions {
  url: string;
  /** Every key starts with it (default: the URL's `?prefix=`, else `rushgate:`); tests use a random one. */
  keyPrefix?: string;
  logger: Logger;
}

const PREFIX_PARAM = 'prefix';
const PREFIX_SHAPE = /^[\x21-\x7e]{1,200}$/;

/**
 * Takes `?prefix=` out of the URL: ioredis would otherwise pass unknown query parameters on as
 * connection options. The rest of the URL goes to ioredis unchanged.
 */
export function splitPrefix(url: string): { url: string; prefix: string | undefined } {
  const q = url.indexOf('?');
  if (q < 0) return { url, prefix: undefined };
  const params = new URLSearchParams(url.slice(q + 1));
  const prefix = params.get(PREFIX_PARAM) ?? undefined;
  if (prefix === undefined) return { url, prefix };
  if (!PREFIX_SHAPE.test(prefix)) {
    throw new Error(`store URL: ${PREFIX_PARAM} must be 1–200 visible ASCII characters`);
  }
  params.delete(PREFIX_PARAM);
  const rest = params.toString();
  return { url: url.slice(0, q) + (rest === '' ? '' : `?${rest}`), prefix };
}

/**
 * `?fsync=always` (extension): the reception takes an order only from a Redis that fsyncs every
 * write to its append-only file before answering (`appendonly yes`, `appendfsync always`), so an
 * order answered `201` survives a Redis crash or restart. Checked with CONFIG GET at open (the
 * reception refuses to start otherwise) and again after every reconnect (a restarted Redis may
 * run another configuration): until it holds again, every write is `store_unavailable`.
 */
const FSYNC_PARAM = 'fsync';

/** Takes `?fsync=` out of the URL, as splitPrefix does for `?prefix=`. */
export function splitFsync(url: string): { url: string; fsync: 'always' | undefined } {
  const q = url.indexOf('?');
  if (q < 0) return { url, fsync: undefined };
  const params = new URLSearchParams(url.slice(q + 1));
  const value = params.get(FSYNC_PARAM);
  if (value === null) return { url, fsync: undefined };
  if (value !== 'always') throw new Error(`store URL: ${FSYNC_PARAM} must be "always"`);
  params.delete(FSYNC_PARAM);
  const rest = params.toString();
  return { url: url.slice(0, q) + (rest === '' ? '' : `?${rest}`), fsync: 'always' };
}

/** What CONFIG GET says about persistence; undefined when CONFIG is not allowed here. */
async function persistenceOf(redis: Redis): Promise<{ appendonly: string; appendfsync: string } | undefined> {
  try {
    const flat = (await redis.call('CONFIG', 'GET', 'append*')) as string[];
    const conf = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) conf.set(flat[i]!, flat[i + 1]!);
    return { appendonly: conf.get('appendonly') ?? 'no', appendfsync: conf.get('appendfsync') ?? 'everysec' };
  } catch {
    return undefined;
  }
}

export async function openRedisStore(opts: RedisStoreOptions): Promise<Store> {
  const fsyncSplit = splitFsync(opts.url);
  const split = splitPrefix(fsyncSplit.url);
  const prefix = opts.keyPrefix ?? split.prefix ?? DEFAULT_KEY_PREFIX;
  // A password in the URL must not reach a log or a terminal.
  const shownUrl = maskUrl(opts.url);
  const scripts = loadScripts();
  const redis = new Redis(split.url, {
    lazyConnect: true,
    connectTimeout: 5000,
    // While Redis is away a command fails at once (the order is answered 503 store_unavailable)
    // rather than waiting in a queue; one sent just before it went fails after a few reconnect
    // attempts or the command timeout, and is not sent again (its caller was already answered).
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: 3000,
    maxRetriesPerRequest: 3,
    // Reconnects at most every second, so a Redis that comes back is used again within ~1 s.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  let opened = false;
  /** ioredis rejects `connect()` with a bare "Connection is closed"; the cause came as an event. */
  let cause: Error | undefined;
  let away = false;
  redis.on('error', (err: Error) => {
    if (!opened) cause = err;
    else if (!away) {
      // Once per outage: a down Redis would otherwise log every reconnect attempt.
      away = true;
      opts.logger.warn({ err: err.message }, 'redis store unreachable; orders get 503 until it is back');
    }
  });
  /** `?fsync=always`: whether the Redis now connected is known to fsync every write. */
  let durable = fsyncSplit.fsync === undefined;
  const checkDurability = async (): Promise<string | undefined> => {
    const p = await persistenceOf(redis);
    if (!p) return 'CONFIG GET is not allowed on this Redis, so its fsync policy is unknown';
    if (p.appendonly !== 'yes' || p.appendfsync !== 'always') {
      return `Redis runs appendonly ${p.appendonly}, appendfsync ${p.appendfsync}; ?fsync=always needs appendonly yes and appendfsync always`;
    }
    return undefined;
  };
  redis.on('ready', () => {
    if (!opened) return;
    if (away) opts.logger.info('redis store reachable again');
    away = false;
    if (fsyncSplit.fsync === undefined) return;
    durable = false;
    void checkDurability().then((problem) => {
      durable = problem === undefined;
      if (problem) opts.logger.error({ problem }, 'redis store not durable; refusing writes');
    });
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Redis unreachable at ${shownUrl}: ${(cause ?? (err as Error)).message}`);
  }
  if (fsyncSplit.fsync !== undefined) {
    const problem = await checkDurability();
    if (problem) {
      redis.disconnect();
      throw new Error(`Redis at ${shownUrl}: ${problem}`);
    }
    durable = true;
  } else {
    const p = await persistenceOf(redis);
    if (p && (p.appendonly !== 'yes' || p.appendfsync === 'no')) {
      opts.logger.warn(
        { appendonly: p.appendonly, appendfsync: p.appendfsync },
        'Redis is not persisting every second: accepted orders may be lost if Redis restarts (docs/ARCHITECTURE.md, faults)',
      );
    }
  }
  opened = true;
  for (const name of SCRIPTS) redis.defineCommand(`rg_${name}`, { numberOfKeys: 0, lua: scripts[name] });
  for (const name of KEYED_SCRIPTS) redis.defineCommand(`rg_${name}`, { lua: scripts[name] });

  type Arg = string | number;
  /** Scripts that only read (the rest write, and wait for a durable Redis under ?fsync=always). */
  const READ_ONLY: ReadonlySet<ScriptName | KeyedScriptName> = new Set([
    'outstanding',
    'find_in_line',
    'line_front',
  ]);
  const notDurable = () =>
    Promise.reject(new RushgateError('store_unavailable', 'Redis is not known to fsync every write'));
  const run = (name: ScriptName, ...args: Arg[]): Promise<unknown> => {
    if (!durable && !READ_ONLY.has(name)) return notDurable();
    return (redis as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[`rg_${name}`]!(
      prefix,
      ...args,
    );
  };

  const runKeyed = (name: KeyedScriptName, keys: string[], ...args: Arg[]): Promise<unknown> => {
    if (!durable && !READ_ONLY.has(name)) return notDurable();
    return (redis as unknown as Record<string, (...a: Arg[]) => Promise<unknown>>)[`rg_${name}`]!(
      keys.length,
      ...keys,
      prefix,
      ...args,
    );
  };

  // The line's keys, handed to its scripts in KEYS (lua/_shared.lua describes them).
  const lineKey = `${prefix}line`;
  const seenKey = `${prefix}lineseen`;
  const dataKey = `${prefix}linedata`;
  const seqKey = `${prefix}lineseq`;
  const indexed = (await runKeyed('migrate_line', [lineKey, seenKey, dataKey])) as number;
  if (indexed > 0) opts.logger.info({ indexed }, 'redis store: indexed a line written by an older rushgate');
  /** A line script's `{ entry JSON, position }` or nil. */
  const place = (reply: unknown): PlaceInLine | undefined => {
    if (reply === null) return undefined;
    const [raw, position] = reply as [string, number];
    return { entry: JSON.parse(raw) as LineEntry, position };
  };

  opts.logger.info({ url: shownUrl, prefix }, 'store: redis');

  return {
    async createOrder(input, idempotencyTtlMs): Promise<CreateOrderResult> {
      const order = newOrder(input);
      const [kind, raw] = (await run(
        'create_order',
        JSON.stringify(order),
        input.idempotencyKey ?? '',
        input.createdAt,
        idempotencyTtlMs,
        input.purchase ? purchaseHash(input.purchase) : '',
      )) as [CreateOrderResult['kind'], string];
      return { kind, order: parseOrder(raw) };
    },

    async getOrder(orderId) {
      const raw = await redis.get(`${prefix}order:${orderId}`);
      return raw === null ? undefined : parseOrder(raw);
    },

    async findByIdempotencyKey(key, now) {
      // Two reads, not a script: nothing is written, and an order found is whole (one key).
      const raw = await redis.get(`${prefix}idem:${key}`);
      if (raw === null) return undefined;
      const known = JSON.parse(raw) as { orderId: string; expiresAt: number };
      if (!(known.expiresAt > now)) return undefined;
      const order = await redis.get(`${prefix}order:${known.orderId}`);
      return order === null ? undefined : parseOrder(order);
    },

    async reserveTicket(input, limits): Promise<ReserveResult> {
      // The script sets status and delivered itself; the rest is the same ticket as elsewhere.
      const ticket = newTicket(input);
      const [kind, raw, lapsed] = (await run(
        'reserve_ticket',
        JSON.stringify(ticket),
        limits.capacity,
        limits.untracked,
        limits.maxTicketsPerOrder,
      )) as [ReserveResult['kind'], string?, string[]?];
      if (kind !== 'reserved') return { kind };
      const order = parseOrder(raw!);
      return {
        kind,
        order,
        ticket: { ...order.tickets[order.tickets.length - 1]! },
        lapsed: (lapsed ?? []).map((t) => JSON.parse(t) as TicketRecord),
      };
    },

    async endTicket(ticketId, status, at) {
      const raw = (await run('end_ticket', ticketId, status, at)) as string | null;
      return raw === null ? undefined : (JSON.parse(raw) as TicketRecord);
    },

    async applyTransferEvent(event): Promise<AppliedEvent> {
      const reply = (await run(
        'apply_transfer_event',
        event.eventId,
        event.ticketId,
        event.type,
        event.delivered,
        event.at,
        EVENT_ID_RETENTION_MS,
      )) as [0] | [1, 0 | 1, string, number];
      if (reply[0] === 0) return { applied: false, freedSlot: false };
      const order = parseOrder(reply[2]);
      return { applied: true, freedSlot: reply[1] === 1, order, ticket: { ...order.tickets[reply[3] - 1]! } };
    },

    async lapseUnclaimed(now) {
      const lapsed: TicketRecord[] = [];
      for (;;) {
        const batch = (await run('lapse_unclaimed', now, LAPSE_BATCH)) as string[];
        for (const raw of batch) lapsed.push(JSON.parse(raw) as TicketRecord);
        if (batch.length < LAPSE_BATCH) return lapsed;
      }
    },

    async outstanding() {
      const flat = (await run('outstanding')) as (string | string[])[];
      const out = new Map<string, Set<string>>();
      for (let i = 0; i + 1 < flat.length; i += 2)
        out.set(flat[i] as string, new Set(flat[i + 1] as string[]));
      return out;
    },

    async ticketsOfOrder(orderId) {
      const raw = await redis.get(`${prefix}order:${orderId}`);
      return raw === null ? [] : parseOrder(raw).tickets;
    },

    async joinLine({ token, now, firstEstimateSeconds, dueAt }, maxLength): Promise<JoinResult> {
      const reply = (await runKeyed(
        'join_line',
        [lineKey, seenKey, dataKey, seqKey],
        token,
        now,
        firstEstimateSeconds,
        maxLength,
        dueAt ?? '',
      )) as ['joined', string, number] | ['full', number];
      if (reply[0] === 'full') return { kind: 'full', length: reply[1] };
      return { kind: 'joined', entry: JSON.parse(reply[1]) as LineEntry, position: reply[2] };
    },

    async touchLine(token, now, dueAt) {
      return place(await runKeyed('touch_line', [lineKey, seenKey, dataKey], token, now, dueAt ?? ''));
    },

    async findInLine(token) {
      return place(await runKeyed('find_in_line', [lineKey, dataKey], token));
    },

    async setHeld(token, heldSince) {
      await runKeyed('set_held', [dataKey], token, heldSince ?? '');
    },

    async leaveLine(token) {
      const raw = (await runKeyed('leave_line', [lineKey, seenKey, dataKey], token)) as string | null;
      return raw === null ? undefined : (JSON.parse(raw) as LineEntry);
    },

    async lineFront(limit) {
      const raw = (await runKeyed('line_front', [lineKey, dataKey], limit)) as string[];
      return raw.map((r) => JSON.parse(r) as LineEntry);
    },

    async lineLength() {
      // One command, atomic already.
      return redis.zcard(lineKey);
    },

    async sweepLine(seenBefore, limit) {
      const raw = (await runKeyed('sweep_line', [lineKey, seenKey, dataKey], seenBefore, limit)) as string[];
      return raw.map((r) => JSON.parse(r) as LineEntry);
    },

    async ordersOfPurchase(p) {
      return redis.smembers(`${prefix}purchase:${purchaseHash(p)}`);
    },

    async revokePurchase(p, at) {
      await redis.set(`${prefix}revokedpurchase:${purchaseHash(p)}`, String(at), 'NX');
    },

    async isPurchaseRevoked(p) {
      return (await redis.exists(`${prefix}revokedpurchase:${purchaseHash(p)}`)) === 1;
    },

    async purgeInactive(now, retentionMs, limit) {
      // Read, then purge in a script that is handed every key it touches: the candidates and
      // their orders come first (plain reads), the script re-checks each order against what was
      // read and purges it only when it is still due and unchanged.
      const ids = await redis.zrangebyscore(
        `${prefix}activity`,
        '-inf',
        now - retentionMs,
        'LIMIT',
        0,
        limit,
      );
      if (ids.length === 0) return { purged: 0, more: false };
      const raws = await redis.mget(...ids.map((id) => `${prefix}order:${id}`));
      const keys = [`${prefix}activity`];
      const args: Arg[] = [now, retentionMs];
      ids.forEach((id, i) => {
        const raw = raws[i];
        const own = [`${prefix}order:${id}`];
        if (raw !== null && raw !== undefined) {
          const order = parseOrder(raw);
          for (const t of order.tickets) own.push(`${prefix}ticket:${t.id}`);
          if (order.idempotencyKey !== undefined) own.push(`${prefix}idem:${order.idempotencyKey}`);
        }
        keys.push(...own);
        args.push(id, own.length);
      });
      const purged = (await runKeyed('purge_orders', keys, ...args)) as number;
      return { purged, more: ids.length === limit };
    },

    async close() {
      if (redis.status === 'end') return;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
