/**
 * Permission ticket issuing (the seed's module 134, step Sa35/Sa55): order and ticket ids, the
 * sealed ticket under the configured policy, its URL, and the slot reservation — the ticket *is*
 * the reservation: `store.reserveTicket` checks the server's outstanding tickets against its
 * capacity and records the ticket in one atomic step, so stale load reports (or a second
 * reception on the same store) can never overrun a server.
 */
import type { Config, ContentServerConfig } from '../config/schema.js';
import type { Notice } from '../protocol/internal.js';
import type { ReserveResult, Store } from '../store/index.js';
import { issueTicket, type KeyRing, ticketUrl } from '../tickets/index.js';
import { idSource } from './ids.js';

export interface TicketIssuer {
  newOrderId(): string;
  /** Seals a ticket for the order on the server and reserves its slot. */
  reserve(req: {
    orderId: string;
    item: string;
    clientAddress: string;
    server: ContentServerConfig;
    capacity: number;
    untracked: number;
    now: number;
  }): Promise<{ result: ReserveResult; notice: Notice }>;
}

export function buildTicketIssuer(deps: { config: Config; ring: KeyRing; store: Store }): TicketIssuer {
  const { config, ring, store } = deps;
  const settings = config.reception.tickets;
  const newId = idSource();
  return {
    newOrderId: newId,
    async reserve(req) {
      const ticketId = newId();
      const { token, claims } = issueTicket(
        {
          ticketId,
          orderId: req.orderId,
          serverId: req.server.id,
          path: req.item,
          clientAddress: req.clientAddress,
          nowMs: req.now,
        },
        settings,
        ring,
      );
      const notBefore = claims.nbf * 1000;
      const result = await store.reserveTicket(
        {
          id: ticketId,
          orderId: req.orderId,
          server: req.server.id,
          url: ticketUrl(req.server.publicUrl, token, req.item, settings.policy),
          issuedAt: req.now,
          notBefore,
          expiresAt: claims.exp * 1000,
          // A ticket that cannot be used yet (startDelaySeconds) gets its claim window from nbf.
          claimBy: Math.max(req.now, notBefore) + settings.claimSeconds * 1000,
        },
        { capacity: req.capacity, untracked: req.untracked, maxTicketsPerOrder: settings.maxTicketsPerOrder },
      );
      return { result, notice: { jti: ticketId, oid: req.orderId, path: req.item, exp: claims.exp } };
    },
  };
}
