/**
 * Opens the reception's store named by the deployment file's `reception.store` (CONTRACT §2):
 * `memory:`, `sqlite:PATH` (the folder is created) or `redis://host:port/db`. Backends are loaded
 * on demand, so a reception on `memory:` never loads the SQLite or Redis driver. A backend's
 * outages (Redis away, a SQLite write failing) reach callers as `store_unavailable` errors.
 */
import type { Logger } from '../util/log.js';
import { createMemoryStore } from './memory.js';
import type { Store } from './types.js';
import { guardStore, isRedisOutage, isSqliteOutage } from './unavailable.js';

export interface OpenStoreOptions {
  logger: Logger;
  /** Redis only: prefix of every key (default `rushgate:`); tests use a random one. */
  keyPrefix?: string;
}

export async function openStore(url: string, opts: OpenStoreOptions): Promise<Store> {
  if (url === 'memory:') {
    opts.logger.info('store: memory (orders are lost when the process ends)');
    return createMemoryStore();
  }
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file === '') throw new Error('store "sqlite:" needs a file path, e.g. sqlite:./data/reception.db');
    const { openSqliteStore } = await import('./sqlite.js');
    return guardStore(await openSqliteStore({ file, logger: opts.logger }), isSqliteOutage);
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { openRedisStore } = await import('./redis.js');
    const store = await openRedisStore({
      url,
      logger: opts.logger,
      ...(opts.keyPrefix === undefined ? {} : { keyPrefix: opts.keyPrefix }),
    });
    const { openRedisBroadcast } = await import('./redis-broadcast.js');
    const broadcast = await openRedisBroadcast({
      url,
      logger: opts.logger,
      ...(opts.keyPrefix === undefined ? {} : { keyPrefix: opts.keyPrefix }),
    });
    const guarded = guardStore(store, isRedisOutage);
    return {
      ...guarded,
      broadcast,
      close: async () => {
        await broadcast.close();
        await guarded.close();
      },
    };
  }
  throw new Error(`unknown store "${url}": expected "memory:", "sqlite:PATH" or "redis://host:port/db"`);
}
