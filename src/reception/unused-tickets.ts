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
 *
 * The window is never shorter than twice the 95th percentile of how long this reception's used
 * tickets took to be used lately (`SlotLedger.claimMs`), up to five times the configured one
 * and never past `claimSeconds`. A rush loads the
 * machines, and an honest buyer's answer, connect and `started` event then take longer: in the
 * 10,000-buyer rehearsal (bench/rehearsal.ts) a fixed 2 s revoked the tickets of buyers already
 * on their way, hundreds of them per run, who then had to ask again behind the whole line. A
 * hoarder's tickets are never used, so they do not lengthen it.
 */
import type { Revocation } from '../protocol/internal.js';
import type { Store, TicketRecord } from '../store/types.js';
import type { Logger } from '../util/log.js';
import type { SlotLedger } from './slot-ledger.js';

export interface UnusedTickets {
  /** Ends what is due while `waiting` clients are in line; returns the tickets ended. */
  lapse(now: number, waiting: number): Promise<TicketRecord[]>;
  /** How long a ticket may stay unused while anyone waits, as things stand. */
  windowMs(): number;
}

/** The window covers this quantile of recent claim times, times the margin. */
const CLAIM_QUANTILE = 0.95;
const CLAIM_MARGIN = 2;
/**
 * Clients that use their tickets late on purpose could stretch the window step by step; it never
 * grows past this many times the configured one (10 s at the default 2 s).
 */
const MAX_STRETCH = 5;
/** Fewer claim times than this and the configured window stands alone. */
const MIN_CLAIM_SAMPLES = 20;

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
  const claimMs = deps.claimSeconds * 1000;
  const floorMs = Math.min(claimMs, deps.claimSecondsWhileWaiting * 1000);
  const ceilingMs = Math.min(claimMs, MAX_STRETCH * floorMs);
  /** The window now: the configured one, stretched to what used tickets have lately needed. */
  const windowOf = (): number => {
    const p95 = ledger.claimMs(CLAIM_QUANTILE, MIN_CLAIM_SAMPLES);
    return p95 === undefined ? floorMs : Math.min(ceilingMs, Math.max(floorMs, CLAIM_MARGIN * p95));
  };
  return {
    windowMs: windowOf,
    async lapse(now, waiting) {
      const windowMs = windowOf();
      // Without anyone waiting the full claim stands (the store's own lapse ends those).
      if (waiting <= 0 || windowMs >= claimMs) return [];
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
