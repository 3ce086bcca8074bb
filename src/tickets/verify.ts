/**
 * Verifying permission tickets (the content server's half of CONTRACT §4): decides whether a
 * request may be served under its ticket and, if not, which refusal code names the first failed
 * check. The checks run in the contract's order — bad_ticket, wrong_server, wrong_path, expired,
 * not_yet_valid, wrong_client, no_notice, revoked — and the policy decides which of them apply.
 * Pure: the clock (`nowMs`) and the server's knowledge of notices and revocations
 * (`TicketState`) come in as arguments. Any malformed token yields `bad_ticket`; nothing a
 * client sends can make this throw.
 */
import { addressInPrefix, isCidr } from './address.js';
import { decryptCompact } from './jwe.js';
import type { KeyRing, RefusalCode, TicketClaims, TicketPolicy } from './types.js';

export interface RequestFacts {
  serverId: string;
  /** Decoded item path of the request; must equal the ticket's `path` exactly. */
  path: string;
  clientAddress: string;
  nowMs: number;
}

export interface VerifySettings {
  policy: TicketPolicy;
  clockSkewSeconds: number;
  ring: KeyRing;
}

/** What the content server knows about tickets beyond the token itself. */
export interface TicketState {
  /** Whether the reception's notice of this ticket has arrived (checked under `strict` only). */
  hasNotice(claims: TicketClaims): boolean;
  isRevoked(claims: TicketClaims): boolean;
}

export type VerifyResult = { ok: true; claims: TicketClaims } | { ok: false; code: RefusalCode };

const refuse = (code: RefusalCode): VerifyResult => ({ ok: false, code });

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Reads the decrypted plaintext as claims, or null. Hand-written rather than zod because it runs
 * on every request and only needs type checks. Unknown members are ignored (a newer reception may
 * add one during a rolling upgrade, and only a key holder can put anything in the plaintext), and
 * the result is a fresh object holding the known members only.
 */
export function parseClaims(plaintext: Buffer | string): TicketClaims | null {
  let value: unknown;
  try {
    value = JSON.parse(typeof plaintext === 'string' ? plaintext : plaintext.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const o = value as Record<string, unknown>;
  const { jti, oid, aud, path, iat, nbf, exp, cip } = o;
  if (!isText(jti) || !isText(oid) || !isText(aud)) return null;
  if (typeof path !== 'string' || path.length < 2 || path.charCodeAt(0) !== 47 /* "/" */) return null;
  if (!isSeconds(iat) || !isSeconds(nbf) || !isSeconds(exp)) return null;
  const claims: TicketClaims = { jti, oid, aud, path, iat, nbf, exp };
  if (cip !== undefined) {
    // An unreadable `cip` on a bound ticket must not quietly become "unbound".
    if (typeof cip !== 'string' || !isCidr(cip)) return null;
    claims.cip = cip;
  }
  return claims;
}

/**
 * Checks a ticket against a request. Edge semantics, with `now = floor(nowMs / 1000)` (whole
 * seconds, like `iat`/`nbf`/`exp`) and `skew = clockSkewSeconds`:
 *
 * - expired when `now >= exp + skew`: the ticket is valid while `now < exp + skew`;
 * - not_yet_valid when `now < nbf - skew` (window/strict): valid from `now >= nbf - skew`;
 * - wrong_client (strict, and only when the ticket carries `cip`): the client address, with
 *   IPv4-mapped IPv6 taken as IPv4, is outside `cip`;
 * - no_notice (strict): `state.hasNotice` is false — or there is no `state` at all, because
 *   without one the notice cannot have arrived (fail closed);
 * - revoked (every ticketed policy, checked last): `state.isRevoked`; without `state`, nothing is
 *   revoked.
 *
 * Policy `open` checks nothing (CONTRACT §4) and callers do not need a ticket at all; given one
 * anyway, only its envelope and claims schema are checked, because the result carries the claims.
 *
 * Throws only on a broken caller (non-finite `nowMs`, negative skew, a malformed ring key), never
 * on the token.
 */
export function verifyTicket(
  token: string,
  facts: RequestFacts,
  settings: VerifySettings,
  state?: TicketState,
): VerifyResult {
  checkArguments(facts, settings);
  const opened = decryptCompact(token, settings.ring);
  if (!opened.ok) return refuse('bad_ticket');
  const claims = parseClaims(opened.plaintext);
  if (!claims) return refuse('bad_ticket');
  return checkClaims(claims, facts, settings, state);
}

function checkArguments(facts: RequestFacts, settings: Omit<VerifySettings, 'ring'>): void {
  if (!Number.isFinite(facts.nowMs)) throw new RangeError('nowMs must be finite');
  const skew = settings.clockSkewSeconds;
  if (!Number.isFinite(skew) || skew < 0) throw new RangeError('clockSkewSeconds must be ≥ 0');
}

/**
 * Every check of {@link verifyTicket} after the ticket is opened, for claims that were opened
 * before (`OpenedTickets`): the opening is a pure function of the token, these checks are not —
 * they depend on the request, the clock and the server's notices and revocations, so they run on
 * every request whatever remembered the claims.
 */
export function checkClaims(
  claims: TicketClaims,
  facts: RequestFacts,
  settings: Omit<VerifySettings, 'ring'>,
  state?: TicketState,
): VerifyResult {
  checkArguments(facts, settings);
  const skew = settings.clockSkewSeconds;
  const policy = settings.policy;
  if (policy === 'open') return { ok: true, claims };

  if (claims.aud !== facts.serverId) return refuse('wrong_server');
  if (claims.path !== facts.path) return refuse('wrong_path');

  const now = Math.floor(facts.nowMs / 1000);
  if (now >= claims.exp + skew) return refuse('expired');

  if (policy === 'window' || policy === 'strict') {
    if (now < claims.nbf - skew) return refuse('not_yet_valid');
  }

  if (policy === 'strict') {
    if (claims.cip !== undefined && !addressInPrefix(facts.clientAddress, claims.cip))
      return refuse('wrong_client');
    if (!state?.hasNotice(claims)) return refuse('no_notice');
  }

  if (state?.isRevoked(claims)) return refuse('revoked');
  return { ok: true, claims };
}
