/**
 * The messages of the internal network (CONTRACT §6), as schemas both sides validate against.
 * docs/PROTOCOL.md explains them in prose. Everything that is not GET/HEAD carries
 * `Authorization: Bearer <internalToken>`.
 *
 *   reception ──GET  {content}/load?catalogSince=V──▶ content   load report (the seed's Sa31)
 *   reception ──POST {content}/notices──────────────▶ content   ticket notices (Sa35), batched
 *   reception ──POST {content}/revocations──────────▶ content   revoked orders / tickets, batched
 *   content   ──POST {reception}/events─────────────▶ reception transfer events, batched, retried
 *   operator  ──POST {reception}/orders/{id}/revoke─▶ reception `rushgate revoke`
 */
import { z } from 'zod';

export const PATHS = {
  content: {
    load: '/load',
    notices: '/notices',
    revocations: '/revocations',
  },
  reception: {
    events: '/events',
    revokeOrder: (orderId: string) => `/orders/${encodeURIComponent(orderId)}/revoke`,
    /** CONTRACT §7: a refunded purchase, `{"iss", "sub"}`. */
    grantRevocations: '/grants/revocations',
  },
} as const;

export const catalogEntrySchema = z.object({
  path: z.string(),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type CatalogEntry = z.infer<typeof catalogEntrySchema>;

/** `GET /load`: the content server's load condition. */
export const loadReportSchema = z.object({
  serverId: z.string(),
  /**
   * New at every start of the content server. A change tells the reception the server restarted:
   * whatever the old instance held (transfers, notices, revocations) is gone. Optional so that an
   * older content server's report still parses.
   */
  instanceId: z.string().min(1).max(64).optional(),
  /** Server clock, ms since the epoch, when the report was made. */
  at: z.number(),
  /** Transfers in progress right now (responses being written). */
  active: z.number().int().min(0),
  /** Ticket ids with at least one transfer in progress; lets the reception reconcile reservations. */
  activeTickets: z.array(z.string()),
  /** Transfers in progress that no ticket covers (policy `open`). */
  untrackedActive: z.number().int().min(0),
  capacity: z.number().int().min(1),
  rssBytes: z.number().min(0),
  memoryLimitBytes: z.number().nullable(),
  bytesPerSecond: z.number().min(0),
  /** Durations of recently completed transfers, newest last (the seed's "record of the required times"). */
  serviceTimesMs: z.array(z.number().min(0)),
  draining: z.boolean(),
  /** Changes whenever the catalog changes. */
  catalogVersion: z.string(),
  /** Present only when the poller's `catalogSince` differs from `catalogVersion`. */
  catalog: z.array(catalogEntrySchema).optional(),
});
export type LoadReport = z.infer<typeof loadReportSchema>;

/** `POST /notices`: tickets issued for this server (needed under policy `strict`). */
export const noticeSchema = z.object({
  jti: z.string().min(1).max(128),
  oid: z.string().min(1).max(128),
  path: z.string().min(1).max(4096),
  /** The ticket's `exp`, seconds since the epoch: the notice may be dropped after exp + skew. */
  exp: z.number().int(),
});
export type Notice = z.infer<typeof noticeSchema>;
export const noticeBatchSchema = z.object({ notices: z.array(noticeSchema).min(1).max(10_000) });
export type NoticeBatch = z.infer<typeof noticeBatchSchema>;
export const noticeAckSchema = z.object({ accepted: z.number().int() });

/** `POST /revocations`: every ticket of an order, or one ticket, refused until `until`. */
export const revocationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('order'), orderId: z.string().min(1).max(128), until: z.number().int() }),
  z.object({ kind: z.literal('ticket'), ticketId: z.string().min(1).max(128), until: z.number().int() }),
]);
export type Revocation = z.infer<typeof revocationSchema>;
export const revocationBatchSchema = z.object({ revocations: z.array(revocationSchema).min(1).max(10_000) });
export type RevocationBatch = z.infer<typeof revocationBatchSchema>;

/**
 * Transfer events, content server → reception. `id` is unique per event so that a batch retried
 * after a lost answer is applied once. `delivered` counts distinct bytes of the item delivered
 * under the ticket so far; `size` is the item's size.
 */
export const transferEventSchema = z.object({
  id: z.string().min(1).max(128),
  type: z.enum(['started', 'fulfilled', 'abandoned']),
  jti: z.string().min(1).max(128),
  oid: z.string().min(1).max(128),
  path: z.string(),
  at: z.number(),
  delivered: z.number().int().min(0),
  size: z.number().int().min(0),
  /** For `fulfilled`: ms from the ticket's first byte to its last (service time). */
  durationMs: z.number().min(0).optional(),
});
export type TransferEvent = z.infer<typeof transferEventSchema>;
export const eventBatchSchema = z.object({
  serverId: z.string(),
  events: z.array(transferEventSchema).min(1).max(10_000),
});
export type EventBatch = z.infer<typeof eventBatchSchema>;
