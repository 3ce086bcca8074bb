/**
 * Transfer events from the content servers (`POST /events`, src/protocol/internal.ts): the
 * seed's completion report that frees a server's slot. Each event is applied to the store once
 * (event ids are scoped by server, so a retried batch changes nothing), then mirrored into the
 * slot ledger: `started` marks the ticket's transfer as running (for the wait estimate), a freed
 * slot goes back to the pool at once, and a run of failed transfers counts against the server.
 */
import type { EventBatch } from '../protocol/internal.js';
import type { Store } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { LoadMonitor } from './load-monitor.js';
import type { ReceptionMetrics } from './metrics.js';
import type { SlotLedger } from './slot-ledger.js';

export interface EventIntake {
  /** Returns how many events changed something. */
  apply(batch: EventBatch): Promise<number>;
}

export function buildEventIntake(deps: {
  store: Store;
  monitor: LoadMonitor;
  ledger: SlotLedger;
  metrics: ReceptionMetrics;
  clock: Clock;
  logger: Logger;
}): EventIntake {
  const { store, monitor, ledger, metrics, clock, logger } = deps;
  return {
    async apply(batch) {
      let applied = 0;
      for (const e of batch.events) {
        const now = clock.now();
        // The server's clock may run ahead of ours; a future time would skew service records.
        const at = Math.min(e.at, now);
        const result = await store.applyTransferEvent({
          eventId: `${batch.serverId}/${e.id}`,
          ticketId: e.jti,
          type: e.type,
          delivered: e.delivered,
          at,
        });
        if (!result.applied || !result.ticket) continue;
        const ticket = result.ticket;
        if (ticket.server !== batch.serverId) {
          logger.warn(
            { server: batch.serverId, ticket: ticket.id, owner: ticket.server },
            'event for another server',
          );
        }
        applied += 1;
        metrics.events.inc({ type: e.type });
        if (e.type === 'started' && (ticket.status === 'downloading' || ticket.status === 'issued')) {
          ledger.apply({ kind: 'started', ticket, at });
        }
        if (result.freedSlot)
          ledger.apply({ kind: 'ended', tickets: [ticket], at: now, serverAt: e.at, completion: true });
        if (e.type === 'abandoned' && e.delivered < e.size) monitor.transferFailed(ticket.server);
      }
      return applied;
    },
  };
}
