/**
 * Where a grant travels on the reception's public side (CONTRACT §7): in a POST body's `grant`
 * or an `Authorization: Bearer` header, in a link's `?grant=`, and — for a browser that waits —
 * in a cookie scoped to the item's path, so a refresh or the waiting page's retry keeps it while
 * the URL it retries carries no grant. Pure string handling; the acceptor decides when to call it.
 */
import { MAX_GRANT_LENGTH } from './verify.js';

export const GRANT_COOKIE = 'rushgate_grant';
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

/** A link's `?grant=`, else the grant cookie a waiting browser holds. */
export function grantOfBrowser(rawUrl: string, cookieHeader: string | undefined): string | undefined {
  const q = rawUrl.indexOf('?');
  if (q >= 0) {
    const fromQuery = new URLSearchParams(rawUrl.slice(q + 1)).get('grant');
    if (fromQuery !== null) return usable(fromQuery) ?? '';
  }
  return grantCookieOf(cookieHeader);
}

export function grantCookieOf(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== GRANT_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return TOKEN_SHAPE.test(value) ? usable(value) : undefined;
  }
  return undefined;
}

/** The cookie that keeps a waiting browser's grant; `maxAge` 0 clears it. Only a token's own characters go in. */
export function grantCookie(itemUrlPath: string, grant: string, maxAgeSeconds: number): string {
  const value = TOKEN_SHAPE.test(grant) ? grant : '';
  return `${GRANT_COOKIE}=${value}; Path=${itemUrlPath}; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}`;
}
