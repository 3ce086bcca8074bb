/**
 * Server allocation (the seed's server allocation processing module 133, steps Sa33–Sa34 and
 * Sa53–Sa54), as a pure function so it can be unit-tested and simulated. It ranks the content
 * servers for one order and says, for every server, why it was or was not chosen (the way
 * mirrorbits' `?mirrorlist` does), so an operator never has to guess.
 *
 * Load (CONTRACT §2) = the larger of (outstanding tickets + untracked transfers + slots held for
 * waiting clients) / capacity and resident memory / memory limit. Candidates are up, not
 * suspect, not draining, hold the item, and have a free slot. Among candidates whose load is
 * within `tieTolerance` of the least, the nearer (smaller distance) wins: the seed's distance
 * rule. The ranking matters beyond the first place: when the store finds the first choice full
 * (another reception took the slot) or its notice fails, the next one is tried.
 */
import type { HealthStatus } from './server-health.js';

export interface ServerSnapshot {
  id: string;
  status: HealthStatus;
  /** A notice or transfers failed since the last good report. */
  suspect: boolean;
  draining: boolean;
  /** Holds a copy of the item that agrees with the majority. */
  holdsItem: boolean;
  /** Why its copy of the item is not used (majority rule), when it has one. */
  itemExclusion?: string | undefined;
  /** Usable capacity now (lower than configured while ramping in). */
  capacity: number;
  configuredCapacity: number;
  /** Tickets issued for it that are neither finished nor lapsed. */
  outstanding: number;
  /** Transfers in progress that no known ticket covers. */
  untracked: number;
  /** Free slots held for clients earlier in the waiting line. */
  held: number;
  rssBytes: number | null;
  memoryLimitBytes: number | null;
  /** Lower is nearer; null when neither configured nor measured yet. */
  distance: number | null;
}

export interface AllocationInput {
  servers: readonly ServerSnapshot[];
  tieTolerance: number;
  /** Servers to use only when no other has room (the previous ticket's, for a fresh ticket). */
  avoid?: ReadonlySet<string>;
}

export interface ServerVerdict {
  server: string;
  load: number;
  slotLoad: number;
  memoryShare: number | null;
  freeSlots: number;
  candidate: boolean;
  /** 1-based place in the ranking, for candidates. */
  rank?: number;
  reason: string;
}

export interface Allocation {
  /** The server to try first; undefined when no server has room (busy). */
  choice: string | undefined;
  /** Candidates in the order to try them. */
  ranked: string[];
  verdicts: ServerVerdict[];
}

/** Loads this close are equal even at tolerance 0 (float noise). */
const EPSILON = 1e-9;

export function loadOf(s: ServerSnapshot): { load: number; slotLoad: number; memoryShare: number | null } {
  const slotLoad = (s.outstanding + s.untracked + s.held) / Math.max(1, s.capacity);
  const memoryShare =
    s.memoryLimitBytes !== null && s.memoryLimitBytes > 0 && s.rssBytes !== null
      ? s.rssBytes / s.memoryLimitBytes
      : null;
  return { load: Math.max(slotLoad, memoryShare ?? 0), slotLoad, memoryShare };
}

export function freeSlotsOf(s: ServerSnapshot): number {
  const { memoryShare } = loadOf(s);
  if (memoryShare !== null && memoryShare >= 1) return 0;
  return Math.max(0, s.capacity - s.outstanding - s.untracked - s.held);
}

const fmt = (x: number) => x.toFixed(2);
const distanceKey = (d: number | null) => (d === null ? Number.POSITIVE_INFINITY : d);

function exclusionReason(s: ServerSnapshot, free: number, memoryShare: number | null): string | undefined {
  if (s.status === 'unknown') return 'no load report yet';
  if (s.status === 'down') return 'down';
  if (s.suspect) return 'suspect: a ticket notice or transfers failed since its last good report';
  if (s.draining) return 'draining (shutting down)';
  if (!s.holdsItem) return s.itemExclusion ?? 'does not hold the item';
  if (memoryShare !== null && memoryShare >= 1)
    return `memory full: ${Math.round(memoryShare * 100)}% of its limit in use`;
  if (free <= 0) {
    const parts = [`${s.outstanding} tickets`];
    if (s.untracked > 0) parts.push(`${s.untracked} untracked transfers`);
    if (s.held > 0) parts.push(`${s.held} held for waiting clients`);
    const ramp =
      s.capacity < s.configuredCapacity ? ` (ramping in: ${s.capacity} of ${s.configuredCapacity})` : '';
    return `full: ${s.capacity} slots${ramp}, taken by ${parts.join(', ')}`;
  }
  return undefined;
}

export function allocate(input: AllocationInput): Allocation {
  const avoid = input.avoid ?? new Set<string>();
  const verdicts: ServerVerdict[] = [];
  const candidates: { s: ServerSnapshot; load: number; order: number; verdict: ServerVerdict }[] = [];
  input.servers.forEach((s, order) => {
    const { load, slotLoad, memoryShare } = loadOf(s);
    const free = freeSlotsOf(s);
    const excluded = exclusionReason(s, free, memoryShare);
    const verdict: ServerVerdict = {
      server: s.id,
      load,
      slotLoad,
      memoryShare,
      freeSlots: free,
      candidate: excluded === undefined,
      reason: excluded ?? '',
    };
    verdicts.push(verdict);
    if (excluded === undefined) candidates.push({ s, load, order, verdict });
  });

  const rankWithin = (group: typeof candidates) => {
    if (group.length === 0) return [];
    const least = Math.min(...group.map((c) => c.load));
    const limit = least + input.tieTolerance + EPSILON;
    const byLoadThenDistance = (a: (typeof group)[number], b: (typeof group)[number]) =>
      a.load - b.load || distanceKey(a.s.distance) - distanceKey(b.s.distance) || a.order - b.order;
    const tie = group
      .filter((c) => c.load <= limit)
      .sort(
        (a, b) =>
          distanceKey(a.s.distance) - distanceKey(b.s.distance) || a.load - b.load || a.order - b.order,
      );
    const rest = group.filter((c) => c.load > limit).sort(byLoadThenDistance);
    return [...tie.map((c) => ({ c, tie, least })), ...rest.map((c) => ({ c, tie, least }))];
  };

  const preferred = rankWithin(candidates.filter((c) => !avoid.has(c.s.id)));
  const fallback = rankWithin(candidates.filter((c) => avoid.has(c.s.id)));
  const ranked = [...preferred, ...fallback];
  ranked.forEach(({ c, tie, least }, i) => {
    c.verdict.rank = i + 1;
    const inTie = tie.includes(c);
    const others = tie.filter((t) => t !== c).map((t) => t.s.id);
    const dist = c.s.distance === null ? 'unknown distance' : `distance ${fmt(c.s.distance)}`;
    let why = `load ${fmt(c.load)}, ${c.verdict.freeSlots} free slots, ${dist}`;
    if (inTie && others.length > 0)
      why += `; load within ${input.tieTolerance} of the least (${fmt(least)}) with ${others.join(', ')}, ranked by distance`;
    else if (!inTie) why += `; load above the least (${fmt(least)}) + tolerance ${input.tieTolerance}`;
    if (avoid.has(c.s.id)) why += "; the order's previous server, used only when no other has room";
    c.verdict.reason = i === 0 ? `chosen: ${why}` : `candidate #${i + 1}: ${why}`;
  });
  return { choice: ranked[0]?.c.s.id, ranked: ranked.map((r) => r.c.s.id), verdicts };
}
