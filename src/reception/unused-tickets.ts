/**
 * Unused tickets while clients wait (issue 10, fair shares). A ticket holds its slot from issue
 * until it is used or `claimSeconds` pass: room for a slow client when nobody else wants the slot.
 * While anyone waits in line, the slot is one a waiter could use now, and a ticket taken and never
 * used (a bot hoarding its share, a tab closed after the redirect) idles it for the whole claim.
 * An honest client uses its ticket within a second of the `201`/`303`, so while the line is not
 * empty an unused ticket frees its slot after `claimSecondsWhileWaiting` instead.
 *
 * Only the slot is freed: the ticket stays valid until it expires, and a late client is served if
 * its content server has room then (the content server checks its own capacity, and the `started`
 * event makes the ticket count again), or else asks for a fresh ticket like any client whose
 * ticket lapsed. A ticket its server reports in use (the `started` event still on its way) is
 * never ended.
 */
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
        logger.info({ count: ended.length, waiting }, 'unused tickets freed their slots for the line');
      }
      return ended;
    },
  };
}
