/**
 * The reception's notion of "now": ms since the epoch, passed into every module that needs time
 * so that tests can drive expiry, holds and estimates exactly. Only `systemClock` reads the real
 * clock; pure modules take `now` as an argument instead.
 */

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
