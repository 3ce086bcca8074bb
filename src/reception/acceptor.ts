/**
 * The request acceptor (the seed's module 131, steps Sc31/Sa32): the reception's public HTTP
 * side, CONTRACT §3. It turns requests into validated calls on the order desk and the desk's
 * outcomes into answers — `201`/`303` with a ticket, `503` busy with `Retry-After`, a queue token
 * and (for browsers) the waiting page — and owns everything about the wire: the 16 KiB body
 * limit, JSON only (`415`), the error shape, `Cache-Control: no-store` on anything carrying a
 * ticket or token, the per-client rate limit (`429`), and the client address `trustProxy` allows.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import { grantCookie, grantCookieOf, grantOfBrowser, grantOfPost } from '../grants/transport.js';
import { MAX_GRANT_LENGTH } from '../grants/verify.js';
import { checkItemPath, encodeItemPath, itemPathFromUrlPath } from '../items/item-path.js';
import type { OrderRecord, TicketRecord } from '../store/index.js';
import { clientAddressOf, type TrustedProxies } from '../util/client-address.js';
import type { Clock } from '../util/clock.js';
import { fastifyTimeoutOptions, listenerTimeouts, nodeServerOptions } from '../util/listener-timeouts.js';
import type { Logger } from '../util/log.js';
import { readTls } from '../util/tls.js';
import { clientKeyOf } from './client-key.js';
import type { ReceptionMetrics } from './metrics.js';
import type { OrderDesk, OrderOutcome } from './order-desk.js';
import { MAX_QUEUE_TOKEN_LENGTH, type QueueTokens } from './queue-token.js';
import { RateLimiter } from './rate-limiter.js';
import { errorHandler, sendError } from './replies.js';
import { renderWaitingPage, WAITING_PAGE_ASSETS } from './waiting-page.js';

export const BODY_LIMIT = 16 * 1024;
export const QUEUE_COOKIE = 'rushgate_queue';
export const QUEUE_HEADER = 'rushgate-queue-token';
/**
 * Requests that carry a well-formed queue token of ours draw on a second, generous bucket of the
 * same client prefix, so a waiter that polls at Retry-After (≥ 1 s) is never refused even after
 * its prefix spent the ordinary allowance. It is per prefix, not per token: a respelled or fresh
 * token is no new bucket. 10/s with a burst of 100 covers ten waiters behind one NAT.
 */
export const WAITER_RULE = { perSecond: 10, burst: 100 };
const RESERVED = ['/api/', '/_rushgate/', '/healthz/'];

const orderBody = z.object({
  item: z.string().min(1).max(4096),
  email: z.email().max(254).optional(),
  queueToken: z.string().min(1).max(MAX_QUEUE_TOKEN_LENGTH).optional(),
  grant: z.string().min(1).max(MAX_GRANT_LENGTH).optional(),
});
const emptyBody = z.union([z.undefined(), z.null(), z.object({})]);
const orderIdParam = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);
const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/);

const isoTime = { type: 'string' } as const;
/**
 * The `200`/`201` order answer (CONTRACT §3), as a response schema: fastify compiles it into a
 * serializer (fast-json-stringify) instead of a generic JSON.stringify for every ticket (issue
 * 12: the reply path was a fifth of an order's CPU). Only these two statuses of the order routes
 * carry it; every other answer (busy, errors) is serialized as before.
 */
const ORDER_ANSWER = {
  type: 'object',
  required: ['orderId', 'status'],
  properties: {
    orderId: { type: 'string' },
    status: { type: 'string' },
    ticket: {
      type: 'object',
      required: ['id', 'url', 'server', 'notBefore', 'expiresAt'],
      properties: {
        id: { type: 'string' },
        url: { type: 'string' },
        server: { type: 'string' },
        notBefore: isoTime,
        expiresAt: isoTime,
      },
    },
  },
} as const;
const orderAnswers = { schema: { response: { 200: ORDER_ANSWER, 201: ORDER_ANSWER } } };

declare module 'fastify' {
  interface FastifyRequest {
    clientAddress: string;
    /** The client's address prefix (`tickets.bindPrefix`): the unit of every per-client limit. */
    clientKey: string;
  }
}

export interface AcceptorDeps {
  config: Config;
  desk: OrderDesk;
  tokens: QueueTokens;
  trusted: TrustedProxies;
  metrics: ReceptionMetrics;
  clock: Clock;
  logger: Logger;
  /** `GET /healthz`: a load report arrived and orders can be taken. */
  ready(): boolean;
}

export function buildAcceptor(deps: AcceptorDeps): FastifyInstance {
  const { config, desk, tokens, trusted, metrics, clock, logger } = deps;
  const rc = config.reception;
  // `tls` set: HTTPS (the files are read now, so a bad one fails before anything listens; app.ts
  // watches them for renewals). Typed as the plain-HTTP instance: routes do not care.
  const https = rc.tls ? readTls(rc.tls, 'reception.tls') : null;
  // Slowloris: headers, body and idle sockets are all timed (src/util/listener-timeouts.ts).
  const timeouts = listenerTimeouts();
  const app = Fastify({
    ...fastifyTimeoutOptions(timeouts),
    ...(https ? { https: { ...https, ...nodeServerOptions(timeouts) } } : {}),
    loggerInstance: logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_QUEUE_TOKEN_LENGTH + 16 },
    // Malformed URLs (bad percent-encoding) are refused before routing; same shape as any error.
    // They cost the client's allowance like any request (the onRequest hook has not run).
    frameworkErrors: (_err, req, reply) => {
      const key = clientKeyOf(
        clientAddressOf(req.socket?.remoteAddress ?? '', req.headers['x-forwarded-for'], trusted),
        rc.tickets.bindPrefix,
      );
      if (charged(key, reply)) return;
      sendError(reply, 'bad_request');
    },
  });
  const limiter = rc.rateLimit ? new RateLimiter(rc.rateLimit) : undefined;
  // Under https the queue cookie is never sent in the clear.
  const secure = rc.publicUrl.startsWith('https:') ? '; Secure' : '';
  const waiterLimiter = rc.rateLimit ? new RateLimiter(WAITER_RULE) : undefined;

  app.decorateRequest('clientAddress', '');
  app.decorateRequest('clientKey', '');
  const handleError = errorHandler(logger);
  // Bad input the framework refuses before any route (malformed JSON, 413, 415) is counted
  // against the client's allowance too, so a flood of junk is limited like a flood of orders.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isInputError(err) && charged(req.clientKey, reply)) return reply;
    return handleError(err, req, reply);
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, 'not_found'));

  // JSON only; an empty body is "no body" (POST …/tickets takes none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(
        Object.assign(new Error('bad JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }),
        undefined,
      );
    }
  });

  app.addHook('onRequest', async (req) => {
    req.clientAddress = clientAddressOf(
      req.socket.remoteAddress ?? '',
      req.headers['x-forwarded-for'],
      trusted,
    );
    req.clientKey = clientKeyOf(req.clientAddress, rc.tickets.bindPrefix);
  });

  /** Takes one token from a bucket of the client's prefix; answers 429 (and says so) when empty. */
  function charged(key: string, reply: FastifyReply, waiter = false): boolean {
    const bucket = waiter ? waiterLimiter : limiter;
    if (!bucket) return false;
    const result = bucket.take(key, clock.now());
    if (result.allowed) return false;
    countResult('rate_limited');
    reply.header('retry-after', String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))));
    sendError(reply, 'rate_limited');
    return true;
  }

  /**
   * Counts the request against its client prefix: the waiters' bucket when it carries a queue
   * token of ours (exactly as issued), else the ordinary one. Never a bucket per token.
   */
  const limited = (req: FastifyRequest, reply: FastifyReply, token: string | undefined): boolean =>
    charged(req.clientKey, reply, token !== undefined && tokens.read(token) !== undefined);

  const queueTokenOf = (req: FastifyRequest, fromBody?: string): string | undefined => {
    if (fromBody !== undefined) return fromBody;
    const header = req.headers[QUEUE_HEADER];
    if (typeof header === 'string' && header.length > 0 && header.length <= MAX_QUEUE_TOKEN_LENGTH)
      return header;
    return cookieValue(req.headers.cookie, QUEUE_COOKIE);
  };

  const wantsHtml = (req: FastifyRequest) => acceptsHtml(req.headers.accept);

  /**
   * `Prefer: wait=N` (RFC 7240; CONTRACT §3): how long this request may be held open, ms, capped
   * at `queue.maxRetryAfterSeconds`; and a signal that fires if the client goes away meanwhile, so
   * a held slot is not kept for a closed connection.
   */
  const heldWait = (
    req: FastifyRequest,
    reply: FastifyReply,
  ): { preferWaitMs?: number; signal?: AbortSignal } => {
    const seconds = preferredWait(req.headers.prefer);
    if (seconds === undefined || seconds <= 0) return {};
    const aborted = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    return {
      preferWaitMs: Math.min(seconds, rc.queue.maxRetryAfterSeconds) * 1000,
      signal: aborted.signal,
    };
  };

  function sendBusy(
    reply: FastifyReply,
    outcome: Extract<OrderOutcome, { kind: 'busy' }>,
    item: string,
    html: boolean,
  ): FastifyReply {
    reply
      .code(503)
      .header('retry-after', String(outcome.retryAfterSeconds))
      .header('cache-control', 'no-store');
    if (outcome.heldMs !== undefined) {
      reply.header('preference-applied', `wait=${Math.round(outcome.heldMs / 1000)}`);
    }
    if (outcome.queueToken !== null) {
      reply.header(
        'set-cookie',
        `${QUEUE_COOKIE}=${outcome.queueToken}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${rc.queue.abandonSeconds + rc.queue.maxRetryAfterSeconds}${secure}`,
      );
    }
    if (html) {
      return reply.type('text/html; charset=utf-8').send(
        renderWaitingPage({
          item,
          position: outcome.position,
          estimatedWaitSeconds: outcome.estimatedWaitSeconds,
          ...(outcome.estimatedWaitRangeSeconds
            ? { estimatedWaitRangeSeconds: outcome.estimatedWaitRangeSeconds }
            : {}),
          retryAfterSeconds: outcome.retryAfterSeconds,
          queueToken: outcome.queueToken ?? '',
          retryUrl: encodeItemPath(item),
        }),
      );
    }
    return reply.type('application/json; charset=utf-8').send({
      status: 'busy',
      position: outcome.position,
      estimatedWaitSeconds: outcome.estimatedWaitSeconds,
      ...(outcome.estimatedWaitRangeSeconds
        ? { estimatedWaitRangeSeconds: outcome.estimatedWaitRangeSeconds }
        : {}),
      retryAfterSeconds: outcome.retryAfterSeconds,
      queueToken: outcome.queueToken,
    });
  }

  /** Every order and ticket request is counted once, by how it ended (metrics). */
  function countResult(result: string): void {
    metrics.orders.inc({ result });
  }
  function record(outcome: OrderOutcome, started: number): void {
    const result = outcome.kind === 'error' ? outcome.code : outcome.kind;
    countResult(result);
    metrics.orderSeconds.observe({ result }, (performance.now() - started) / 1000);
  }
  /** A request the acceptor refuses before it reaches the desk. */
  function refuse(reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
    countResult(code);
    return sendError(reply, code, message);
  }

  /** An error outcome; `client_limit` (and any other that says when) carries Retry-After. */
  function sendRefusal(reply: FastifyReply, outcome: Extract<OrderOutcome, { kind: 'error' }>): FastifyReply {
    if (outcome.retryAfterSeconds !== undefined)
      reply.header('retry-after', String(outcome.retryAfterSeconds));
    return sendError(reply, outcome.code, outcome.message);
  }

  function sendOutcome(
    reply: FastifyReply,
    outcome: OrderOutcome,
    item: string,
    started: number,
  ): FastifyReply {
    record(outcome, started);
    switch (outcome.kind) {
      case 'error':
        return sendRefusal(reply, outcome);
      case 'busy':
        return sendBusy(reply, outcome, item, false);
      case 'ticketed':
      case 'existing':
        return reply
          .code(outcome.kind === 'ticketed' ? 201 : 200)
          .header('cache-control', 'no-store')
          .send({
            orderId: outcome.order.id,
            // CONTRACT §3: a 201 always says "ticketed" — the new ticket is what it reports, even
            // when the order had been fulfilled before (a fresh ticket after a lost ending).
            status: outcome.kind === 'ticketed' ? 'ticketed' : outcome.order.status,
            ...(outcome.ticket ? { ticket: ticketView(outcome.ticket) } : {}),
          });
    }
  }

  app.get('/healthz', { exposeHeadRoute: true }, async (_req, reply) => {
    if (!deps.ready()) return sendError(reply, 'unavailable');
    return reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });

  app.get<{ Params: { name: string } }>('/_rushgate/:name', { exposeHeadRoute: true }, async (req, reply) => {
    const asset = WAITING_PAGE_ASSETS.get(req.params.name);
    if (!asset) return sendError(reply, 'not_found');
    return reply.type(asset.contentType).header('cache-control', 'public, max-age=300').send(asset.body);
  });

  app.post('/api/orders', orderAnswers, async (req, reply) => {
    const started = performance.now();
    const parsed = orderBody.safeParse(req.body);
    // Counted before validation: malformed requests cost the client as much as good ones.
    const token = queueTokenOf(req, parsed.success ? parsed.data.queueToken : undefined);
    if (limited(req, reply, token)) return reply;
    if (req.body === undefined && req.headers['content-type'] === undefined) {
      return refuse(reply, 'unsupported_media_type');
    }
    if (!parsed.success) return refuse(reply, 'bad_request', describeIssue(parsed.error));
    const keyHeader = req.headers['idempotency-key'];
    let key: string | undefined;
    if (keyHeader !== undefined) {
      const k = idempotencyKey.safeParse(keyHeader);
      if (!k.success)
        return sendError(reply, 'bad_request', 'Idempotency-Key must be 1–255 visible ASCII characters.');
      key = k.data;
    }
    // The waiting page's script retries here; its grant rides in the item's cookie (CONTRACT §7).
    const sentGrant = grantOfPost(parsed.data.grant, req.headers.authorization);
    const cookieItem = checkItemPath(parsed.data.item);
    const cookieGrant =
      sentGrant === undefined && cookieItem.ok
        ? grantCookieOf(req.headers.cookie, cookieItem.path)
        : undefined;
    const outcome = await desk.placeOrder({
      item: parsed.data.item,
      clientAddress: req.clientAddress,
      email: parsed.data.email,
      queueToken: token,
      idempotencyKey: key,
      grant: sentGrant ?? cookieGrant,
      ...heldWait(req, reply),
    });
    if (
      cookieGrant !== undefined &&
      cookieItem.ok &&
      (outcome.kind === 'ticketed' || outcome.kind === 'existing')
    )
      reply.header('set-cookie', grantCookie(cookieItem.path, '', 0) + secure);
    return sendOutcome(reply, outcome, parsed.data.item, started);
  });

  app.get<{ Params: { orderId: string } }>('/api/orders/:orderId', async (req, reply) => {
    if (limited(req, reply, undefined)) return reply;
    const id = orderIdParam.safeParse(req.params.orderId);
    const order = id.success ? await desk.getOrder(id.data) : undefined;
    if (!order) return sendError(reply, 'unknown_order');
    return reply.header('cache-control', 'no-store').send(orderView(order));
  });

  app.post<{ Params: { orderId: string } }>(
    '/api/orders/:orderId/tickets',
    orderAnswers,
    async (req, reply) => {
      const started = performance.now();
      if (limited(req, reply, undefined)) return reply;
      if (!emptyBody.safeParse(req.body).success)
        return sendError(reply, 'bad_request', 'The body must be empty or {}.');
      const id = orderIdParam.safeParse(req.params.orderId);
      if (!id.success) return sendError(reply, 'unknown_order');
      const outcome = await desk.freshTicket(id.data, req.clientAddress, heldWait(req, reply));
      return sendOutcome(reply, outcome, '', started);
    },
  );

  app.get<{ Params: { token: string } }>('/api/queue/:token', async (req, reply) => {
    const token = req.params.token;
    if (limited(req, reply, token)) return reply;
    const status = await desk.queueStatus(token);
    if (!status) return sendError(reply, 'unknown_queue_token');
    return reply.header('cache-control', 'no-store').send(status);
  });

  const itemRoute = async (req: FastifyRequest, reply: FastifyReply, head: boolean) => {
    const started = performance.now();
    const rawPath = (req.raw.url ?? '/').split('?')[0] ?? '/';
    if (rawPath === '/healthz' || RESERVED.some((p) => rawPath.startsWith(p)))
      return sendError(reply, 'not_found');
    const token = head ? undefined : queueTokenOf(req);
    if (limited(req, reply, token)) return reply;
    const parsed = itemPathFromUrlPath(rawPath);
    if (!parsed.ok) return refuse(reply, 'invalid_item_path', `item path: ${parsed.reason}`);
    // Checked again once decoded: `/%61pi/…` is `/api/…` and must not reach item lookup.
    if (parsed.path === '/healthz' || RESERVED.some((p) => parsed.path.startsWith(p)))
      return sendError(reply, 'not_found');
    if (head) {
      // A HEAD (link previews, crawlers) must not take a slot: it only says whether the item exists.
      const refused = desk.checkItem(parsed.path);
      if (refused) return sendError(reply, refused);
      return reply.code(200).header('cache-control', 'no-store').send();
    }
    // CONTRACT §7: the grant comes in the link (`?grant=`) or, while waiting, in its cookie; it
    // never goes on: no Referer leaves this page, and the Location is the bare ticket URL.
    const grant = grantOfBrowser(req.raw.url ?? '', req.headers.cookie, parsed.path);
    reply.header('referrer-policy', 'no-referrer');
    const outcome = await desk.placeOrder({
      item: parsed.path,
      clientAddress: req.clientAddress,
      queueToken: token,
      grant,
      ...heldWait(req, reply),
    });
    record(outcome, started);
    const cookies: string[] = [];
    if (grant !== undefined && outcome.kind === 'busy') {
      cookies.push(
        grantCookie(parsed.path, grant, rc.queue.abandonSeconds + rc.queue.maxRetryAfterSeconds) + secure,
      );
    }
    if (outcome.kind === 'busy') {
      if (cookies.length > 0) reply.header('set-cookie', cookies);
      return sendBusy(reply, outcome, parsed.path, wantsHtml(req));
    }
    if (outcome.kind === 'error') return sendRefusal(reply, outcome);
    if (!outcome.ticket) return sendError(reply, 'internal_error');
    if (grant !== undefined && grantCookieOf(req.headers.cookie, parsed.path) !== undefined)
      cookies.push(grantCookie(parsed.path, '', 0) + secure);
    if (token !== undefined)
      cookies.push(`${QUEUE_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`);
    if (cookies.length > 0) reply.header('set-cookie', cookies);
    return reply.code(303).header('location', outcome.ticket.url).header('cache-control', 'no-store').send();
  };
  app.get('/*', (req, reply) => itemRoute(req, reply, false));
  app.head('/*', (req, reply) => itemRoute(req, reply, true));

  return app;
}

/**
 * The `wait` preference of a `Prefer` header (RFC 7240 §4.3), seconds; undefined when absent or
 * malformed. Several headers, or several preferences in one, are allowed; the first `wait` counts.
 */
export function preferredWait(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  for (const value of Array.isArray(header) ? header : [header]) {
    for (const pref of value.split(',')) {
      const m = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*(;.*)?$/i.exec(pref);
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}

export function ticketView(t: TicketRecord) {
  return {
    id: t.id,
    url: t.url,
    server: t.server,
    notBefore: new Date(t.notBefore).toISOString(),
    expiresAt: new Date(t.expiresAt).toISOString(),
  };
}

export function orderView(o: OrderRecord) {
  return {
    orderId: o.id,
    item: o.item,
    status: o.status,
    createdAt: new Date(o.createdAt).toISOString(),
    tickets: o.tickets.map((t) => ({
      ...ticketView(t),
      status: t.status,
      issuedAt: new Date(t.issuedAt).toISOString(),
      delivered: t.delivered,
    })),
  };
}

/** `Accept` asks for HTML when it names text/html (or application/xhtml+xml) with a q above 0. */
export function acceptsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    if (type?.trim() !== 'text/html' && type?.trim() !== 'application/xhtml+xml') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.length > 0 && value.length <= MAX_QUEUE_TOKEN_LENGTH ? value : undefined;
  }
  return undefined;
}

/** Errors the framework raises for a request's own bad input (not the server's failures). */
function isInputError(err: { statusCode?: number; code?: string }): boolean {
  const status = err.statusCode ?? 0;
  return status >= 400 && status < 500;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'The request body is not valid.';
  const at = issue.path.length > 0 ? issue.path.join('.') : 'body';
  if (issue.code === 'invalid_type' && issue.path.length === 0) return 'The body must be a JSON object.';
  return `${at}: ${issue.message}`;
}
