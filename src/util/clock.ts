/**
 * "Now", passed in. Every module that needs time takes a `Clock` (or a plain `now` argument, for
 * the pure ones) instead of reading `Date.now()`, so tests drive expiry, holds, abandonment and
 * estimates exactly. Only `systemClock` reads the real clock.
 */

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
