/**
 * Whether the reception's store is reachable, as the reception's own calls find it: the first
 * `store_unavailable` marks it away (`/healthz` turns 503, CONTRACT §3), the next call that
 * succeeds marks it back. No probe of its own: housekeeping calls the store every 250 ms, so a
 * store that comes back is noticed within that, with no restart and no traffic needed.
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
}

export function watchStore(
  inner: Store,
  clock: Clock,
  logger: Logger,
): { store: Store; health: StoreHealth } {
  let since: number | undefined;
  let outages = 0;
  const ok = () => {
    if (since === undefined) return;
    logger.info({ awayMs: clock.now() - since }, 'store reachable again; taking orders');
    since = undefined;
  };
  const failed = (err: unknown) => {
    if (!isStoreUnavailable(err) || since !== undefined) return;
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
        ok();
        return result;
      } catch (err) {
        failed(err);
        throw err;
      }
    };
  }
  return {
    store: watched as unknown as Store,
    health: { up: () => since === undefined, awaySince: () => since, outages: () => outages },
  };
}
