/**
 * Where a grant travels on the reception's public side (CONTRACT §7): in a POST body's `grant`
 * or an `Authorization: Bearer` header, in a link's `?grant=`, and — for a browser that waits —
 * in a cookie named after the item, so a refresh or the waiting page's retry (`POST /api/orders`
 * from its script) keeps it while the URL it retries carries no grant, and a grant for one item is
 * never sent along with an order for another. Pure; the acceptor decides when to call it.
 */
import { createHash } from 'node:crypto';
import { MAX_GRANT_LENGTH } from './verify.js';

export const GRANT_COOKIE = 'rushgate_grant';

/** `rushgate_grant_<16 base64url characters of the item's SHA-256>`. */
export function grantCookieName(item: string): string {
  return `${GRANT_COOKIE}_${createHash('sha256').update(item).digest('base64url').slice(0, 16)}`;
}
const TOKEN_SHAPE = /^[A-Za-z0-9_.-]+$/;

function usable(value: string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  return value.length > 0 && value.length <= MAX_GRANT_LENGTH ? value : undefined;
}

/** The body's `grant`, else a Bearer token. */
export function grantOfPost(body: string | undefined, authorization: string | undefined): string | undefined {
  if (body !== undefined) return body;
  const m = authorization === undefined ? null : /^Bearer\s+(\S+)$/i.exec(authorization);
  return usable(m?.[1]);
}

/** A link's `?grant=`, else the grant cookie a waiting browser holds for this item. */
export function grantOfBrowser(
  rawUrl: string,
  cookieHeader: string | undefined,
  item: string,
): string | undefined {
  const q = rawUrl.indexOf('?');
  if (q >= 0) {
    const fromQuery = new URLSearchParams(rawUrl.slice(q + 1)).get('grant');
    if (fromQuery !== null) return usable(fromQuery) ?? '';
  }
  return grantCookieOf(cookieHeader, item);
}

export function grantCookieOf(cookieHeader: string | undefined, item: string): string | undefined {
  if (!cookieHeader) return undefined;
  const name = grantCookieName(item);
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return TOKEN_SHAPE.test(value) ? usable(value) : undefined;
  }
  return undefined;
}

/**
 * The cookie that keeps a waiting browser's grant for one item; `maxAge` 0 clears it. Only a
 * token's own characters go in. SameSite=Lax: another site cannot make the browser order with it.
 */
export function grantCookie(item: string, grant: string, maxAgeSeconds: number): string {
  const value = TOKEN_SHAPE.test(grant) ? grant : '';
  return `${grantCookieName(item)}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}`;
}
