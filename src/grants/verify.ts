/**
 * Checks one grant token (JWS compact) against the configured issuers, locally: no call to the
 * shop. Every failure is a verdict, never an exception — a malformed token, an unknown `iss` or
 * `kid`, a wrong `alg`, a bad signature, `exp`/`nbf` outside `clockSkewSeconds` — so the order path
 * can answer `403 bad_grant` for anything a client sends.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { type GrantClaims, grantClaimsSchema } from './claims.js';
import type { IssuerKeys } from './issuer-keys.js';

/** Far above any real grant (a few hundred bytes); bounds the work a hostile token can cause. */
export const MAX_GRANT_LENGTH = 8192;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export type GrantVerdict = { ok: true; claims: GrantClaims } | { ok: false; reason: string };

export async function verifyGrant(
  token: string,
  opts: { issuers: ReadonlyMap<string, IssuerKeys>; nowMs: number; clockSkewSeconds: number },
): Promise<GrantVerdict> {
  if (token.length > MAX_GRANT_LENGTH || !COMPACT_JWS.test(token)) return { ok: false, reason: 'malformed' };
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverifiedIss: unknown;
  try {
    header = decodeProtectedHeader(token);
    unverifiedIss = decodeJwt(token).iss;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (header.alg === undefined || header.alg === 'none') return { ok: false, reason: 'alg none' };
  if (header.crit !== undefined) return { ok: false, reason: 'crit header not supported' };
  const keys = typeof unverifiedIss === 'string' ? opts.issuers.get(unverifiedIss) : undefined;
  if (!keys) return { ok: false, reason: 'unknown iss' };
  const selected = await keys.select(header);
  if (!selected.ok) return selected;
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, selected.key.key, {
      algorithms: [selected.key.alg],
      issuer: unverifiedIss as string,
      clockTolerance: opts.clockSkewSeconds,
      currentDate: new Date(opts.nowMs),
      requiredClaims: ['exp', 'iat', 'sub'],
    }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') return { ok: false, reason: 'expired' };
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return { ok: false, reason: (err as Error).message };
    return { ok: false, reason: 'bad signature' };
  }
  const claims = grantClaimsSchema.safeParse(payload);
  if (!claims.success)
    return { ok: false, reason: `claims: ${claims.error.issues[0]?.message ?? 'invalid'}` };
  return { ok: true, claims: claims.data };
}
