/**
 * Slot use while anyone waits (issue 9): of the slot-time the usable content servers offered
 * while the line was not empty, the share that carried a ticket. A slot left free while someone
 * waits is the waste this figure exposes; with nobody waiting, idle slots are no fault, so that
 * time is not counted at all. Sampled on the reception's maintenance tick; the state seen at one
 * sample is taken to hold until the next (a step function), so the share is time-weighted even
 * when ticks are late. Pure: time comes in as an argument.
 */

export interface SlotSample {
  /** Clients in line. */
  waiting: number;
  /** Capacity of the servers that may take tickets now. */
  usable: number;
  /** Slots in use on those servers, each server's count capped at its capacity. */
  used: number;
}

interface Span {
  start: number;
  end: number;
  used: number;
  usable: number;
}

/** Longer than this between samples and the gap is not trusted as one steady state. */
const MAX_GAP_MS = 10_000;

export class SlotUseMeter {
  private last: { at: number; sample: SlotSample } | undefined;
  /** Spans with someone waiting that end inside the window, oldest first. */
  private readonly spans: Span[] = [];
  private runUsed = 0;
  private runUsable = 0;

  constructor(readonly windowMs = 60_000) {}

  sample(now: number, sample: SlotSample): void {
    const prev = this.last;
    this.last = { at: now, sample };
    if (prev === undefined || now <= prev.at) return;
    const s = prev.sample;
    if (s.waiting <= 0 || s.usable <= 0) return;
    const start = Math.max(prev.at, now - MAX_GAP_MS);
    const used = Math.min(Math.max(0, s.used), s.usable);
    const dt = now - start;
    this.runUsed += used * dt;
    this.runUsable += s.usable * dt;
    this.spans.push({ start, end: now, used, usable: s.usable });
    this.prune(now);
  }

  /** Share over the last `windowMs` up to `now` (the latest sample by default); null if nobody waited. */
  windowShare(now = this.last?.at ?? 0): number | null {
    this.prune(now);
    const from = now - this.windowMs;
    let used = 0;
    let usable = 0;
    for (const span of this.spans) {
      const dt = Math.min(span.end, now) - Math.max(span.start, from);
      if (dt <= 0) continue;
      used += span.used * dt;
      usable += span.usable * dt;
    }
    return usable > 0 ? used / usable : null;
  }

  /** Share over everything sampled so far; null if nobody waited. */
  runShare(): number | null {
    return this.runUsable > 0 ? this.runUsed / this.runUsable : null;
  }

  private prune(now: number): void {
    const from = now - this.windowMs;
    while (this.spans.length > 0 && (this.spans[0]?.end ?? 0) <= from) this.spans.shift();
  }
}
