/**
 * Word between receptions that share one Redis (issue 9): a reception that frees a slot tells
 * the others at once over pub/sub, so a waiter whose retry is held open at another reception is
 * admitted now rather than at that reception's next store refresh. Pub/sub is fire-and-forget:
 * a message lost while Redis is away costs only that delay, since every reception still refreshes
 * its slot ledger from the store each monitor interval.
 *
 * A subscribed connection can issue no other command, so this keeps two of its own.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../util/log.js';
import { DEFAULT_KEY_PREFIX, splitFsync, splitPrefix } from './redis.js';
import type { Broadcast } from './types.js';

export async function openRedisBroadcast(opts: {
  url: string;
  keyPrefix?: string;
  logger: Logger;
}): Promise<Broadcast> {
  const split = splitPrefix(splitFsync(opts.url).url);
  const channel = `${opts.keyPrefix ?? split.prefix ?? DEFAULT_KEY_PREFIX}broadcast`;
  const me = randomUUID();
  const options = {
    lazyConnect: true,
    connectTimeout: 5000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
  };
  const pub = new Redis(split.url, options);
  const sub = new Redis(split.url, { ...options, enableOfflineQueue: true });
  // Outages are the store's to report; these connections only reconnect quietly.
  pub.on('error', () => {});
  sub.on('error', () => {});
  const listeners: ((message: string) => void)[] = [];
  sub.on('message', (ch: string, raw: string) => {
    if (ch !== channel) return;
    const space = raw.indexOf(' ');
    if (space < 0 || raw.slice(0, space) === me) return;
    const message = raw.slice(space + 1);
    for (const l of listeners) {
      try {
        l(message);
      } catch (err) {
        opts.logger.warn({ err: (err as Error).message }, 'broadcast listener failed');
      }
    }
  });
  await Promise.all([pub.connect(), sub.connect()]);
  await sub.subscribe(channel);
  return {
    async publish(message) {
      await pub.publish(channel, `${me} ${message}`).catch(() => undefined);
    },
    async subscribe(listener) {
      listeners.push(listener);
    },
    async close() {
      await Promise.all([pub.quit().catch(() => pub.disconnect()), sub.quit().catch(() => sub.disconnect())]);
    },
  };
}
