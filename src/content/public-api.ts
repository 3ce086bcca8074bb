/**
 * The content server's public side (CONTRACT §4; the seed's FIG. 6B): `GET`/`HEAD`
 * `/t/{ticket}{item path}` (or `{item path}` under policy `open`). Wires the seed's three modules
 * together per request — the ticket receiver 141 reads and checks the ticket, request processing
 * 142 judges, the transmitter 143 sends — and feeds what was sent to the delivery ledger, whose
 * verdicts become transfer events (and, under `strict`, a local revocation).
 *
 * Plain `node:http`, not fastify: this is one route on the hot path of a download rush, and the
 * transmitter needs the raw response anyway (write callbacks count delivered bytes). Measured on
 * this machine with wrk -t1 -c50 serving a 16 KiB buffer, fastify and node:http were within noise
 * of each other (≈40.7k vs ≈42.5k req/s, one run each), so the choice is about control rather than
 * speed: no routing, no hooks, no JSON serialisation to pay for, and `Connection: close` and the
 * socket are directly at hand.
 *
 * Every answer other than 2xx closes the connection (`Connection: close`): the seed's Sb32
 * "disconnects communication with the client" on an invalid ticket, and a refused client has no
 * business keeping a socket on a busy server. Answers the contract leaves open: a path that is
 * not a valid item path is `400 invalid_item_path` before any ticket check (it can be no
 * ticket's path and never reaches the file system); a ticketed policy without `/t/{ticket}` in
 * the URL is `403 bad_ticket`; methods other than GET/HEAD are `405`; before the first catalog
 * scan, and when a file changed on disk since it was hashed, `503 unavailable` with
 * `Retry-After: 1`. HEAD is judged exactly like GET but never counts as a transfer.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ERRORS, type ErrorCode, errorBody } from '../errors.js';
import type { TransferEvent } from '../protocol/internal.js';
import type { TicketClaims, TicketPolicy } from '../tickets/index.js';
import { clientAddressOf, type TrustedProxies } from '../util/client-address.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { Catalog, CatalogItem } from './catalog.js';
import type { DeliveryLedger } from './delivery-ledger.js';
import type { EventReporter } from './event-reporter.js';
import type { ServiceTimes, ThroughputMeter } from './load-report.js';
import { loggableUrl } from './log-url.js';
import type { ContentMetrics } from './metrics.js';
import { PART_CONTENT_TYPE, planRange, type RangePlan } from './range-plan.js';
import { judgeRequest } from './request-processing.js';
import type { TicketReceiver } from './ticket-receiver.js';
import type { TicketRegistry } from './ticket-registry.js';
import {
  ItemChangedError,
  openSource,
  type Source,
  sendChunk,
  transmit,
  WRITE_SLICE,
} from './transmitter.js';

export interface PublicApiDeps {
  serverId: string;
  policy: TicketPolicy;
  capacity: number;
  /** `connectionsPerTicket` (CONTRACT §4). */
  connectionsPerTicket: number;
  receiver: TicketReceiver;
  catalog: Catalog;
  ledger: DeliveryLedger;
  registry: TicketRegistry;
  events: EventReporter;
  metrics: ContentMetrics;
  throughput: ThroughputMeter;
  serviceTimes: ServiceTimes;
  clock: Clock;
  logger: Logger;
  isDraining(): boolean;
  /** Retry-After for load refusals. */
  retryAfterSeconds(): number;
  /** Called whenever a transfer ends (graceful shutdown waits on it). */
  onTransferEnd(): void;
  /**
   * `trustProxy` (CONTRACT §2): peers whose `X-Forwarded-For` is believed — a TLS terminator or
   * CDN in front. The address it yields is the one `cip` is checked against. Absent or empty:
   * the socket's peer, and the header is ignored (a client cannot forge its way past binding).
   */
  trusted?: TrustedProxies;
}

/** Node joins most repeated headers, but not every one; take the first where it does not. */
function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function buildPublicHandler(deps: PublicApiDeps): RequestHandler {
  const { catalog, ledger, metrics, clock, logger, receiver } = deps;
  const strict = deps.policy === 'strict';
  const ticketed = deps.policy !== 'open';
  const trusted = deps.trusted ?? { ranges: [] };
  // Without trusted proxies the header is never even parsed (the common, direct case).
  const proxied = trusted.ranges.length > 0;

  function refuse(
    req: IncomingMessage,
    res: ServerResponse,
    code: ErrorCode,
    extra: OutgoingHttpHeaders = {},
  ): void {
    const status = ERRORS[code].status;
    const body = req.method === 'HEAD' ? '' : JSON.stringify(errorBody(code));
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      Connection: 'close',
      ...extra,
    });
    res.end(body);
    metrics.answered(status, code);
  }

  // The headers of a whole-item 200 depend on the item alone: built once per catalog item (a
  // rescan makes new item objects, so a changed file never meets stale headers) and handed to
  // `writeHead` as is — Node reads, never mutates, the object given when no header was set before.
  const fullHeaders = new WeakMap<CatalogItem, OutgoingHttpHeaders>();
  function baseHeaders(item: CatalogItem): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {
      'Accept-Ranges': 'bytes',
      ETag: item.etag,
      'Last-Modified': item.lastModified,
      'Content-Disposition': item.contentDisposition,
      'Repr-Digest': item.reprDigest,
      'X-Content-Type-Options': 'nosniff',
    };
    if (ticketed) headers['Cache-Control'] = 'private, no-store';
    return headers;
  }
  function wholeItemHeaders(item: CatalogItem): OutgoingHttpHeaders {
    let headers = fullHeaders.get(item);
    if (!headers) {
      headers = baseHeaders(item);
      headers['Content-Length'] = item.size;
      headers['Content-Type'] = PART_CONTENT_TYPE;
      fullHeaders.set(item, headers);
    }
    return headers;
  }

  function eventOf(type: TransferEvent['type'], claims: TicketClaims, size: number, delivered: number) {
    return { type, jti: claims.jti, oid: claims.oid, path: claims.path, at: clock.now(), delivered, size };
  }

  function serve(
    req: IncomingMessage,
    res: ServerResponse,
    item: CatalogItem,
    claims: TicketClaims | null,
  ): void {
    const range = req.headers.range;
    const plan = planRange(
      item.size,
      { range, ifRange: firstValue(req.headers['if-range']) },
      { etag: item.etag, lastModifiedMs: item.mtimeMs },
      range?.includes(',') ? randomBytes(12).toString('hex') : '',
    );
    if (plan.kind === 'full') {
      answerPlanned(req, res, item, claims, plan, wholeItemHeaders(item));
      return;
    }
    const headers = baseHeaders(item);
    if (plan.kind === 'unsatisfiable') {
      refuse(req, res, 'range_not_satisfiable', { ...headers, 'Content-Range': plan.contentRange });
      return;
    }
    headers['Content-Length'] = plan.contentLength;
    if (plan.kind === 'multi') headers['Content-Type'] = plan.contentType;
    else headers['Content-Type'] = PART_CONTENT_TYPE;
    if (plan.kind === 'single') headers['Content-Range'] = plan.contentRange;
    answerPlanned(req, res, item, claims, plan, headers);
  }

  /** Answers a planned 200/206 whose headers are complete: HEAD, one write from memory, or a stream. */
  function answerPlanned(
    req: IncomingMessage,
    res: ServerResponse,
    item: CatalogItem,
    claims: TicketClaims | null,
    plan: Exclude<RangePlan, { kind: 'unsatisfiable' }>,
    headers: OutgoingHttpHeaders,
  ): void {
    if (req.method === 'HEAD') {
      res.writeHead(plan.status, headers);
      res.end();
      metrics.answered(plan.status, 'head');
      return;
    }

    // The capacity check just passed; the transfer is counted before anything asynchronous, so
    // two requests racing for the last slot cannot both take it.
    const startedAt = clock.now();
    if (claims) {
      const { started } = ledger.beginTransfer(
        { jti: claims.jti, oid: claims.oid, path: claims.path, size: item.size, exp: claims.exp },
        startedAt,
      );
      if (started)
        deps.events.report(
          eventOf('started', claims, item.size, ledger.snapshot(claims.jti)?.delivered ?? 0),
        );
    } else {
      ledger.beginUntracked();
    }

    const onBytes = (start: number, end: number) => {
      const t = clock.now();
      const n = end - start;
      deps.throughput.add(n, t);
      metrics.addBytesSent(n);
      if (!claims) return;
      const r = ledger.recordBytes(claims.jti, start, end, t);
      if (r.fulfilled) fulfil(claims, item.size, r.delivered, r.durationMs ?? 0);
    };

    let ended = false;
    const finish = (complete: boolean, answered = true) => {
      if (ended) return;
      ended = true;
      // An empty item has no byte whose write could fulfil it: a completed body does.
      if (complete && item.size === 0 && claims) {
        const r = ledger.recordBytes(claims.jti, 0, 0, clock.now());
        if (r.fulfilled) fulfil(claims, 0, 0, 0);
      }
      if (answered) metrics.answered(plan.status, complete ? 'ok' : 'cut_short');
      const end = clock.now();
      if (claims) ledger.endTransfer(claims.jti, end);
      else {
        ledger.endUntracked();
        if (complete && plan.kind === 'full') deps.serviceTimes.push(end - startedAt);
      }
      deps.onTransferEnd();
    };

    // Small items held in memory go out in one write, without a file or a promise in sight: this
    // is the path a rush of small downloads takes.
    const whole =
      plan.kind === 'full'
        ? { start: 0, end: item.size }
        : plan.kind === 'single'
          ? { start: plan.range.start, end: plan.range.end + 1 }
          : null;
    if (item.body && whole && whole.end - whole.start <= WRITE_SLICE) {
      res.writeHead(plan.status, headers);
      sendChunk(res, item.body.subarray(whole.start, whole.end), (written) => {
        if (written && whole.end > whole.start) onBytes(whole.start, whole.end);
        finish(written);
      });
      return;
    }

    stream(req, res, item, plan, headers, onBytes).then(
      // null: refused before any header (the item changed on disk); `refuse` counted the answer.
      (complete) => finish(complete ?? false, complete !== null),
      (err: unknown) => {
        logger.error({ err, url: loggableUrl(req.url) }, 'public request failed');
        if (!res.headersSent) refuse(req, res, 'internal_error');
        else res.destroy();
        finish(false, false);
      },
    );
  }

  /** Streams from disk (or a large in-memory item); resolves null when refused before any header. */
  async function stream(
    req: IncomingMessage,
    res: ServerResponse,
    item: CatalogItem,
    plan: Exclude<RangePlan, { kind: 'unsatisfiable' }>,
    headers: OutgoingHttpHeaders,
    onBytes: (start: number, end: number) => void,
  ): Promise<boolean | null> {
    let source: Source;
    try {
      source = await openSource(item);
    } catch (err) {
      if (!(err instanceof ItemChangedError)) throw err;
      logger.warn({ err: err.message, item: item.path }, 'item changed on disk; rescanning');
      void catalog.rescan();
      refuse(req, res, 'unavailable', { 'Retry-After': '1' });
      return null;
    }
    res.writeHead(plan.status, headers);
    return transmit({ res, source, size: item.size, plan, onBytes });
  }

  function fulfil(claims: TicketClaims, size: number, delivered: number, durationMs: number): void {
    // Revoke first: from this moment a further use of a strict ticket is refused (CONTRACT §4).
    if (strict) deps.registry.revokeTicket(claims.jti, claims.exp);
    deps.events.report({ ...eventOf('fulfilled', claims, size, delivered), durationMs });
    deps.serviceTimes.push(durationMs);
    metrics.fulfilled.inc();
    logger.debug({ jti: claims.jti, oid: claims.oid, durationMs }, 'order fulfilled');
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(req, res, 'method_not_allowed', { Allow: 'GET, HEAD' });
      return;
    }
    if (!catalog.ready) {
      refuse(req, res, 'unavailable', { 'Retry-After': '1' });
      return;
    }
    const peer = req.socket.remoteAddress ?? '';
    const client = proxied ? clientAddressOf(peer, req.headers['x-forwarded-for'], trusted) : peer;
    const reception = receiver.receive(req.url ?? '/', client, clock.now());
    if (reception.kind === 'bad_path') {
      logger.debug({ url: loggableUrl(req.url), reason: reception.reason }, 'refused a malformed item path');
      refuse(req, res, 'invalid_item_path');
      return;
    }
    const claims = reception.kind === 'admitted' ? reception.claims : null;
    const item = reception.kind === 'admitted' ? catalog.lookup(reception.itemPath) : undefined;
    const ticketTransfers = claims === null ? 0 : ledger.activeTransfers(claims.jti);
    const decision = judgeRequest({
      ticket: reception.kind === 'refused' ? { ok: false, code: reception.code } : { ok: true },
      itemFound: item !== undefined,
      draining: deps.isDraining(),
      serving: ledger.serving,
      capacity: deps.capacity,
      alreadyServing: ticketTransfers > 0,
      // HEAD never becomes a transfer, so it is never refused for the ticket's connections.
      ticketTransfers: req.method === 'HEAD' ? 0 : ticketTransfers,
      connectionsPerTicket: deps.connectionsPerTicket,
      retryAfterSeconds: deps.retryAfterSeconds,
    });
    if (!decision.serve) {
      refuse(
        req,
        res,
        decision.code,
        decision.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(decision.retryAfterSeconds) },
      );
      return;
    }
    serve(req, res, item as CatalogItem, claims);
  }

  return (req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      logger.error({ err, url: loggableUrl(req.url) }, 'public request failed');
      if (!res.headersSent) refuse(req, res, 'internal_error');
      else res.destroy();
    }
  };
}
