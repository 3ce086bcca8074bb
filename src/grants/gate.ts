/**
 * The grant gate: the one place the order path asks "may this request order this item?"
 * (CONTRACT §7), before the waiting line, so an unpaid request never takes a place. An item
 * under `grants.required` needs a grant; a grant sent for any item is checked all the same.
 * Verified grants come from the cache; a refunded purchase is refused even with a cached grant
 * (revocations are in the store, shared by every reception on one Redis).
 */
import { ConfigError, type ErrorCode } from '../errors.js';
import type { Logger } from '../util/log.js';
import { GrantCache } from './cache.js';
import type { GrantClaims, Purchase } from './claims.js';
import { type IssuerKeys, jwksFileKeys, secretKeys } from './issuer-keys.js';
import { compileGlobs, type ItemMatcher } from './item-globs.js';
import { verifyGrant } from './verify.js';

export interface GrantSettings {
  required: string[];
  issuers: { iss: string; jwks?: string | undefined; secret?: string | undefined }[];
}

export type GateVerdict =
  | { kind: 'free' }
  | { kind: 'granted'; claims: GrantClaims }
  | {
      kind: 'refused';
      code: Extract<ErrorCode, 'grant_required' | 'bad_grant' | 'grant_item'>;
      reason: string;
    };

export interface GrantGate {
  check(item: string, token: string | undefined): Promise<GateVerdict>;
  /** Whether any item needs a grant (the gate is configured). */
  readonly enabled: boolean;
}

export function buildGrantGate(deps: {
  settings: GrantSettings | undefined;
  clockSkewSeconds: number;
  now: () => number;
  isRevoked: (p: Purchase) => Promise<boolean>;
  logger: Logger;
}): GrantGate {
  const { settings, clockSkewSeconds, now, isRevoked, logger } = deps;
  const required: ItemMatcher = settings ? compileGlobs(settings.required) : () => false;
  const issuers = new Map<string, IssuerKeys>();
  (settings?.issuers ?? []).forEach((i, n) => {
    try {
      issuers.set(
        i.iss,
        i.secret !== undefined ? secretKeys(i.secret) : jwksFileKeys(i.jwks ?? '', logger, now),
      );
    } catch (err) {
      // A JWK Set that cannot be read at start is a deployment problem: exit 2, naming the key.
      throw new ConfigError([`reception.grants.issuers[${n}].jwks: ${(err as Error).message}`]);
    }
  });
  const cache = new GrantCache();
  const itemMatchers = new Map<string, ItemMatcher>();
  const listed = (claims: GrantClaims, item: string) => {
    if (claims.items === '**') return true;
    const key = claims.items.join('\n');
    let m = itemMatchers.get(key);
    if (!m) {
      m = compileGlobs(claims.items);
      if (itemMatchers.size > 10_000) itemMatchers.clear();
      itemMatchers.set(key, m);
    }
    return m(item);
  };

  return {
    enabled: settings !== undefined,
    async check(item, token) {
      if (token === undefined) {
        return required(item)
          ? { kind: 'refused', code: 'grant_required', reason: 'no grant' }
          : { kind: 'free' };
      }
      const nowMs = now();
      let claims = cache.get(token, nowMs);
      if (!claims) {
        const verdict = await verifyGrant(token, { issuers, nowMs, clockSkewSeconds });
        if (!verdict.ok) return { kind: 'refused', code: 'bad_grant', reason: verdict.reason };
        claims = verdict.claims;
        cache.put(token, claims, (claims.exp + clockSkewSeconds) * 1000);
      }
      if (await isRevoked(claims)) return { kind: 'refused', code: 'bad_grant', reason: 'purchase revoked' };
      if (!listed(claims, item)) return { kind: 'refused', code: 'grant_item', reason: 'item not in grant' };
      return { kind: 'granted', claims };
    },
  };
}
