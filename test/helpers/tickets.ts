/**
 * A ticket minted for a unit test: server `a`, valid for 600 s from `nowMs`, bound to the client's
 * exact address under `strict` (the defaults a content server's checks are tested against).
 */
import { randomBytes } from 'node:crypto';
import { issueTicket, type KeyRing, type TicketPolicy } from '../../src/tickets/index.js';

export function mintTestTicket(
  ring: KeyRing,
  policy: TicketPolicy,
  t: { orderId: string; serverId: string; path: string; client: string; nowMs: number },
) {
  return issueTicket(
    {
      ticketId: `t-${randomBytes(4).toString('hex')}`,
      orderId: t.orderId,
      serverId: t.serverId,
      path: t.path,
      clientAddress: t.client,
      nowMs: t.nowMs,
    },
    {
      policy,
      ttlSeconds: 600,
      startDelaySeconds: 0,
      bindClientAddress: policy === 'strict',
      bindPrefix: { ipv4: 32, ipv6: 64 },
    },
    ring,
  );
}
