/**
 * Time for the client side, passed in so that the waiting room's "never sooner than Retry-After"
 * rule can be tested exactly with a fake clock. `sleep` is abortable: Ctrl-C or `--max-wait` ends
 * a wait at once instead of after it.
 */

import { type Clock as BaseClock, systemClock as baseClock } from '../util/clock.js';

/** The shared clock, plus an abortable sleep. */
export interface Clock extends BaseClock {
  /** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: baseClock.now,
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

/** Sleeps until the clock reads at least `at`; timers may fire a little early, so it re-checks. */
export async function sleepUntil(clock: Clock, at: number, signal?: AbortSignal): Promise<void> {
  for (let left = at - clock.now(); left > 0; left = at - clock.now()) {
    await clock.sleep(left, signal);
  }
}
