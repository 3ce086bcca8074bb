/**
 * The reception's internal port (CONTRACT §6): transfer events from the content servers
 * (`POST /events`), the operator's `POST /orders/{orderId}/revoke` (what `rushgate revoke`
 * calls), Prometheus text at `GET /metrics`, `GET /healthz`, and `GET /status` — a JSON picture
 * of every content server as the reception sees it, with the latest allocation's explanation and
 * the items whose copies disagree (what the dashboard shows). Every request other than GET/HEAD,
 * whatever its path and OPTIONS included, needs the bearer token, compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { eventBatchSchema, PATHS } from '../protocol/internal.js';
import { fastifyTimeoutOptions, listenerTimeouts } from '../util/listener-timeouts.js';
import type { Logger } from '../util/log.js';
import { renderDashboard } from './dashboard.js';
import type { EventIntake } from './event-intake.js';
import type { ReceptionMetrics } from './metrics.js';
import type { OrderDesk } from './order-desk.js';
import { errorHandler, sendError } from './replies.js';
import type { StatusView } from './status-view.js';

/** Event batches can be large (10,000 events); anything bigger is not ours. */
const INTERNAL_BODY_LIMIT = 8 * 1024 * 1024;

/** Compares digests, so neither the content nor the length of the token leaks through timing. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string') return false;
  const m = /^Bearer (.+)$/.exec(header);
  if (!m) return false;
  const a = createHash('sha256')
    .update(m[1] ?? '')
    .digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

const purchaseRevocation = z.strictObject({
  iss: z.string().min(1).max(512),
  sub: z.string().min(1).max(512),
});

export function buildInternalApi(deps: {
  config: Config;
  desk: OrderDesk;
  intake: EventIntake;
  metrics: ReceptionMetrics;
  logger: Logger;
  ready(): boolean;
  status(): StatusView;
}): FastifyInstance {
  const { config, desk, intake, metrics, logger } = deps;
  const token = config.secrets.internalToken;
  const serverIds = new Set(config.contentServers.map((s) => s.id));
  const app = Fastify({
    ...fastifyTimeoutOptions(listenerTimeouts()),
    loggerInstance: logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: INTERNAL_BODY_LIMIT,
    exposeHeadRoutes: true,
    return503OnClosing: false,
  });
  app.setErrorHandler(errorHandler(logger));
  app.setNotFoundHandler((_req, reply) => sendError(reply, 'not_found'));

  // Before routing and body parsing, so that unknown paths and OPTIONS are refused alike.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    if (!bearerMatches(req.headers.authorization, token)) return sendError(reply, 'unauthorized');
  });

  app.post('/events', async (req, reply) => {
    const parsed = eventBatchSchema.safeParse(req.body);
    if (!parsed.success) return sendError(reply, 'bad_request', 'Not a valid event batch.');
    if (!serverIds.has(parsed.data.serverId)) {
      return sendError(
        reply,
        'bad_request',
        `No content server has id ${JSON.stringify(parsed.data.serverId)}.`,
      );
    }
    const applied = await intake.apply(parsed.data);
    return reply.send({ received: parsed.data.events.length, applied });
  });

  app.post<{ Params: { orderId: string } }>('/orders/:orderId/revoke', async (req, reply) => {
    const outcome = await desk.revokeOrder(req.params.orderId);
    if (!outcome) return sendError(reply, 'unknown_order');
    return reply.send(outcome);
  });

  // CONTRACT §7: a refund revokes every order of the purchase and refuses its grants afterwards.
  app.post(PATHS.reception.grantRevocations, async (req, reply) => {
    const parsed = purchaseRevocation.safeParse(req.body);
    if (!parsed.success) return sendError(reply, 'bad_request', 'The body must be {"iss", "sub"}.');
    return reply.send(await desk.revokePurchase(parsed.data));
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  app.get('/healthz', async (_req, reply) => {
    if (!deps.ready()) return sendError(reply, 'unavailable');
    return reply.send({ status: 'ok' });
  });

  app.get('/status', async (_req, reply) => reply.header('cache-control', 'no-store').send(deps.status()));

  app.get('/dashboard', (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(renderDashboard({})),
  );

  return app;
}
