/**
 * Unused tickets while clients wait (issue 10, fair shares). A ticket holds its slot from issue
 * until it is used or `claimSeconds` pass: room for a slow client when nobody else wants the slot.
 * While anyone waits in line, the slot is one a waiter could use now, and a ticket taken and never
 * used (a bot hoarding its share, a tab closed after the redirect) idles it for the whole claim.
 * An honest client uses its ticket within a second of the `201`/`303`, so while the line is not
 * empty an unused ticket frees its slot after `claimSecondsWhileWaiting` instead.
 *
 * The ticket is revoked on its content servers as well (`410 revoked`), and its client asks for a
 * fresh ticket for the same order, as after any lapse (CONTRACT §3, §5). Freeing only the slot and
 * leaving the ticket valid would let a late claim take room its server has just been given for
 * the next waiter (a content server counts transfers, not tickets it was told of), and would let
 * a client collect valid tickets past `limits.ticketsPerClient` by letting each lapse in turn: the
 * attacked-rush bench's hostile prefix collected 6 in one rush. A ticket its server reports in
 * use (the `started` event still on its way) is never ended.
 */
import type { Revocation } from '../protocol/internal.js';
import type { Store, TicketRecord } from '../store/types.js';
import type { Logger } from '../util/log.js';
import type { SlotLedger } from './slot-ledger.js';

export interface UnusedTickets {
  /** Ends what is due while `waiting` clients are in line; returns the tickets ended. */
  lapse(now: number, waiting: number): Promise<TicketRecord[]>;
}

export function buildUnusedTickets(deps: {
  store: Store;
  ledger: SlotLedger;
  logger: Logger;
  claimSeconds: number;
  claimSecondsWhileWaiting: number;
  /** The tickets this server's latest load report says are being served (at most its capacity). */
  inUse(server: string): readonly string[] | undefined;
  /** Tells the content servers (the notice dispatcher, which retries the ones that are down). */
  revoke(revocations: readonly Revocation[]): Promise<unknown>;
  clockSkewSeconds: number;
}): UnusedTickets {
  const { store, ledger, logger } = deps;
  const windowMs = Math.min(deps.claimSeconds, deps.claimSecondsWhileWaiting) * 1000;
  return {
    async lapse(now, waiting) {
      // Without anyone waiting the full claim stands (the store's own lapse ends those).
      if (waiting <= 0 || windowMs >= deps.claimSeconds * 1000) return [];
      const ended: TicketRecord[] = [];
      for (const { id, server } of ledger.unusedSince(now - windowMs)) {
        if (deps.inUse(server)?.includes(id)) continue;
        const t = await store.endTicket(id, 'lapsed', now);
        if (t) ended.push(t);
      }
      if (ended.length > 0) {
        ledger.apply({ kind: 'ended', tickets: ended, at: now, completion: true });
        // Not awaited: a content server that is down must not hold up the housekeeping that
        // hands the freed slots on; the dispatcher keeps what failed and sends it again.
        void deps
          .revoke(
            ended.map((t) => ({
              kind: 'ticket' as const,
              ticketId: t.id,
              until: Math.ceil(t.expiresAt / 1000) + deps.clockSkewSeconds,
            })),
          )
          .catch((err: Error) => logger.warn({ err: err.message }, 'unused tickets not revoked'));
        logger.info({ count: ended.length, waiting }, 'unused tickets freed their slots for the line');
      }
      return ended;
    },
  };
}
