/**
 * Retention (`reception.retention`): every round purges the orders past retention from the store
 * (with their tickets, idempotency keys and e-mail addresses), in small batches with a turn of
 * the event loop between them, so a backlog never holds up orders or events. A round is capped
 * (`maxBatches`): a backlog far larger than one round is worked off over several rounds.
 */
import type { Store } from '../store/index.js';
import type { Logger } from '../util/log.js';

export const PURGE_BATCH = 500;
const MAX_BATCHES_PER_ROUND = 20;

export interface RetentionSweeper {
  /** One round; returns how many orders it purged. */
  sweep(now: number): Promise<number>;
  /** Orders purged since start. */
  purgedTotal(): number;
}

export function buildRetentionSweeper(deps: {
  store: Store;
  retentionMs: number;
  logger: Logger;
  batch?: number;
  maxBatches?: number;
}): RetentionSweeper {
  const batch = deps.batch ?? PURGE_BATCH;
  const maxBatches = deps.maxBatches ?? MAX_BATCHES_PER_ROUND;
  let total = 0;
  return {
    async sweep(now) {
      let purged = 0;
      for (let i = 0; i < maxBatches; i++) {
        const r = await deps.store.purgeInactive(now, deps.retentionMs, batch);
        purged += r.purged;
        if (!r.more) break;
        // better-sqlite3 and the memory store never yield on their own: let requests in.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      total += purged;
      if (purged > 0) deps.logger.debug({ purged, total }, 'retention: orders purged');
      return purged;
    },
    purgedTotal: () => total,
  };
}
