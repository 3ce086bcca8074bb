/**
 * The store going away (CONTRACT §3): when Redis is unreachable or a SQLite write fails (disk
 * full, read-only, I/O error), a store method rejects with a `store_unavailable` RushgateError
 * instead of the driver's own error, so the reception answers `503` with `Retry-After` — never a
 * `500` — and knows to report itself unhealthy. Which driver errors mean "the store is away" is
 * each backend's call (`isOutage`); anything else (a bug, a broken invariant) passes through.
 */
import { RushgateError } from '../errors.js';
import type { Store } from './types.js';

export function isStoreUnavailable(err: unknown): err is RushgateError {
  return err instanceof RushgateError && err.code === 'store_unavailable';
}

/** Every method of `store`, with outages turned into `store_unavailable` (the cause kept). */
export function guardStore(store: Store, isOutage: (err: unknown) => boolean): Store {
  const guarded = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(store) as [string, unknown][]) {
    if (typeof fn !== 'function') {
      guarded[name] = fn;
      continue;
    }
    guarded[name] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(store, args);
      } catch (err) {
        if (isStoreUnavailable(err) || !isOutage(err)) throw err;
        throw new RushgateError('store_unavailable', undefined, { cause: err });
      }
    };
  }
  return guarded as unknown as Store;
}

/** SQLite result codes that mean the file cannot be written now, not that the data is wrong. */
const SQLITE_OUTAGE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|NOMEM|PROTOCOL)/;

export function isSqliteOutage(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && SQLITE_OUTAGE.test(code)) return true;
  // better-sqlite3 throws a TypeError once the database has been closed under us.
  return err instanceof TypeError && /database connection is not open/.test(err.message);
}

/**
 * Redis errors that mean "not reachable or not writable now": a dropped or refused connection,
 * a command that timed out or could not be sent, and the replies of a Redis that is loading,
 * read-only, out of memory (`maxmemory` with noeviction) or failing to persist (MISCONF).
 * A script's own error reply (a broken invariant) is not among them.
 */
const REDIS_REPLY_OUTAGE =
  /^(LOADING|READONLY|MISCONF|OOM|BUSY|MASTERDOWN|NOREPLICAS|TRYAGAIN|CLUSTERDOWN)\b/;

const REDIS_CONNECTION_OUTAGE =
  /Connection is closed|Stream isn't writeable|Command timed out|Connection timeout/;

export function isRedisOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return REDIS_REPLY_OUTAGE.test(err.message);
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return REDIS_CONNECTION_OUTAGE.test(err.message);
}
