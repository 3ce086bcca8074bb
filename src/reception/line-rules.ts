/**
 * The waiting line's fairness rules (CONTRACT §3 "Busy", the seed's Sa36/Sa56), as one pure
 * decision: given the front of the line, the free slots per server, and the client asking now, who is
 * admitted, whose hold starts or ends, and who has lost their place.
 *
 * - While anyone waits, free slots are held for the earliest waiting clients, each on a server
 *   that holds the item it waits for; a newcomer gets a slot only if one is left over.
 * - A hold lasts `holdMs`. A waiter whose hold runs out is passed over — the slot goes to the
 *   next — but keeps its place: when it is seen again it is first in line for the next slot.
 * - A waiter well past the time it was due back (its `Retry-After`, or the end of the request it
 *   holds open) is not coming back soon: no slot is held for it, or the one held is passed on,
 *   before `holdMs` runs out. It keeps its place too. Without this a client that joins and never
 *   returns (a bot, a closed tab) idled a slot for `holdMs` at the front of a rush.
 * - A waiter not seen for `abandonMs` loses its place, so an abandoned place never stalls the line.
 * `waiting-line.ts` applies the decision to the store.
 */
import type { LineEntry } from '../store/types.js';

export interface LineRules {
  holdMs: number;
  abandonMs: number;
  /** How late past its due time a waiter may come back and still be held a slot (see `isOverdue`). */
  dueGraceMs: number;
}

export interface LineRequest {
  /** The requester's token when it is in the line. */
  token?: string | undefined;
  item: string;
}

export interface LineInput {
  /**
   * The front of the line, earliest first: the first entries, as many as can matter now (see
   * `frontWindow`). Only the front is read, so a decision costs the same at 100 or 100,000 waiting.
   */
  front: readonly LineEntry[];
  /** The line's whole length (the store counts it). */
  length: number;
  /** The requester's place when it is in line (its rank may lie beyond the front). */
  requester?: { entry: LineEntry; position: number } | undefined;
  now: number;
  rules: LineRules;
  request: LineRequest;
  /** Free slots per usable server, not counting any hold. */
  freeSlots: ReadonlyMap<string, number>;
  /** Usable servers holding an item. */
  holdersOf(item: string): readonly string[];
  /** The item an entry waits for (read from its token); undefined when unreadable. */
  itemOf(token: string): string | undefined;
}

export interface LineDecision {
  admitted: boolean;
  /** The requester's token was found in the line (it keeps its place). */
  requesterInLine: boolean;
  /** Entries that lost their place (not seen for `abandonMs`). */
  abandoned: string[];
  /** Entries whose hold starts now. */
  holdsToStart: string[];
  /** Entries whose hold ends (the slot was needed elsewhere, or the requester came back). */
  holdsToClear: string[];
  /** Slots held for clients ahead of the requester, per server: not the requester's to take. */
  heldAhead: Map<string, number>;
  /** 1-based; where the requester stands (a newcomer: where it would join). */
  position: number;
  /** Free slots, held or not, on servers holding the requester's item. */
  freeForItem: number;
  /** The requester is one a free slot is held for (or given to) now: admitted when it asks. */
  requesterHeld: boolean;
  /** The requester's `seq` when it is in line (orders held-open requests). */
  requesterSeq?: number;
  /** When the requester joined, when it is in line (its first hold is spread wider). */
  requesterJoinedAt?: number;
  /**
   * Free slots that no waiter in the front took (before a requester from beyond the front took
   * one). When the front read was full, waiters beyond it may be due them first: the caller reads
   * further (see `frontWindow`).
   */
  leftOver: number;
}

/** The most of the line's front one decision reads, however many waiters it must skip. */
const MAX_FRONT_WINDOW = 4096;

/**
 * How much of the line's front a decision reads first: holds go to the earliest waiters, at most
 * one per free slot, skipping passed-over and overdue waiters and waiters for items no free
 * server holds, and waiters whose admission is under way (`admitting`: they hold no free slot,
 * yet stand in the front until their notice is answered, and in a wave of freeings they can be
 * most of it). A few times the free slots covers those, and a floor lets holds that must end be
 * seen. When it does not (the read came back full and a slot was left over), the caller reads
 * again, four times as far up to `MAX_WIDER_FRONT_WINDOW` (`widerFrontWindow`): in a
 * 10,000-buyer rehearsal the first 40 waiters were all overdue (the reception, loaded, had not
 * yet read their retries), and the slots they left went to whoever asked next from beyond them,
 * ahead of 150 waiters held open in between.
 */
export function frontWindow(totalFreeSlots: number, admitting = 0): number {
  return Math.min(MAX_FRONT_WINDOW, Math.max(32, 4 * totalFreeSlots + 32) + Math.max(0, admitting));
}

/**
 * How far the front is read again for a slot left over. Reading the front costs per entry (Redis:
 * 0.27 ms for 36 entries, 1.4 ms for 576, 11.5 ms for 4,096; SQLite 0.35 ms for 4,096), and a
 * front clogged with waiters who left without a word (each kept for `abandonSeconds`) is read
 * again for every freed slot: past this many, the slot goes to whoever asks, as before.
 */
export const MAX_WIDER_FRONT_WINDOW = 1024;

/** The next, wider read of the front after `window` left a slot over; undefined at the limit. */
export function widerFrontWindow(window: number): number | undefined {
  return window >= MAX_WIDER_FRONT_WINDOW ? undefined : Math.min(MAX_WIDER_FRONT_WINDOW, window * 4);
}

export function isPassedOver(entry: LineEntry, now: number, rules: LineRules): boolean {
  return entry.heldSince !== undefined && now - entry.heldSince >= rules.holdMs;
}

/**
 * Late past its due time by more than the grace, plus a tenth of the interval it was given:
 * clients' timers, round trips and a loaded client's event loop make them a little late, and a
 * longer wait drifts more. A waiter whose due time is unknown is never overdue.
 */
export function isOverdue(entry: LineEntry, now: number, rules: LineRules): boolean {
  if (entry.dueAt === undefined) return false;
  const interval = Math.max(0, entry.dueAt - entry.lastSeenAt);
  return now > entry.dueAt + rules.dueGraceMs + interval / 10;
}

export function decideLine(input: LineInput): LineDecision {
  const { now, rules, request } = input;
  const abandoned: string[] = [];
  const kept: LineEntry[] = [];
  for (const e of input.front) {
    if (e.token !== request.token && now - e.lastSeenAt > rules.abandonMs) abandoned.push(e.token);
    else kept.push(e);
  }
  const remaining = new Map(input.freeSlots);
  const take = (item: string | undefined): string | undefined => {
    if (item === undefined) return undefined;
    let best: string | undefined;
    let bestFree = 0;
    for (const server of input.holdersOf(item)) {
      const free = remaining.get(server) ?? 0;
      if (free > bestFree) {
        best = server;
        bestFree = free;
      }
    }
    if (best !== undefined) remaining.set(best, bestFree - 1);
    return best;
  };

  const holdsToStart: string[] = [];
  const holdsToClear: string[] = [];
  const heldAhead = new Map<string, number>();
  let admitted = false;
  let position = 0;
  let requesterSeen = false;
  let requesterSeq = input.requester?.entry.seq;
  let requesterJoinedAt = input.requester?.entry.joinedAt;
  for (let i = 0; i < kept.length; i++) {
    const e = kept[i]!;
    if (e.token === request.token) {
      requesterSeen = true;
      requesterSeq = e.seq;
      requesterJoinedAt = e.joinedAt;
      position = i + 1;
      // Seen now: a passed-over requester is back in its place, and needs no hold to be admitted.
      if (e.heldSince !== undefined) holdsToClear.push(e.token);
      admitted = take(request.item) !== undefined;
      continue;
    }
    if (isPassedOver(e, now, rules) || isOverdue(e, now, rules)) continue;
    const server = take(input.itemOf(e.token));
    if (server !== undefined) {
      if (e.heldSince === undefined) holdsToStart.push(e.token);
      if (!requesterSeen) heldAhead.set(server, (heldAhead.get(server) ?? 0) + 1);
    } else if (e.heldSince !== undefined) {
      holdsToClear.push(e.token);
    }
  }
  const requesterInLine = requesterSeen || input.requester !== undefined;
  let leftOver = 0;
  for (const n of remaining.values()) leftOver += Math.max(0, n);
  if (!requesterSeen) {
    // Beyond the front (or a newcomer): everyone in the front is ahead, and only a slot the front
    // left over is the requester's. Abandoned entries in the front no longer count.
    position =
      input.requester !== undefined
        ? Math.max(kept.length + 1, input.requester.position - abandoned.length)
        : Math.max(kept.length, input.length - abandoned.length) + 1;
    if (input.requester?.entry.heldSince !== undefined) holdsToClear.push(input.requester.entry.token);
    admitted = take(request.item) !== undefined;
  }
  let freeForItem = 0;
  for (const server of input.holdersOf(request.item)) freeForItem += input.freeSlots.get(server) ?? 0;
  return {
    admitted,
    requesterInLine,
    abandoned,
    holdsToStart,
    holdsToClear,
    heldAhead,
    position,
    freeForItem,
    requesterHeld: admitted && requesterInLine,
    ...(requesterSeq !== undefined ? { requesterSeq } : {}),
    ...(requesterJoinedAt !== undefined ? { requesterJoinedAt } : {}),
    leftOver,
  };
}
