/**
 * The content server's internal side (CONTRACT §6, docs/PROTOCOL.md), on the private network to
 * the reception: `GET /load` (the load report the reception monitors, the seed's Sa31),
 * `POST /notices` (tickets issued for this server, Sa35), `POST /revocations`, and the read-only
 * `GET /metrics` and `GET /healthz`. Every request other than GET/HEAD — whatever its path, OPTIONS
 * and unknown methods included — needs `Authorization: Bearer <internalToken>`, else 401; the
 * check runs before routing (fastify's onRequest hook also runs for unmatched routes) and compares
 * SHA-256 digests in constant time, so neither the token's length nor its content leaks through
 * timing. Bodies are validated against the protocol's zod schemas; every error answer has the
 * contract's `{"error": {"code", "message"}}` shape.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, LogController } from 'fastify';
import { z } from 'zod';
import { type ErrorCode, errorBody } from '../errors.js';
import { type LoadReport, noticeBatchSchema, PATHS, revocationBatchSchema } from '../protocol/internal.js';
import type { Clock } from '../util/clock.js';
import { fastifyTimeoutOptions, listenerTimeouts } from '../util/listener-timeouts.js';
import type { Logger } from '../util/log.js';
import type { ContentMetrics } from './metrics.js';
import type { TicketRegistry } from './ticket-registry.js';

export interface InternalApiDeps {
  token: string;
  logger: Logger;
  clock: Clock;
  registry: TicketRegistry;
  metrics: ContentMetrics;
  loadReport(catalogSince: string | undefined): LoadReport;
  /** `starting` until the first catalog scan is done. */
  health(): { status: 'ok' | 'starting' | 'draining'; items: number; catalogVersion: string };
}

/** Big enough for the protocol's 10,000-entry batches, small enough to bound a hostile body. */
const BODY_LIMIT = 8 * 1024 * 1024;

const loadQuerySchema = z.object({ catalogSince: z.string().max(128).optional() });

/** A constant-time check of `Authorization: Bearer <token>`. */
export function bearerChecker(token: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    if (typeof header !== 'string') return false;
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!m) return false;
    const given = createHash('sha256')
      .update(m[1] ?? '')
      .digest();
    return timingSafeEqual(given, expected);
  };
}

function fail(code: ErrorCode, message?: string) {
  return errorBody(code, message);
}

export function buildInternalApi(deps: InternalApiDeps) {
  const authorized = bearerChecker(deps.token);
  const app = Fastify({
    ...fastifyTimeoutOptions(listenerTimeouts()),
    loggerInstance: deps.logger,
    // A poll every 500 ms per reception would drown the log; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
  });

  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    if (authorized(req.headers.authorization)) return;
    reply.code(401).header('www-authenticate', 'Bearer').header('cache-control', 'no-store');
    return reply.send(fail('unauthorized'));
  });

  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).send(fail('not_found'));
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.code(413).send(fail('body_too_large', 'The request body is too large.'));
    if (status === 415) return reply.code(415).send(fail('unsupported_media_type'));
    if (status >= 400 && status < 500) return reply.code(400).send(fail('bad_request', err.message));
    deps.logger.error({ err }, 'internal API request failed');
    return reply.code(500).send(fail('internal_error'));
  });

  app.get(PATHS.content.load, async (req, reply) => {
    const q = loadQuerySchema.safeParse(req.query);
    if (!q.success) return reply.code(400).send(fail('bad_request', 'catalogSince must be a string'));
    reply.header('cache-control', 'no-store');
    return deps.loadReport(q.data.catalogSince);
  });

  app.post(PATHS.content.notices, async (req, reply) => {
    const batch = noticeBatchSchema.safeParse(req.body);
    if (!batch.success) return reply.code(400).send(fail('bad_request', z.prettifyError(batch.error)));
    return { accepted: deps.registry.addNotices(batch.data.notices, deps.clock.now()) };
  });

  app.post(PATHS.content.revocations, async (req, reply) => {
    const batch = revocationBatchSchema.safeParse(req.body);
    if (!batch.success) return reply.code(400).send(fail('bad_request', z.prettifyError(batch.error)));
    return { accepted: deps.registry.addRevocations(batch.data.revocations, deps.clock.now()) };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get('/healthz', async (_req, reply) => {
    const h = deps.health();
    reply.header('cache-control', 'no-store');
    return reply.code(h.status === 'ok' ? 200 : 503).send(h);
  });

  return app;
}
