/**
 * Ticket URLs (CONTRACT §4, the seed's FIG. 7 and FIG. 8): where the reception sends a client —
 * `{content server publicUrl}/t/{ticket}{item path}`, or `{publicUrl}{item path}` under policy
 * `open`, whose "ticket" is the URL alone. The ticket sits in its own path segment so the item
 * path after it stays the file's real name (what browsers save the download as).
 */
import { encodeItemPath } from '../items/item-path.js';
import type { TicketPolicy } from './types.js';

/** The path segment that introduces a ticket. */
export const TICKET_PREFIX = '/t/';

const TOKEN_CHARS = /^[A-Za-z0-9_.-]+$/;

/**
 * Builds the URL a client is sent to. `itemPath` is the decoded item path (`/docs/a b.pdf`); each
 * segment is percent-encoded here. `token` may be null only under `open`, and is ignored there.
 * Trailing slashes on `publicUrl` are dropped so a configured "http://host/" does not yield "//t/".
 */
export function ticketUrl(
  publicUrl: string,
  token: string | null,
  itemPath: string,
  policy: TicketPolicy,
): string {
  const base = publicUrl.replace(/\/+$/, '');
  const encoded = encodeItemPath(itemPath);
  if (policy === 'open') return `${base}${encoded}`;
  // Our tokens are URL-safe by construction; anything else would need escaping and is a bug.
  if (token === null || !TOKEN_CHARS.test(token))
    throw new TypeError(`policy ${policy} needs a ticket token`);
  return `${base}${TICKET_PREFIX}${token}${encoded}`;
}

/**
 * The content server's inverse: splits a raw request path `/t/{ticket}/rest…` into the token and
 * the still-encoded item path (`/rest…`), or returns null when the path carries no ticket. The
 * token is not checked here; `verifyTicket` refuses anything malformed as `bad_ticket`.
 */
export function splitTicketPath(rawPath: string): { token: string; itemRawPath: string } | null {
  if (!rawPath.startsWith(TICKET_PREFIX)) return null;
  const end = rawPath.indexOf('/', TICKET_PREFIX.length);
  if (end === -1) return null;
  return { token: rawPath.slice(TICKET_PREFIX.length, end), itemRawPath: rawPath.slice(end) };
}
