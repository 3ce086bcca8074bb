/**
 * One content server (CONTRACT §1, §4, §6; the seed's content server 14 of FIG. 4, running the
 * process of FIG. 6B): builds the catalog, ticket registry, delivery ledger, event reporter and
 * metrics for one `contentServers[]` entry of the deployment file, and serves them on two
 * listeners — the public one (items to clients) and the internal one (the reception's private
 * network). `buildContentServer({ config, serverId, clock, logger })` wires; `start()` listens;
 * `stop(graceMs)` drains: the load report says `draining: true`, new transfers get 503, transfers
 * in flight may finish until the grace period ends, then the event outbox is flushed.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { keyRingOf } from '../config/keys.js';
import { type Config, type ContentServerConfig, parseListen } from '../config/schema.js';
import { trustedProxies } from '../util/client-address.js';
import { type Clock, systemClock } from '../util/clock.js';
import { listenerTimeouts, nodeServerOptions } from '../util/listener-timeouts.js';
import type { Logger } from '../util/log.js';
import { readTls, type TlsWatcher, watchTls } from '../util/tls.js';
import { buildCatalog, type Catalog } from './catalog.js';
import { DeliveryLedger } from './delivery-ledger.js';
import { buildEventReporter, type EventReporter } from './event-reporter.js';
import { buildInternalApi } from './internal-api.js';
import { buildLoadReport, ServiceTimes, ThroughputMeter } from './load-report.js';
import { buildContentMetrics, type ContentMetrics } from './metrics.js';
import { buildPublicHandler } from './public-api.js';
import { retryAfterFrom } from './request-processing.js';
import { buildTicketReceiver } from './ticket-receiver.js';
import { TicketRegistry } from './ticket-registry.js';

/** A listen address is taken or not allowed; the CLI turns this into exit code 2. */
export class ListenError extends Error {
  readonly key: string;
  readonly address: string;
  readonly code: string;
  constructor(key: string, address: string, code: string) {
    const why =
      code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code;
    super(`cannot listen on ${address} (${key}): ${why}`);
    this.name = 'ListenError';
    this.key = key;
    this.address = address;
    this.code = code;
  }
}

export interface ContentServerOptions {
  config: Config;
  serverId: string;
  clock?: Clock;
  logger: Logger;
  /** Catalog rescan period; 0 turns periodic rescans off (watching still works). */
  rescanIntervalMs?: number;
  /** How often idle tickets are checked for abandonment and stale state is dropped. */
  sweepIntervalMs?: number;
  /** Event batching delay (see event-reporter.ts). */
  eventFlushDelayMs?: number;
  /** Most time `stop` spends flushing transfer events after the transfers ended. */
  eventFlushTimeoutMs?: number;
  /** Socket inactivity after which a stalled download is cut. */
  idleTimeoutMs?: number;
  /** How often the TLS files are checked for a renewal. */
  tlsWatchIntervalMs?: number;
}

export interface ContentServer {
  readonly serverId: string;
  readonly server: ContentServerConfig;
  start(): Promise<void>;
  /** Drains and stops; resolves when everything is closed. Calling it twice shortens the grace. */
  stop(graceMs?: number): Promise<void>;
  /** Bound addresses, after `start` (ports may have been chosen by the OS). */
  publicAddress(): AddressInfo | null;
  internalAddress(): AddressInfo | null;
  readonly draining: boolean;
  readonly catalog: Catalog;
  readonly ledger: DeliveryLedger;
  readonly registry: TicketRegistry;
  readonly events: EventReporter;
  readonly metrics: ContentMetrics;
}

export function buildContentServer(options: ContentServerOptions): ContentServer {
  const { config, serverId, logger } = options;
  const clock = options.clock ?? systemClock;
  const server = config.contentServers.find((s) => s.id === serverId);
  if (!server) throw new Error(`no content server with id ${JSON.stringify(serverId)} in the deployment`);
  const index = config.contentServers.indexOf(server);
  const tickets = config.reception.tickets;

  let draining = false;
  let stopping: Promise<void> | null = null;
  let graceCut: (() => void) | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  const transferWaiters = new Set<() => void>();

  const registry = new TicketRegistry({ clockSkewSeconds: tickets.clockSkewSeconds });
  const ledger = new DeliveryLedger();
  const throughput = new ThroughputMeter();
  const serviceTimes = new ServiceTimes();

  const events = buildEventReporter({
    serverId,
    receptionUrl: config.reception.internalUrl,
    token: config.secrets.internalToken,
    logger,
    ...(options.eventFlushDelayMs === undefined ? {} : { flushDelayMs: options.eventFlushDelayMs }),
    onSent: (n) => metrics.eventsSent.inc(n),
    onDropped: (n) => metrics.eventsDropped.inc(n),
    onBatchFailed: () => metrics.eventBatchFailures.inc(),
  });

  const catalog = buildCatalog({
    root: server.root,
    logger,
    clock,
    ...(options.rescanIntervalMs === undefined ? {} : { rescanIntervalMs: options.rescanIntervalMs }),
    onScan: ({ durationMs }) => metrics.catalogScan.observe(durationMs / 1000),
  });

  const metrics = buildContentMetrics(serverId, {
    transfers: () => ledger.transfers,
    serving: () => ledger.serving,
    servingMax: () => ledger.servingMax,
    capacity: () => server.capacity,
    draining: () => draining,
    catalogItems: () => catalog.size(),
    outbox: () => events.pending(),
    notices: () => registry.counts().notices,
    revocations: () => {
      const c = registry.counts();
      return c.revokedTickets + c.revokedOrders;
    },
  });

  const receiver = buildTicketReceiver({ serverId, tickets, ring: keyRingOf(config), state: registry });

  /** Asked only when a request is refused for load, so the sort in it never runs per request. */
  const retryAfterSeconds = () =>
    retryAfterFrom(serviceTimes.values(), config.reception.queue.maxRetryAfterSeconds);

  const handler = buildPublicHandler({
    serverId,
    policy: tickets.policy,
    capacity: server.capacity,
    connectionsPerTicket: server.connectionsPerTicket,
    receiver,
    catalog,
    ledger,
    registry,
    events,
    metrics,
    throughput,
    serviceTimes,
    clock,
    logger,
    isDraining: () => draining,
    retryAfterSeconds,
    trusted: trustedProxies(server.trustProxy),
    onTransferEnd: () => {
      if (ledger.transfers > 0) return;
      for (const w of transferWaiters) w();
    },
  });

  // Headers, request and keep-alive timeouts (slowloris; src/util/listener-timeouts.ts).
  const timeouts = listenerTimeouts();
  const serverOptions = nodeServerOptions(timeouts);
  // `tls` set: HTTPS on the public listener. The files are read here, so a bad one fails the build
  // (TlsFileError, exit 2 naming the key) before anything listens.
  const tlsKey = `contentServers[${index}].tls`;
  const publicServer: Server | HttpsServer = server.tls
    ? createHttpsServer({ ...serverOptions, ...readTls(server.tls, tlsKey) }, handler)
    : createServer(serverOptions, handler);
  let tlsWatcher: TlsWatcher | null = null;
  // Without a 'timeout' listener Node destroys the socket: a client that stopped reading frees its
  // slot instead of holding it forever.
  publicServer.setTimeout(options.idleTimeoutMs ?? timeouts.idleMs);
  // Past this many sockets Node drops a new connection at once: each transfer holds a 64 KiB read
  // buffer (the large ones come from a capped pool, read-buffers.ts), so connections are what
  // bounds the memory a flood can take (issue 10).
  publicServer.maxConnections = server.maxConnections ?? server.capacity * server.connectionsPerTicket + 64;

  // New at every start: the reception sees a restart in it and ends what the old instance held
  // (its transfers, notices and revocations died with it).
  const instanceId = randomBytes(9).toString('base64url');
  const internal = buildInternalApi({
    token: config.secrets.internalToken,
    logger,
    clock,
    registry,
    metrics,
    loadReport: (catalogSince) =>
      buildLoadReport(
        {
          serverId,
          instanceId,
          nowMs: clock.now(),
          transfers: ledger.transfers,
          activeTickets: ledger.activeTickets(),
          untrackedActive: ledger.untrackedActive,
          capacity: server.capacity,
          rssBytes: process.memoryUsage.rss(),
          memoryLimitMb: server.memoryLimitMb,
          bytesPerSecond: throughput.perSecond(clock.now()),
          serviceTimesMs: serviceTimes.values(),
          draining,
          catalogVersion: catalog.version(),
          catalog: () => catalog.entries(),
        },
        catalogSince,
      ),
    health: () => ({
      status: draining ? 'draining' : catalog.ready ? 'ok' : 'starting',
      items: catalog.size(),
      catalogVersion: catalog.version(),
    }),
  });

  function sweep(): void {
    const now = clock.now();
    const { abandoned } = ledger.sweep(now, {
      claimMs: tickets.claimSeconds * 1000,
      skewMs: tickets.clockSkewSeconds * 1000,
    });
    for (const a of abandoned) {
      events.report({
        type: 'abandoned',
        jti: a.jti,
        oid: a.oid,
        path: a.path,
        at: now,
        delivered: a.delivered,
        size: a.size,
      });
    }
    registry.sweep(now);
  }

  async function listenPublic(): Promise<void> {
    const addr = parseListen(server!.listen)!;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new ListenError(`contentServers[${index}].listen`, server!.listen, err.code ?? String(err)));
      };
      publicServer.once('error', onError);
      // As the reception's: a rush's downloads start by the thousand, and the default backlog
      // (511) drops SYNs, which costs each client a whole retransmit (1 s, then 3 s).
      publicServer.listen({ host: addr.host, port: addr.port, backlog: 4096 }, () => {
        publicServer.off('error', onError);
        resolve();
      });
    });
  }

  async function listenInternal(): Promise<void> {
    const addr = parseListen(server!.internalListen)!;
    try {
      await internal.listen({ host: addr.host, port: addr.port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ListenError(`contentServers[${index}].internalListen`, server!.internalListen, code);
    }
  }

  function closePublic(): Promise<void> {
    return new Promise((resolve) => {
      if (!publicServer.listening) return resolve();
      publicServer.close(() => resolve());
      publicServer.closeIdleConnections();
    });
  }

  /** Resolves when no transfer is in progress, or when the grace period ends. */
  function transfersDone(graceMs: number): Promise<void> {
    if (ledger.transfers === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        transferWaiters.delete(done);
        graceCut = null;
        resolve();
      };
      const timer = setTimeout(done, graceMs);
      transferWaiters.add(done);
      graceCut = done;
    });
  }

  async function shutdown(graceMs: number): Promise<void> {
    draining = true;
    logger.info({ graceMs, transfers: ledger.transfers }, 'draining');
    // Idle keep-alive sockets would otherwise hold the listener open.
    publicServer.closeIdleConnections();
    await transfersDone(graceMs);
    const cut = ledger.transfers;
    const closed = closePublic();
    publicServer.closeAllConnections();
    await closed;
    if (cut > 0) logger.warn({ cut }, 'grace period over: cut transfers still in progress');
    if (sweepTimer) clearInterval(sweepTimer);
    tlsWatcher?.close();
    catalog.stop();
    const flushed = await events.flush(options.eventFlushTimeoutMs ?? 5000);
    if (!flushed)
      logger.warn({ lost: events.pending() }, 'could not deliver every transfer event before exit');
    await events.close();
    await internal.close();
    logger.info('stopped');
  }

  return {
    serverId,
    server,
    async start() {
      try {
        await listenPublic();
        await listenInternal();
      } catch (err) {
        await closePublic();
        await internal.close().catch(() => {});
        throw err;
      }
      if (server.tls && 'setSecureContext' in publicServer)
        tlsWatcher = watchTls(publicServer, server.tls, tlsKey, logger, options.tlsWatchIntervalMs);
      sweepTimer = setInterval(sweep, options.sweepIntervalMs ?? 1000);
      sweepTimer.unref();
      logger.info(
        {
          id: serverId,
          publicUrl: server.publicUrl,
          internalUrl: server.internalUrl,
          policy: tickets.policy,
        },
        'content server listening; scanning the catalog',
      );
      await catalog.start();
      logger.info({ items: catalog.size(), version: catalog.version() }, 'catalog ready');
    },
    stop(graceMs = 10_000) {
      if (stopping) {
        // A second stop (a second Ctrl-C) ends the grace period now.
        graceCut?.();
        return stopping;
      }
      stopping = shutdown(graceMs);
      return stopping;
    },
    publicAddress: () => (publicServer.address() as AddressInfo | null) ?? null,
    internalAddress: () => {
      const a = internal.server.address();
      return a && typeof a === 'object' ? a : null;
    },
    get draining() {
      return draining;
    },
    catalog,
    ledger,
    registry,
    events,
    metrics,
  };
}
