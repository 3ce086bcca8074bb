/**
 * Opens the reception's store named by the deployment file's `reception.store` (CONTRACT §2):
 * `memory:`, `sqlite:PATH` (the folder is created) or `redis://host:port/db`. Backends are loaded
 * on demand, so a reception on `memory:` never loads the SQLite or Redis driver.
 */
import type { Logger } from '../util/log.js';
import { createMemoryStore } from './memory.js';
import type { Store } from './types.js';

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
    return openSqliteStore({ file, logger: opts.logger });
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { openRedisStore } = await import('./redis.js');
    return openRedisStore({
      url,
      logger: opts.logger,
      ...(opts.keyPrefix === undefined ? {} : { keyPrefix: opts.keyPrefix }),
    });
  }
  throw new Error(`unknown store "${url}": expected "memory:", "sqlite:PATH" or "redis://host:port/db"`);
}
