/**
 * Per-client request limits (CONTRACT §3, `429`): a token bucket per key — a client address, or
 * a queue token for a client waiting in line, so that polling at `Retry-After` is never refused
 * however many clients share one address. `take` is the pure step; `RateLimiter` only keeps the
 * buckets in a bounded map. The clock comes in as `now`.
 */

export interface BucketRule {
  perSecond: number;
  burst: number;
}

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface TakeResult {
  allowed: boolean;
  bucket: Bucket;
  /** When refused: ms until one token is back. */
  retryAfterMs: number;
}

/** Refills by elapsed time (never above `burst`), then takes one token if there is one. */
export function take(bucket: Bucket | undefined, now: number, rule: BucketRule): TakeResult {
  const start = bucket ?? { tokens: rule.burst, updatedAt: now };
  const elapsed = Math.max(0, now - start.updatedAt);
  const tokens = Math.min(rule.burst, start.tokens + (elapsed / 1000) * rule.perSecond);
  if (tokens >= 1) return { allowed: true, bucket: { tokens: tokens - 1, updatedAt: now }, retryAfterMs: 0 };
  const retryAfterMs = Math.ceil(((1 - tokens) / rule.perSecond) * 1000);
  return { allowed: false, bucket: { tokens, updatedAt: now }, retryAfterMs };
}

/** Whether a bucket would be full again by `now`, so forgetting it changes nothing. */
export function isIdle(bucket: Bucket, now: number, rule: BucketRule): boolean {
  return bucket.tokens + ((now - bucket.updatedAt) / 1000) * rule.perSecond >= rule.burst;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  constructor(
    private readonly rule: BucketRule,
    private readonly maxKeys = 100_000,
  ) {}

  take(key: string, now: number): TakeResult {
    const result = take(this.buckets.get(key), now, this.rule);
    // Delete first so re-insertion moves the key to the end: the map's order is last use.
    this.buckets.delete(key);
    this.buckets.set(key, result.bucket);
    if (this.buckets.size > this.maxKeys) this.sweep(now);
    return result;
  }

  /** Forgets idle buckets; if that is not enough, the least recently used (a flood of addresses). */
  sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (isIdle(bucket, now, this.rule)) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys * 0.9) break;
      this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
