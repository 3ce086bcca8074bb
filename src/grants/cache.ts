/**
 * Verified grants remembered by a hash of the token, so a waiter's retries (every Retry-After)
 * cost a hash, not a signature check. An entry lives until the grant's `exp` plus skew, and the
 * cache is bounded (oldest entries go first). Only good verdicts are kept: a refused token is
 * cheap to refuse again and must not crowd out good ones.
 */
import { createHash } from 'node:crypto';
import type { GrantClaims } from './claims.js';

export class GrantCache {
  private readonly entries = new Map<string, { claims: GrantClaims; untilMs: number }>();
  constructor(private readonly maxEntries = 50_000) {}

  static keyOf(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get(token: string, nowMs: number): GrantClaims | undefined {
    const key = GrantCache.keyOf(token);
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.untilMs <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.claims;
  }

  put(token: string, claims: GrantClaims, untilMs: number): void {
    const key = GrantCache.keyOf(token);
    this.entries.delete(key);
    this.entries.set(key, { claims, untilMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
