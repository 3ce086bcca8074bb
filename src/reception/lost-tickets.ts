/**
 * Tickets a content server lost (issue 8, "slots never leak"). A content server keeps its
 * transfers, notices and revocations in memory only; when it dies, whatever it held is gone, and
 * the transfer events that would have freed those slots never come. Two facts say so:
 *
 * - its load report carries a new `instanceId`: it restarted (perhaps too fast for a poll to fail);
 * - it has given no good report for longer than `claimSeconds`: whatever it was serving has
 *   stalled longer than a claim may, so a live client has long asked for a fresh ticket.
 *
 * Either way every outstanding ticket of that server (`issued` or `downloading`) is ended as
 * abandoned (`lapsed` in the store, as an `abandoned` event would) and its slot freed — except
 * tickets the new instance reports in use (issued after the restart, already being served).
 * `verdict` is pure; `buildLostTickets` does the store work.
 */
import type { LoadReport, Notice } from '../protocol/internal.js';
import type { Store } from '../store/types.js';
import type { Logger } from '../util/log.js';
import type { SlotLedger } from './slot-ledger.js';

export interface ServerFacts {
  /** The previous good report (from the instance we knew), if any. */
  previous: LoadReport | undefined;
  /** The report just received, if the poll succeeded. */
  current: LoadReport | undefined;
  /** Local time of the last good report. */
  lastGoodAt: number | undefined;
  /** Local time the tickets of this server were last ended for a long silence. */
  sweptForSilenceAt: number | undefined;
  now: number;
  claimMs: number;
}

export type Verdict =
  | { kind: 'none' }
  | { kind: 'restarted'; keep: ReadonlySet<string> }
  | { kind: 'silent' };

/** Whether the tickets a server held must be ended now, and why. Pure. */
export function verdict(f: ServerFacts): Verdict {
  const before = f.previous?.instanceId;
  const after = f.current?.instanceId;
  if (before !== undefined && after !== undefined && before !== after) {
    return { kind: 'restarted', keep: new Set(f.current?.activeTickets ?? []) };
  }
  if (f.current === undefined && f.lastGoodAt !== undefined && f.now - f.lastGoodAt > f.claimMs) {
    // Once per silence: a later sweep would only find tickets issued since (there are none while
    // it is down, and a ticket issued just before it went down was ended here already).
    if (f.sweptForSilenceAt === undefined || f.sweptForSilenceAt < f.lastGoodAt) return { kind: 'silent' };
  }
  return { kind: 'none' };
}

export interface LostTickets {
  /** Ends the server's outstanding tickets (but `keep`); returns how many were ended. */
  end(serverId: string, why: 'restarted' | 'silent', keep?: ReadonlySet<string>): Promise<number>;
}

export function buildLostTickets(deps: {
  store: Store;
  ledger: SlotLedger;
  now: () => number;
  logger: Logger;
}): LostTickets {
  const { store, ledger, logger } = deps;
  return {
    async end(serverId, why, keep = new Set()) {
      const ids = (await store.outstanding()).get(serverId) ?? new Set<string>();
      let ended = 0;
      for (const id of ids) {
        if (keep.has(id)) continue;
        const at = deps.now();
        // One atomic step per ticket: a ticket fulfilled meanwhile (a late event) is left alone.
        const t = await store.endTicket(id, 'lapsed', at);
        if (!t) continue;
        // `at` as the server-side time too: a report made before this must not count it as in use.
        ledger.apply({ kind: 'ended', tickets: [t], at, serverAt: at, completion: false });
        ended++;
      }
      if (ended > 0 || why === 'restarted')
        logger.warn(
          { server: serverId, why, ended },
          why === 'restarted'
            ? 'content server restarted: its tickets ended as abandoned, slots freed'
            : 'content server silent longer than claimSeconds: its tickets ended as abandoned, slots freed',
        );
      return ended;
    },
  };
}

/**
 * The notices a restarted server must get again: tickets that may still be used — not fulfilled
 * (the old instance had revoked those locally, and that is lost too), revoked or failed. A ticket
 * ended only for the restart (`lapsed`) stays usable: its client may still come.
 */
export async function liveNotices(store: Store, notices: Notice[]): Promise<Notice[]> {
  const out: Notice[] = [];
  const orders = new Map<string, Awaited<ReturnType<Store['getOrder']>>>();
  for (const n of notices) {
    if (!orders.has(n.oid)) orders.set(n.oid, await store.getOrder(n.oid));
    const t = orders.get(n.oid)?.tickets.find((x) => x.id === n.jti);
    if (t && (t.status === 'issued' || t.status === 'downloading' || t.status === 'lapsed')) out.push(n);
  }
  return out;
}
