/**
 * The in-process stores' index of outstanding tickets by deadline (`deadlineOf`: `claimBy` while
 * issued, `expiresAt` while downloading), so `lapseUnclaimed` — asked every housekeeping tick,
 * four times a second — looks only at tickets that may be due instead of walking every
 * outstanding one. The walk was measured in the reception bench (issue 12): with 120,000 held
 * tickets it and the slot ledger's refresh blocked the event loop for 300–420 ms at a time, and
 * that set the p99 of every order answered meanwhile.
 *
 * Entries are lower bounds, never removed in place: `track` pushes only when a ticket's deadline
 * moves earlier than what is queued for it, and `due` hands back the tickets whose bound has
 * passed. The caller checks each against its record (its deadline may have moved later, say from
 * `claimBy` to a later `expiresAt` when its transfer started) and tracks it again if it is not
 * due after all. A forgotten ticket's entries are dropped when they come up.
 */
import { TimeQueue } from './time-queue.js';

export class DeadlineIndex {
  private readonly queue = new TimeQueue();
  /** Outstanding ticket id → the earliest time queued for it. */
  private readonly bound = new Map<string, number>();

  /** The ticket is outstanding with this deadline: call on every change of an outstanding ticket. */
  track(ticketId: string, deadline: number): void {
    const b = this.bound.get(ticketId);
    if (b !== undefined && b <= deadline) return;
    this.bound.set(ticketId, deadline);
    this.queue.push(deadline, ticketId);
  }

  /** The ticket is no longer outstanding. */
  forget(ticketId: string): void {
    this.bound.delete(ticketId);
  }

  /**
   * Outstanding tickets whose queued deadline is at or before `now`, each once, no longer
   * tracked: the caller ends them or calls `track` with their current deadline.
   */
  due(now: number): string[] {
    const out: string[] = [];
    for (let next = this.queue.popAtOrBefore(now); next; next = this.queue.popAtOrBefore(now)) {
      const b = this.bound.get(next.id);
      // Not tracked (forgotten, or handed out already), or tracked anew at a later time.
      if (b === undefined || b > now) continue;
      this.bound.delete(next.id);
      out.push(next.id);
    }
    return out;
  }

  /** Heap entries, live or stale: the index's memory, for tests and the bench. */
  get queued(): number {
    return this.queue.size;
  }
}
