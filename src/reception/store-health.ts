/**
 * Whether the reception's store is reachable, as the reception's own calls find it: the first
 * `store_unavailable` marks it away (`/healthz` turns 503, CONTRACT §3), the next call that
 * succeeds marks it back. Housekeeping calls the store every 250 ms, so a store that comes back is
 * noticed within that, with no restart and no traffic needed. A store with `probeWrite` (SQLite)
 * keeps reading while its writes fail, so there only the write probe (`check`, from housekeeping,
 * within 250 ms) counts as back. Not any call of a kind that had failed, as before: SQLite commits
 * a turn's writes together, so a housekeeping call with nothing to write failed with the orders
 * of its turn and then succeeded alone, and `/healthz` flapped to 200 while writes still failed
 * (seen once in CI, `store-outage-sqlite.test.ts`).
 */
import { isStoreUnavailable, type Store } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';

export interface StoreHealth {
  up(): boolean;
  /** When the current outage began (ms), if the store is away. */
  awaySince(): number | undefined;
  /** How many outages there were since start. */
  outages(): number;
  /** While away, tries the store's write probe if it has one (housekeeping calls it). */
  check(): Promise<void>;
}

export function watchStore(
  inner: Store,
  clock: Clock,
  logger: Logger,
): { store: Store; health: StoreHealth } {
  let since: number | undefined;
  let outages = 0;
  const probed = typeof inner.probeWrite === 'function';
  const ok = (name: string) => {
    if (since === undefined) return;
    if (probed && name !== 'probeWrite') return;
    logger.info({ awayMs: clock.now() - since }, 'store reachable again; taking orders');
    since = undefined;
  };
  const failed = (err: unknown) => {
    if (!isStoreUnavailable(err)) return;
    if (since !== undefined) return;
    since = clock.now();
    outages += 1;
    const cause = (err as Error).cause;
    logger.error(
      { cause: cause instanceof Error ? cause.message : String(cause ?? err) },
      'store unavailable: orders get 503 store_unavailable until it is back',
    );
  };
  const watched = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(inner) as [string, unknown][]) {
    if (typeof fn !== 'function' || name === 'close') {
      watched[name] = typeof fn === 'function' ? fn.bind(inner) : fn;
      continue;
    }
    watched[name] = async (...args: unknown[]) => {
      try {
        const result = await (fn as (...a: unknown[]) => Promise<unknown>).apply(inner, args);
        ok(name);
        return result;
      } catch (err) {
        failed(err);
        throw err;
      }
    };
  }
  const store = watched as unknown as Store;
  return {
    store,
    health: {
      up: () => since === undefined,
      awaySince: () => since,
      outages: () => outages,
      async check() {
        if (since === undefined || !store.probeWrite) return;
        await store.probeWrite().catch(() => undefined);
      },
    },
  };
}
