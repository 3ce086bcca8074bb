/**
 * The load condition monitor (the seed's module 132, step Sa31/Sa51): polls every content
 * server's `GET /load?catalogSince=V` each `monitor.intervalMs` (bounded by `timeoutMs`) and keeps
 * what the allocator needs to know about each one — health with hysteresis (server-health.ts),
 * whether it is draining, its memory, its distance (configured, or an EWMA of the poll's round
 * trip), the transfers it is running that no known ticket covers, its record of service times,
 * and its catalog (item-index.ts applies the majority rule). Every interval it also refreshes the
 * slot ledger from a shared store, so reservations made by other receptions count here too.
 *
 * A store this process owns alone (`memory:`, `sqlite:`, the ones without a `broadcast`) changes
 * only through calls whose results reach the ledger (`SlotLedger.apply`), so its refresh is a
 * safety net, run every `EXCLUSIVE_REFRESH_MS`: a refresh copies and walks every outstanding
 * ticket, and with 120,000 held tickets in the reception bench (issue 12) a refresh four times a
 * second was 11 % of the reception's CPU and one of the event-loop stalls behind its p99.
 */
import type { Config, ContentServerConfig } from '../config/schema.js';
import type { LoadReport } from '../protocol/internal.js';
import type { Store } from '../store/index.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { freeSlotsOf, type ServerSnapshot } from './allocator.js';
import type { InternalClient } from './internal-client.js';
import { buildItemIndex, catalogMap, type ItemCopy, type ItemIndex } from './item-index.js';
import { type Verdict, verdict } from './lost-tickets.js';
import {
  effectiveCapacity,
  type HealthRules,
  type HealthState,
  initialHealth,
  isUsable,
  onFailure,
  onGoodReport,
  SUCCESSES_BEFORE_UP,
} from './server-health.js';
import type { SlotLedger } from './slot-ledger.js';

export interface ServerState {
  readonly config: ContentServerConfig;
  health: HealthState;
  report: LoadReport | undefined;
  /** Local time of the last good report. */
  reportAt: number | undefined;
  /** EWMA of the poll round trip, ms. */
  rttMs: number | undefined;
  catalogVersion: string;
  catalog: Map<string, ItemCopy> | undefined;
  /** Transfers in progress that no outstanding ticket covers. */
  untracked: number;
  /** Local times of recent failed transfers, for burst detection. */
  transferFailures: number[];
  polls: { ok: number; failed: number };
}

export interface LoadMonitor {
  start(): void;
  stop(): Promise<void>;
  /** One poll of every server and one ledger refresh, now (start-up and tests). */
  pollAll(): Promise<void>;
  servers(): readonly ServerState[];
  server(id: string): ServerState | undefined;
  itemIndex(): ItemIndex;
  /** Servers that are up and hold an agreeing copy of the item (a 404 when none). */
  upHolders(item: string): string[];
  /** Servers that may get a ticket for the item now (up, not suspect, not draining, hold it). */
  usableHolders(item: string): string[];
  /** Free slots per usable server, before any hold. */
  freeSlots(): Map<string, number>;
  snapshots(item: string, heldAhead: ReadonlyMap<string, number>): ServerSnapshot[];
  capacityOf(serverId: string): number;
  distanceOf(server: ServerState): number | null;
  anyReportArrived(): boolean;
  noticeFailed(serverId: string, reason: string): void;
  transferFailed(serverId: string): void;
  /** Called with a server id whenever that server comes up (revocations retry then). */
  onUp(listener: (serverId: string) => void): void;
  /**
   * Called, and awaited before the report is used, when a server restarted (new instance id) or
   * was silent longer than `claimSeconds` (src/reception/lost-tickets.ts).
   */
  onLost(listener: (serverId: string, why: Exclude<Verdict, { kind: 'none' }>) => Promise<void>): void;
}

const RTT_ALPHA = 0.3;
const BURST_WINDOW_MS = 10_000;
const BURST_MIN = 5;

/** How often the ledger is checked against a store this process owns alone. */
export const EXCLUSIVE_REFRESH_MS = 30_000;

export function buildLoadMonitor(deps: {
  config: Config;
  store: Store;
  ledger: SlotLedger;
  client: InternalClient;
  clock: Clock;
  logger: Logger;
}): LoadMonitor {
  const { config, store, ledger, client, clock, logger } = deps;
  const { intervalMs, failuresBeforeDown } = config.reception.monitor;
  const rules: HealthRules = {
    failuresBeforeDown,
    successesBeforeUp: SUCCESSES_BEFORE_UP,
    rampMs: Math.max(2000, 10 * intervalMs),
  };
  const order = config.contentServers.map((s) => s.id);
  const states = new Map<string, ServerState>(
    config.contentServers.map((s) => [
      s.id,
      {
        config: s,
        health: initialHealth(clock.now()),
        report: undefined,
        reportAt: undefined,
        rttMs: undefined,
        catalogVersion: '',
        catalog: undefined,
        untracked: 0,
        transferFailures: [],
        polls: { ok: 0, failed: 0 },
      },
    ]),
  );
  let index: ItemIndex = buildItemIndex(order, new Map());
  let anyReport = false;
  let running = false;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<unknown>>();
  const upListeners: ((serverId: string) => void)[] = [];
  const lostListeners: ((serverId: string, why: Exclude<Verdict, { kind: 'none' }>) => Promise<void>)[] = [];
  const claimMs = config.reception.tickets.claimSeconds * 1000;
  const sweptForSilence = new Map<string, number>();

  /** Runs the lost-ticket listeners when `verdict` says so; never throws (the poll goes on). */
  const checkLost = async (s: ServerState, current: LoadReport | undefined): Promise<void> => {
    const v = verdict({
      previous: s.report,
      current,
      lastGoodAt: s.reportAt,
      sweptForSilenceAt: sweptForSilence.get(s.config.id),
      now: clock.now(),
      claimMs,
    });
    if (v.kind === 'none') return;
    if (v.kind === 'silent') sweptForSilence.set(s.config.id, clock.now());
    for (const l of lostListeners) {
      try {
        await l(s.config.id, v);
      } catch (err) {
        logger.warn({ server: s.config.id, err: (err as Error).message }, 'handling a lost server failed');
      }
    }
  };

  const rebuildIndex = () => {
    const catalogs = new Map<string, Map<string, ItemCopy>>();
    for (const s of states.values()) if (s.catalog) catalogs.set(s.config.id, s.catalog);
    index = buildItemIndex(order, catalogs);
    for (const e of index.exclusions) logger.warn(e, 'content server copy differs; not used for this item');
  };

  const setHealth = (s: ServerState, next: HealthState) => {
    const before = s.health.status;
    s.health = next;
    if (before === next.status) return;
    const level = next.status === 'down' ? 'warn' : 'info';
    logger[level](
      { server: s.config.id, from: before, to: next.status, reason: next.lastError },
      'content server health',
    );
    if (next.status === 'up') for (const l of upListeners) l(s.config.id);
  };

  const untrackedOf = (s: ServerState): number => {
    const r = s.report;
    if (!r) return 0;
    const mine = ledger.outstandingIds(s.config.id);
    let unknown = 0;
    for (const id of r.activeTickets) {
      if (mine.has(id)) continue;
      const freedAt = ledger.freedAt(id);
      // Freed after the report was made: the report is stale about it, it is not a transfer.
      if (freedAt !== undefined && freedAt >= r.at) continue;
      unknown++;
    }
    return r.untrackedActive + unknown;
  };

  async function pollOne(s: ServerState): Promise<void> {
    const started = clock.now();
    const t0 = performance.now();
    try {
      const report = await client.load(s.config.id, s.catalogVersion);
      const rtt = performance.now() - t0;
      if (report.serverId !== s.config.id) {
        throw new Error(`answered as server ${JSON.stringify(report.serverId)}`);
      }
      s.rttMs = s.rttMs === undefined ? rtt : RTT_ALPHA * rtt + (1 - RTT_ALPHA) * s.rttMs;
      // Before the new report is used: a restarted server's old tickets end first.
      await checkLost(s, report);
      s.report = report;
      s.reportAt = clock.now();
      s.polls.ok += 1;
      anyReport = true;
      if (report.catalog) {
        s.catalog = catalogMap(report.catalog);
        s.catalogVersion = report.catalogVersion;
        rebuildIndex();
      } else if (report.catalogVersion !== s.catalogVersion) {
        // Asked with an old version and got no catalog: ask for all of it next time.
        s.catalogVersion = '';
      }
      s.untracked = untrackedOf(s);
      setHealth(s, onGoodReport(s.health, clock.now(), rules));
    } catch (err) {
      s.polls.failed += 1;
      const reason = `load report: ${(err as Error).message}`;
      setHealth(s, onFailure(s.health, started, rules, reason));
      await checkLost(s, undefined);
    }
  }

  async function refreshLedger(): Promise<void> {
    ledger.beginRefresh();
    try {
      const outstanding = await store.outstanding();
      ledger.refresh(outstanding, clock.now());
    } catch (err) {
      ledger.abortRefresh();
      logger.warn({ err: (err as Error).message }, 'reading outstanding tickets from the store failed');
      return;
    }
    for (const s of states.values()) s.untracked = untrackedOf(s);
  }

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    return p;
  };

  function schedule(fn: () => Promise<void>, everyMs = intervalMs): void {
    const loop = () => {
      if (!running) return;
      const began = performance.now();
      void track(fn()).finally(() => {
        if (!running) return;
        const wait = Math.max(0, everyMs - (performance.now() - began));
        const t = setTimeout(() => {
          timers.delete(t);
          loop();
        }, wait);
        t.unref();
        timers.add(t);
      });
    };
    loop();
  }

  const usable = (s: ServerState) => isUsable(s.health) && !(s.report?.draining ?? false);

  /** One server as the allocator sees it: the allocator's rules decide load and room from this. */
  const snapshotOf = (
    s: ServerState,
    now: number,
    holdsItem: boolean,
    itemExclusion: string | undefined,
    held: number,
  ): ServerSnapshot => ({
    id: s.config.id,
    status: s.health.status,
    suspect: s.health.suspect,
    draining: s.report?.draining ?? false,
    holdsItem,
    itemExclusion,
    capacity: effectiveCapacity(s.config.capacity, s.health, now, rules),
    configuredCapacity: s.config.capacity,
    outstanding: ledger.outstanding(s.config.id),
    untracked: s.untracked,
    held,
    rssBytes: s.report?.rssBytes ?? null,
    memoryLimitBytes: memoryLimitOf(s),
    distance: monitor.distanceOf(s),
  });

  const monitor: LoadMonitor = {
    start() {
      if (running) return;
      running = true;
      for (const s of states.values()) schedule(() => pollOne(s));
      schedule(refreshLedger, store.broadcast ? intervalMs : Math.max(intervalMs, EXCLUSIVE_REFRESH_MS));
    },
    async stop() {
      running = false;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.allSettled([...inFlight]);
    },
    async pollAll() {
      await Promise.all([...states.values()].map((s) => track(pollOne(s))));
      await track(refreshLedger());
    },
    servers: () => [...states.values()],
    server: (id) => states.get(id),
    itemIndex: () => index,
    upHolders(item) {
      return index.holders(item).filter((id) => states.get(id)?.health.status === 'up');
    },
    usableHolders(item) {
      return index.holders(item).filter((id) => {
        const s = states.get(id);
        return s !== undefined && usable(s);
      });
    },
    freeSlots() {
      // The allocator's rule (freeSlotsOf), so the line and the allocator never disagree on room.
      const now = clock.now();
      const free = new Map<string, number>();
      for (const s of states.values()) {
        if (!usable(s)) continue;
        free.set(s.config.id, freeSlotsOf(snapshotOf(s, now, false, undefined, 0)));
      }
      return free;
    },
    snapshots(item, heldAhead) {
      const now = clock.now();
      const holders = new Set(index.holders(item));
      return [...states.values()].map((s) =>
        snapshotOf(
          s,
          now,
          holders.has(s.config.id),
          index.exclusion(item, s.config.id),
          heldAhead.get(s.config.id) ?? 0,
        ),
      );
    },
    capacityOf(serverId) {
      const s = states.get(serverId);
      return s ? effectiveCapacity(s.config.capacity, s.health, clock.now(), rules) : 0;
    },
    distanceOf(s) {
      return s.config.distance ?? s.rttMs ?? null;
    },
    anyReportArrived: () => anyReport,
    noticeFailed(serverId, reason) {
      const s = states.get(serverId);
      if (!s) return;
      setHealth(s, onFailure(s.health, clock.now(), rules, `ticket notice: ${reason}`, true));
    },
    transferFailed(serverId) {
      const s = states.get(serverId);
      if (!s) return;
      const now = clock.now();
      s.transferFailures = s.transferFailures.filter((t) => now - t < BURST_WINDOW_MS);
      s.transferFailures.push(now);
      if (s.transferFailures.length >= Math.max(BURST_MIN, Math.ceil(s.config.capacity / 2))) {
        s.transferFailures = [];
        setHealth(s, onFailure(s.health, now, rules, 'a burst of failed transfers', true));
      }
    },
    onLost(listener) {
      lostListeners.push(listener);
    },
    onUp(listener) {
      upListeners.push(listener);
    },
  };
  return monitor;
}

function memoryLimitOf(s: ServerState): number | null {
  if (s.config.memoryLimitMb !== null) return s.config.memoryLimitMb * 1024 * 1024;
  return s.report?.memoryLimitBytes ?? null;
}
