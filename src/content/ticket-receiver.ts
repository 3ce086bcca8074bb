/**
 * The seed's permission ticket receiver 141 (FIG. 4; steps Sb31–Sb32 of FIG. 6B): takes the
 * ticket part (107) and the item location (108) out of the request URL
 * (`/t/{ticket}{item path}`, or just `{item path}` under policy `open`), decrypts the ticket and
 * checks it against what the reception announced in advance — the notices and revocations held
 * in the `TicketRegistry`. A ticket's decryption is remembered (`OpenedTickets`), its checks run on
 * every request. It never calls the reception: everything it needs is in the ticket or
 * already here. Pure apart from the registry it reads; the clock comes in as `nowMs`.
 */
import type { TicketSettings } from '../config/schema.js';
import { type ItemPathResult, itemPathFromUrlPath } from '../items/item-path.js';
import {
  checkClaims,
  type KeyRing,
  OpenedTickets,
  type RefusalCode,
  splitTicketPath,
  type TicketClaims,
  type TicketState,
} from '../tickets/index.js';

export type Reception =
  /** The URL path is not a valid item path (traversal, NUL, encoded slash, ...). */
  | { kind: 'bad_path'; reason: string }
  | { kind: 'refused'; code: RefusalCode; itemPath?: string }
  /** `claims` is null under policy `open`, where the URL alone is the ticket. */
  | { kind: 'admitted'; itemPath: string; claims: TicketClaims | null };

export interface TicketReceiver {
  receive(rawUrl: string, clientAddress: string, nowMs: number): Reception;
}

/** Distinct raw item paths remembered; past it the memory starts over (a flood of odd paths only costs the parse). */
const PATH_MEMORY = 1024;

/**
 * `itemPathFromUrlPath` with a memory of valid paths: in a rush thousands of clients ask for the
 * same few items, and decoding and checking the same string each time (a few µs) was a visible
 * share of a small download's cost. Pure function of the string, so remembering is exact.
 */
function rememberingItemPaths(): (rawPath: string) => ItemPathResult {
  const known = new Map<string, ItemPathResult>();
  return (rawPath) => {
    const hit = known.get(rawPath);
    if (hit) return hit;
    const result = itemPathFromUrlPath(rawPath);
    if (result.ok) {
      if (known.size >= PATH_MEMORY) known.clear();
      known.set(rawPath, result);
    }
    return result;
  };
}

export function buildTicketReceiver(options: {
  serverId: string;
  tickets: Pick<TicketSettings, 'policy' | 'clockSkewSeconds'>;
  ring: KeyRing;
  state: TicketState;
  /** Opened tickets remembered (default OPENED_TICKETS_CAPACITY). */
  openedTickets?: number;
}): TicketReceiver {
  const { serverId, state } = options;
  const settings = {
    policy: options.tickets.policy,
    clockSkewSeconds: options.tickets.clockSkewSeconds,
  };
  const open = settings.policy === 'open';
  const itemPathOf = rememberingItemPaths();
  // Opening a ticket is remembered; judging it is not (see OpenedTickets and checkClaims).
  const opened = new OpenedTickets(options.ring, options.openedTickets);

  return {
    receive(rawUrl, clientAddress, nowMs) {
      const q = rawUrl.indexOf('?');
      const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
      if (open) {
        const item = itemPathOf(rawPath);
        if (!item.ok) return { kind: 'bad_path', reason: item.reason };
        return { kind: 'admitted', itemPath: item.path, claims: null };
      }
      const split = splitTicketPath(rawPath);
      // No ticket at all is the first check failing: there is nothing to decrypt.
      if (!split) {
        const item = itemPathOf(rawPath);
        if (!item.ok) return { kind: 'bad_path', reason: item.reason };
        return { kind: 'refused', code: 'bad_ticket', itemPath: item.path };
      }
      // A malformed item path is a malformed request, answered before the ticket is judged: it
      // can never be the path a ticket names, and it must never reach the file system.
      const item = itemPathOf(split.itemRawPath);
      if (!item.ok) return { kind: 'bad_path', reason: item.reason };
      const claims = opened.open(split.token);
      if (!claims) return { kind: 'refused', code: 'bad_ticket', itemPath: item.path };
      const verdict = checkClaims(
        claims,
        { serverId, path: item.path, clientAddress, nowMs },
        settings,
        state,
      );
      if (!verdict.ok) return { kind: 'refused', code: verdict.code, itemPath: item.path };
      return { kind: 'admitted', itemPath: item.path, claims: verdict.claims };
    },
  };
}
