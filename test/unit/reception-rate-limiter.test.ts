import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIdle, RateLimiter, take } from '../../src/reception/rate-limiter.js';

const rule = { perSecond: 2, burst: 3 };

describe('rate limiter (token bucket)', () => {
  it('allows a burst, then refuses with the time until the next token', () => {
    let b = take(undefined, 0, rule);
    assert.equal(b.allowed, true);
    b = take(b.bucket, 0, rule);
    b = take(b.bucket, 0, rule);
    assert.equal(b.allowed, true);
    const refused = take(b.bucket, 0, rule);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterMs, 500);
  });

  it('refills at perSecond, never above burst', () => {
    let b = take(undefined, 0, rule).bucket;
    b = take(b, 0, rule).bucket;
    b = take(b, 0, rule).bucket; // empty
    assert.equal(take(b, 499, rule).allowed, false);
    assert.equal(take(b, 500, rule).allowed, true);
    const later = take(b, 60_000, rule);
    assert.equal(later.bucket.tokens, 2); // refilled to 3, one taken
    assert.equal(isIdle(later.bucket, 60_500, rule), true);
  });

  it('a client polling at one request per second is never refused by a 1/s rule', () => {
    const slow = { perSecond: 1, burst: 1 };
    let bucket: ReturnType<typeof take>['bucket'] | undefined;
    for (let t = 0; t < 100_000; t += 1000) {
      const r = take(bucket, t, slow);
      assert.equal(r.allowed, true, `refused at ${t}`);
      bucket = r.bucket;
    }
  });

  it('keeps buckets per key and stays bounded', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 1 }, 10);
    assert.equal(limiter.take('a', 0).allowed, true);
    assert.equal(limiter.take('a', 0).allowed, false);
    assert.equal(limiter.take('b', 0).allowed, true);
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`, 0);
    assert.ok(limiter.size <= 10);
  });
});
