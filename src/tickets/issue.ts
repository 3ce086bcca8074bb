/**
 * Issuing permission tickets (the reception's half of CONTRACT §4; the seed's FIG. 7–10): turns
 * an order's allocation into claims — which server, which item, when valid, from which client
 * prefix — and seals them with the ring's first key, so that the client can carry the ticket but
 * neither read nor alter it. Pure apart from the random IV: the clock comes in as `nowMs`.
 */
import { prefixOf } from './address.js';
import { encryptCompact } from './jwe.js';
import type { KeyRing, TicketClaims, TicketPolicy } from './types.js';

export interface IssueRequest {
  ticketId: string;
  orderId: string;
  serverId: string;
  /** Decoded item path, e.g. `/apps/editor-2.1.dmg`; the content server compares it verbatim. */
  path: string;
  clientAddress: string;
  nowMs: number;
}

export interface IssueSettings {
  policy: TicketPolicy;
  ttlSeconds: number;
  startDelaySeconds: number;
  bindClientAddress: boolean;
  bindPrefix: { ipv4: number; ipv6: number };
}

function nonEmpty(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${name} must be a non-empty string`);
}

function wholeSeconds(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}`);
  }
}

/**
 * The claims a ticket would carry; split out so callers (and tests) can see the times without
 * decrypting. Times are whole seconds, `iat = floor(nowMs / 1000)`, and the verifier floors its
 * clock the same way, so a ticket is valid in the very second it is issued.
 *
 * - `nbf = iat + startDelaySeconds` under `window`/`strict` (the seed's FIG. 10 start time); under
 *   `open`/`expiring` nothing checks `nbf`, so it is `iat`.
 * - `exp = iat + ttlSeconds`: valid while `now < exp`, so the ticket lives exactly ttlSeconds.
 *   With startDelaySeconds ≥ ttlSeconds the window is empty; the settings are taken as given.
 * - `cip` only when `bindClientAddress`: the client address masked to `bindPrefix` (an
 *   IPv4-mapped IPv6 client is bound by its IPv4 prefix).
 */
export function ticketClaims(req: IssueRequest, settings: IssueSettings): TicketClaims {
  nonEmpty('ticketId', req.ticketId);
  nonEmpty('orderId', req.orderId);
  nonEmpty('serverId', req.serverId);
  if (typeof req.path !== 'string' || !req.path.startsWith('/'))
    throw new TypeError('path must start with "/"');
  if (typeof req.nowMs !== 'number' || !Number.isFinite(req.nowMs) || req.nowMs < 0) {
    throw new RangeError('nowMs must be a finite, non-negative number');
  }
  wholeSeconds('ttlSeconds', settings.ttlSeconds, 1);
  wholeSeconds('startDelaySeconds', settings.startDelaySeconds, 0);
  const iat = Math.floor(req.nowMs / 1000);
  const delayed = settings.policy === 'window' || settings.policy === 'strict';
  const claims: TicketClaims = {
    jti: req.ticketId,
    oid: req.orderId,
    aud: req.serverId,
    path: req.path,
    iat,
    nbf: delayed ? iat + settings.startDelaySeconds : iat,
    exp: iat + settings.ttlSeconds,
  };
  if (settings.bindClientAddress) claims.cip = prefixOf(req.clientAddress, settings.bindPrefix);
  return claims;
}

/**
 * Issues a ticket under the ring's first key. Under policy `open` a token is still returned (the
 * claims are the reception's record of the ticket); callers just leave it out of the URL
 * (`ticketUrl` in url.ts does). Throws on an empty ring or malformed request — programming or
 * configuration errors, never client input.
 */
export function issueTicket(
  req: IssueRequest,
  settings: IssueSettings,
  ring: KeyRing,
): { token: string; claims: TicketClaims } {
  const key = ring[0];
  if (!key) throw new Error('ticket key ring is empty');
  const claims = ticketClaims(req, settings);
  const token = encryptCompact(Buffer.from(JSON.stringify(claims), 'utf8'), key);
  return { token, claims };
}
