/**
 * The keys each grant issuer signs with (CONTRACT §7). An issuer has either a JWK Set file — its
 * public keys, selected by `kid` and re-read when the file changes, so a shop rotates keys with no
 * restart — or an HS256 secret of at least 32 bytes. Each key is bound to the one algorithm its
 * type allows (Ed25519 → EdDSA, P-256 → ES256, RSA → RS256, secret → HS256): the header's `alg`
 * must be that one, which refuses `none` and every alg-confusion trick (an RSA or EdDSA public key
 * used as an HMAC secret) before any signature check.
 */
import { readFileSync, statSync } from 'node:fs';
import { importJWK, type JWK } from 'jose';
import type { Logger } from '../util/log.js';

export type GrantAlg = 'EdDSA' | 'ES256' | 'RS256' | 'HS256';
type ImportedKey = Awaited<ReturnType<typeof importJWK>>;
type KeyLike = ImportedKey;

export interface SelectedKey {
  key: KeyLike;
  alg: GrantAlg;
}

export type KeySelection = { ok: true; key: SelectedKey } | { ok: false; reason: string };

export interface IssuerKeys {
  /** The key for this header, or why there is none. Never throws. */
  select(header: { alg?: unknown; kid?: unknown }): Promise<KeySelection>;
}

export const MIN_SECRET_BYTES = 32;

/** The one algorithm a JWK's type allows, or undefined for a type grants do not use. */
export function algForJwk(jwk: JWK): Exclude<GrantAlg, 'HS256'> | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  return undefined;
}

export function secretKeys(secret: string): IssuerKeys {
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_SECRET_BYTES)
    throw new Error(`HS256 secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return {
    async select(header) {
      if (header.alg !== 'HS256')
        return { ok: false, reason: `alg ${String(header.alg)} not allowed for this issuer` };
      return { ok: true, key: { key: bytes, alg: 'HS256' } };
    },
  };
}

interface LoadedSet {
  mtimeMs: number;
  size: number;
  keys: Map<string, { jwk: JWK; alg: Exclude<GrantAlg, 'HS256'>; imported?: Promise<ImportedKey> }>;
  /** Keys without `kid`: usable only when the set has exactly one key of that alg. */
  unnamed: { jwk: JWK; alg: Exclude<GrantAlg, 'HS256'>; imported?: Promise<ImportedKey> }[];
}

/** How often the JWKS file's metadata is checked at most (a rotation shows within this). */
const STAT_INTERVAL_MS = 500;

export function jwksFileKeys(file: string, logger: Logger, now: () => number = Date.now): IssuerKeys {
  let loaded: LoadedSet | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;

  function load(): void {
    let st: { mtimeMs: number; size: number };
    try {
      st = statSync(file);
    } catch (err) {
      if (loaded)
        logger.warn({ file, reason: (err as Error).message }, 'grant JWKS unreadable; keeping the last keys');
      else throw new Error(`grant JWKS ${file}: ${(err as Error).message}`);
      return;
    }
    if (loaded && loaded.mtimeMs === st.mtimeMs && loaded.size === st.size) return;
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { keys?: unknown };
      if (!Array.isArray(doc.keys)) throw new Error('not a JWK Set (no "keys" array)');
      const next: LoadedSet = { mtimeMs: st.mtimeMs, size: st.size, keys: new Map(), unnamed: [] };
      for (const raw of doc.keys as JWK[]) {
        if (typeof raw !== 'object' || raw === null) continue;
        const alg = algForJwk(raw);
        // Private parts are never needed; a key with `d` or an `oct` key is not a public key.
        if (!alg || 'd' in raw || (raw.use !== undefined && raw.use !== 'sig')) continue;
        if (raw.alg !== undefined && raw.alg !== alg) continue;
        const entry = { jwk: raw, alg };
        if (typeof raw.kid === 'string') next.keys.set(raw.kid, entry);
        else next.unnamed.push(entry);
      }
      if (loaded) logger.info({ file, keys: next.keys.size + next.unnamed.length }, 'grant JWKS re-read');
      loaded = next;
    } catch (err) {
      if (loaded)
        logger.warn({ file, reason: (err as Error).message }, 'grant JWKS invalid; keeping the last keys');
      else throw new Error(`grant JWKS ${file}: ${(err as Error).message}`);
    }
  }

  function refresh(): void {
    const t = now();
    if (t - checkedAt < STAT_INTERVAL_MS) return;
    checkedAt = t;
    load();
  }

  refresh();
  return {
    async select(header) {
      try {
        refresh();
      } catch {
        // Only the first load throws (at start); later problems keep the last good keys.
      }
      const set = loaded;
      if (!set) return { ok: false, reason: 'no keys' };
      let entry: LoadedSet['unnamed'][number] | undefined;
      if (typeof header.kid === 'string') entry = set.keys.get(header.kid);
      else {
        const candidates = [...set.keys.values(), ...set.unnamed].filter((k) => k.alg === header.alg);
        if (candidates.length === 1) entry = candidates[0];
      }
      if (!entry) return { ok: false, reason: `unknown kid ${JSON.stringify(header.kid ?? null)}` };
      if (header.alg !== entry.alg)
        return { ok: false, reason: `alg ${String(header.alg)} not allowed for key ${String(header.kid)}` };
      try {
        entry.imported ??= importJWK(entry.jwk, entry.alg);
        return { ok: true, key: { key: await entry.imported, alg: entry.alg } };
      } catch (err) {
        return {
          ok: false,
          reason: `key ${String(header.kid)} cannot be imported: ${(err as Error).message}`,
        };
      }
    },
  };
}
