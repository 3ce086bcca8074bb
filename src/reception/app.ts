/**
 * The reception, assembled (the seed's FIG. 3 and FIG. 11): `buildReception({ config, store,
 * clock, logger, mailer })` wires the load monitor, slot ledger, allocator, issuer, notice
 * dispatcher, waiting line and order desk together, and returns the two fastify apps (public and
 * internal, testable with `inject()`) with `start()` to listen and run the timers and `stop()` to
 * shut down gracefully: stop taking requests, let the ones in progress finish, flush notices.
 * Nothing here is a module-level singleton; two receptions can live in one process.
 */
import type { Server as HttpsServer } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { keyRingOf } from '../config/keys.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/index.js';
import { trustedProxies } from '../util/client-address.js';
import { type Clock, systemClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { type TlsWatcher, watchTls } from '../util/tls.js';
import { buildAcceptor } from './acceptor.js';
import { loadOf } from './allocator.js';
import { buildEventIntake } from './event-intake.js';
import { buildInternalApi } from './internal-api.js';
import { createInternalClient, type InternalClient } from './internal-client.js';
import { buildLoadMonitor, type LoadMonitor } from './load-monitor.js';
import { buildLostTickets, liveNotices } from './lost-tickets.js';
import type { Mailer } from './mailer.js';
import { createReceptionMetrics, type ReceptionMetrics } from './metrics.js';
import { buildNoticeDispatcher, type NoticeDispatcher } from './notice-dispatcher.js';
import { buildOrderDesk, type OrderDesk } from './order-desk.js';
import { createQueueTokens } from './queue-token.js';
import { buildRetentionSweeper } from './retention-sweeper.js';
import { isUsable } from './server-health.js';
import { SlotLedger } from './slot-ledger.js';
import { SlotUseMeter } from './slot-use.js';
import type { StatusView } from './status-view.js';
import { watchStore } from './store-health.js';
import { buildTicketIssuer } from './ticket-issuer.js';
import { buildUnusedTickets } from './unused-tickets.js';
import { buildWaitingLine, type WaitingLine } from './waiting-line.js';

export interface ReceptionDeps {
  config: Config;
  store: Store;
  logger: Logger;
  mailer: Mailer;
  clock?: Clock;
  /** Uniform in [0, 1); the jitter of Retry-After. */
  random?: () => number;
  /** The internal-network client; tests may pass a fake. */
  client?: InternalClient;
}

export interface Reception {
  readonly publicApp: FastifyInstance;
  readonly internalApp: FastifyInstance;
  readonly monitor: LoadMonitor;
  readonly desk: OrderDesk;
  readonly line: WaitingLine;
  readonly ledger: SlotLedger;
  readonly dispatcher: NoticeDispatcher;
  readonly metrics: ReceptionMetrics;
  /** Listens on `reception.listen` and `reception.internalListen`, and starts the timers. */
  start(): Promise<{ publicUrl: string; internalUrl: string }>;
  /** One round of the timers' work, now (tests that do not call `start`). */
  housekeeping(): Promise<void>;
  stop(): Promise<void>;
  ready(): boolean;
}

const HOUSEKEEPING_MS = 250;
const LINE_MS = 1000;
const REVOCATION_RETRY_MS = 5000;
/** How often retention sweeps (retention is at least 60 s, so a sweep is never late by much). */
const SWEEP_MS = 1000;
const LISTEN_BACKLOG = 4096;
/** The sliding window of "slot use while anyone waits" on the dashboard and in the metrics. */
const SLOT_USE_WINDOW_MS = 60_000;

/** The latest allocation with its instant in ISO 8601, like every instant of `GET /status`. */
const allocationView = (last: ReturnType<OrderDesk['lastAllocation']>): StatusView['lastAllocation'] =>
  last ? { ...last, at: new Date(last.at).toISOString() } : null;

/** `{"freed": [ticketId, server]}` from another reception; undefined for anything else. */
function peerFreed(message: string): [string, string] | undefined {
  try {
    const m = JSON.parse(message) as { freed?: unknown };
    const f = m.freed;
    if (Array.isArray(f) && f.length === 2 && typeof f[0] === 'string' && typeof f[1] === 'string')
      return [f[0], f[1]];
  } catch {
    // Not ours to understand: ignored.
  }
  return undefined;
}

export function buildReception(deps: ReceptionDeps): Reception {
  const { config, logger, mailer } = deps;
  const clock = deps.clock ?? systemClock;
  // Every part below uses the watched store, so any of their calls can notice an outage and its end.
  const { store, health: storeHealth } = watchStore(deps.store, clock, logger);
  const random = deps.random ?? Math.random;
  const rc = config.reception;
  const ring = keyRingOf(config);
  const client =
    deps.client ??
    createInternalClient({
      servers: config.contentServers,
      token: config.secrets.internalToken,
      timeoutMs: rc.monitor.timeoutMs,
    });
  const ledger = new SlotLedger();
  const metrics = createReceptionMetrics();
  const tokens = createQueueTokens(ring);
  const monitor = buildLoadMonitor({ config, store, ledger, client, clock, logger });
  const dispatcher = buildNoticeDispatcher({
    servers: config.contentServers.map((s) => s.id),
    client,
    clock,
    logger,
  });
  monitor.onUp((id) => void dispatcher.retryPending(id));
  const lost = buildLostTickets({ store, ledger, now: () => clock.now(), logger });
  const unused = buildUnusedTickets({
    store,
    ledger,
    logger,
    claimSeconds: rc.tickets.claimSeconds,
    claimSecondsWhileWaiting: rc.tickets.claimSecondsWhileWaiting,
    inUse: (server) => monitor.server(server)?.report?.activeTickets,
    revoke: (revocations) => dispatcher.revoke(revocations),
    clockSkewSeconds: rc.tickets.clockSkewSeconds,
  });
  monitor.onLost(async (id, why) => {
    // A restarted server is told again what it forgot before it is used (issue 8).
    if (why.kind === 'restarted') await dispatcher.resendAfterRestart(id, (n) => liveNotices(store, n));
    await lost.end(id, why.kind, why.kind === 'restarted' ? why.keep : undefined);
  });
  const line = buildWaitingLine({ config: rc, store, monitor, ledger, tokens, logger, random });
  const issuer = buildTicketIssuer({ config, ring, store });
  const desk = buildOrderDesk({
    config,
    store,
    monitor,
    ledger,
    issuer,
    dispatcher,
    line,
    tokens,
    mailer,
    metrics,
    clock,
    logger,
    random,
  });
  // Admission without delay (CONTRACT §3): a freed slot wakes the held-open retries here, and
  // the other receptions on the same store hear of it at once.
  const broadcast = store.broadcast;
  ledger.onFreed((ticketId, server, fromPeer) => {
    desk.wake();
    if (!fromPeer && broadcast) void broadcast.publish(JSON.stringify({ freed: [ticketId, server] }));
  });
  if (broadcast) {
    void broadcast.subscribe((message) => {
      const freed = peerFreed(message);
      if (freed) ledger.releasedByPeer(freed[0], freed[1], clock.now());
      else if (message === 'holds') desk.wake();
    });
  }
  const sweeper = buildRetentionSweeper({ store, retentionMs: rc.retention, logger });
  const intake = buildEventIntake({ store, monitor, ledger, metrics, clock, logger });
  const slotUse = new SlotUseMeter(SLOT_USE_WINDOW_MS);
  let stopping = false;

  /** What the slot-use meter samples: the line, and the slots of the servers that take tickets. */
  const sampleSlotUse = (now: number) => {
    let usable = 0;
    let used = 0;
    for (const s of monitor.servers()) {
      if (!isUsable(s.health) || s.report?.draining) continue;
      const capacity = monitor.capacityOf(s.config.id);
      usable += capacity;
      // Untracked transfers (other receptions' tickets) fill slots as much as ours do.
      used += Math.min(capacity, ledger.outstanding(s.config.id) + s.untracked);
    }
    slotUse.sample(now, { waiting: line.length(), usable, used });
  };
  const slotUseView = () => ({
    windowSeconds: SLOT_USE_WINDOW_MS / 1000,
    window: slotUse.windowShare(),
    run: slotUse.runShare(),
  });

  const ready = () =>
    !stopping &&
    storeHealth.up() &&
    monitor.anyReportArrived() &&
    monitor.servers().some((s) => isUsable(s.health) && !s.report?.draining);

  const serverViews = () =>
    monitor.snapshots('', new Map()).map((snap) => {
      const s = monitor.server(snap.id);
      return {
        id: snap.id,
        load: loadOf(snap).load,
        up: snap.status === 'up',
        usable: snap.status === 'up' && !snap.suspect && !snap.draining,
        health: snap.status === 'unknown' ? 0 : snap.status === 'up' ? 1 : 2,
        failures: s?.health.failures ?? 0,
        outstanding: snap.outstanding,
        untracked: snap.untracked,
        capacity: snap.capacity,
        distance: snap.distance,
        draining: snap.draining,
      };
    });

  metrics.bind({
    servers: serverViews,
    queueLength: () => line.length(),
    calibration: () => line.calibration(),
    admissionRate: () => line.admissionRate(),
    completionRate: () => ledger.completionsPerSecond(),
    estimatedWaitSeconds: () => line.lastEstimate(),
    mail: () => mailer.stats,
    pendingRevocations: () => dispatcher.pendingCount(),
    heldOpen: () => desk.heldOpen(),
    slotUse: slotUseView,
  });

  /** `GET /status` on the internal port: what the dashboard draws. */
  const status = (): StatusView => {
    const now = clock.now();
    const snaps = new Map(monitor.snapshots('', new Map()).map((snap) => [snap.id, snap]));
    return {
      now: new Date(now).toISOString(),
      servers: monitor.servers().map((s) => {
        const snap = snaps.get(s.config.id);
        const load = snap ? loadOf(snap) : undefined;
        return {
          id: s.config.id,
          health: s.health.status,
          healthSince: new Date(s.health.since).toISOString(),
          suspect: s.health.suspect,
          failures: s.health.failures,
          lastError: s.health.lastError ?? null,
          draining: s.report?.draining ?? false,
          capacity: s.config.capacity,
          usableCapacity: monitor.capacityOf(s.config.id),
          outstanding: ledger.outstanding(s.config.id),
          untracked: s.untracked,
          active: s.report?.active ?? null,
          load: load?.load ?? null,
          slotLoad: load?.slotLoad ?? null,
          memoryShare: load?.memoryShare ?? null,
          rssBytes: s.report?.rssBytes ?? null,
          memoryLimitBytes: snap?.memoryLimitBytes ?? null,
          bytesPerSecond: s.report?.bytesPerSecond ?? null,
          distance: monitor.distanceOf(s),
          rttMs: s.rttMs ?? null,
          lastReportAgeMs: s.reportAt === undefined ? null : now - s.reportAt,
          catalogItems: s.catalog?.size ?? 0,
          polls: s.polls,
        };
      }),
      exclusions: [...monitor.itemIndex().exclusions],
      lastAllocation: allocationView(desk.lastAllocation()),
      queue: {
        length: line.length(),
        estimatedWaitSeconds: line.lastEstimate(),
        estimatedWaitRangeSeconds: line.lastRange() ?? null,
        calibration: line.calibration(),
        admissionRate: line.admissionRate(),
        heldOpen: desk.heldOpen(),
        slotUse: slotUseView(),
      },
      pendingRevocations: dispatcher.pendingCount(),
      store: { up: storeHealth.up(), outages: storeHealth.outages() },
    };
  };

  const publicApp = buildAcceptor({
    config,
    desk,
    tokens,
    trusted: trustedProxies(rc.trustProxy),
    metrics,
    clock,
    logger,
    ready,
  });
  const internalApp = buildInternalApi({ config, desk, intake, metrics, logger, ready, status });

  const timers: NodeJS.Timeout[] = [];
  let tlsWatcher: TlsWatcher | null = null;
  let lastLine = 0;
  let lastRetry = 0;
  let lastSweep = 0;
  let busy = false;

  async function housekeeping(): Promise<void> {
    const now = clock.now();
    try {
      await storeHealth.check();
      ledger.apply({ kind: 'ended', tickets: await store.lapseUnclaimed(now), at: now, completion: true });
      if (now - lastLine >= LINE_MS) {
        lastLine = now;
        ledger.tick(now);
        if (rc.queue.enabled) {
          await unused.lapse(now, line.length());
          const started = await line.maintain(now);
          if (started.length > 0) {
            desk.wake();
            // The waiter a slot is now held for may hold its retry open at another reception.
            if (broadcast) void broadcast.publish('holds');
          }
        }
        sampleSlotUse(now);
      }
      if (now - lastRetry >= REVOCATION_RETRY_MS) {
        lastRetry = now;
        await dispatcher.retryPending();
      }
      if (now - lastSweep >= SWEEP_MS) {
        lastSweep = now;
        await sweeper.sweep(now);
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'housekeeping failed; will retry');
    }
  }

  return {
    publicApp,
    internalApp,
    monitor,
    desk,
    line,
    ledger,
    dispatcher,
    metrics,
    ready,
    housekeeping,
    async start() {
      const internal = await listen(internalApp, rc.internalListen, 'reception.internalListen');
      const pub = await listen(publicApp, rc.listen, 'reception.listen');
      if (rc.tls) {
        tlsWatcher = watchTls(publicApp.server as unknown as HttpsServer, rc.tls, 'reception.tls', logger);
      }
      monitor.start();
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        void housekeeping().finally(() => {
          busy = false;
        });
      }, HOUSEKEEPING_MS);
      t.unref();
      timers.push(t);
      logger.info({ public: pub, internal }, 'reception listening');
      return { publicUrl: pub, internalUrl: internal };
    },
    async stop() {
      stopping = true;
      for (const t of timers) clearInterval(t);
      tlsWatcher?.close();
      // Public first: no new orders; the ones in progress finish (fastify waits for them), and
      // the held-open ones are answered with where they stand.
      const closing = publicApp.close();
      await desk.releaseHeld();
      await closing;
      await monitor.stop();
      await dispatcher.close();
      await internalApp.close();
      await client.close();
      mailer.close();
    },
  };
}

/** The error a taken port becomes: the CLI prints it and exits 2. */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

async function listen(app: FastifyInstance, address: string, key: string): Promise<string> {
  const m = /^(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(address);
  const host = m?.[1] ?? m?.[2] ?? '127.0.0.1';
  const port = Number(m?.[3] ?? 0);
  try {
    // A rush opens thousands of connections at once; the default backlog (511) would make the
    // kernel drop SYNs and clients wait a whole retransmit (1 s, 3 s) before they are even heard.
    return await app.listen({ host, port, backlog: LISTEN_BACKLOG });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ListenError(`${key}: port ${address} is already in use`, key);
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
      throw new ListenError(`${key}: cannot listen on ${address} (${code})`, key);
    }
    throw err;
  }
}
