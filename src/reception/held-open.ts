/**
 * Admission without delay (CONTRACT §3): retries sent with `Prefer: wait=N` are held open here
 * and answered the moment their client is admitted, so a slot freed for a waiter never sits idle
 * until that waiter happens to poll again.
 *
 * Held requests are cheap: one entry each in a list kept in line order, one timer for all of them
 * (deadlines and a safety-net retry), and a per-process cap past which a retry is answered at once.
 * Whatever may have freed a slot — a transfer ended, a ticket lapsed, a server came up, another
 * reception said so — calls `wake()`; the earliest held waiters then try again, in line order, one
 * try per free slot, so the line's order is kept and a wake never costs more than the slots it has.
 */

/**
 * Held requests that arrive together would expire together: join answers go out in bursts when a
 * loaded reception catches up, and their held retries follow at once. In a 10,000-buyer
 * rehearsal 1,568 held requests expired in one second and a tenth of all busy answers to held
 * requests arrived 5.6 s or more past their wait; in another, 1,300 held requests stayed gone for
 * 10 s after expiring together, and 1,205 of those waiters were overtaken by 6 s. So each hold
 * ends at a random point of the last fifth of the wait it was given (RFC 7240 lets a server
 * answer sooner).
 */
const HOLD_SPREAD = 0.2;

/**
 * A waiter's first hold is spread over most of its wait, from a quarter of it on ("full
 * jitter"): the buyers of a launch join within seconds, and their first held retries, all asking
 * for the same 30 s, came back together — in a 10,000-buyer rehearsal ~7,000 of them within 15 s,
 * every 27 s or so, while none came in between, and admissions fell by a fifth while the
 * reception took each wave. Spread once, the phases stay apart: later holds keep the last fifth.
 */
const FIRST_HOLD_SPREAD = 0.75;
/**
 * A hold that starts this soon after its waiter joined is taken for its first: a loaded
 * reception answers a join and reads the held retry that follows it seconds apart.
 */
export const FIRST_HOLD_WITHIN_MS = 10_000;

/**
 * The wait a hold of `waitMs` really gets, for `random` uniform in [0, 1): the last fifth of it,
 * or, for a waiter's `first` hold, anywhere from a quarter of it; never under a second (nor 0),
 * so `Preference-Applied` never says `wait=0`. Pure.
 */
export function spreadHold(waitMs: number, random: number, first = false): number {
  const r = Number.isFinite(random) ? Math.min(1, Math.max(0, random)) : 0;
  const spread = Math.round(waitMs * (1 - (first ? FIRST_HOLD_SPREAD : HOLD_SPREAD) * r));
  return Math.max(1, Math.min(waitMs, 1000), spread);
}

/** Tries per wake beyond the free slots. */
const SPARE_TRIES = 4;

export interface HeldOpenOptions {
  /** At most this many requests held at once; past it `hold` refuses (answer busy now). */
  max: number;
  /** Free slots right now (how many waiters a wake tries). */
  freeSlots(): number;
  now(): number;
  /** How often the one timer runs (deadlines, and a retry in case a wake was missed). */
  tickMs: number;
}

export interface HoldRequest<T> {
  /** The waiter's place: lower is earlier in line. */
  seq: number;
  deadline: number;
  /**
   * Tries to admit; `undefined` while still busy. Never rejects (errors are answers). Calls
   * `reserved` once a slot is taken for it, before the rest of its work (the notice's round trip,
   * the answer): the wake moves on to the next free slot then, not when the answer is ready.
   */
  attempt(reserved: () => void): Promise<T | undefined>;
  /** The answer when the deadline passes (or the reception stops): the busy answer as it stands. */
  expire(): Promise<T>;
  /** Aborted when the client goes away: the hold is dropped without an answer. */
  signal?: AbortSignal;
  /**
   * What the waiter waits for (its item). The line is served in order per item, so once one
   * waiter of a group stays busy in a wake, those behind it in that group are not tried: a wake
   * costs one failed try per item, not one per spare try.
   */
  group?: string;
}

interface Waiter {
  seq: number;
  group: string | undefined;
  deadline: number;
  attempt(reserved: () => void): Promise<unknown>;
  expire(): Promise<unknown>;
  settle(value: unknown): void;
  trying: boolean;
  done: boolean;
}

export class HeldOpen {
  /** Ordered by `seq`: the front of the line first. */
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private waking = false;
  private wakeAgain = false;
  private closed = false;

  constructor(private readonly opts: HeldOpenOptions) {}

  count(): number {
    return this.waiters.length;
  }

  /** Holds one retry open; `undefined` when at the cap (the caller answers at once). */
  hold<T>(req: HoldRequest<T>): Promise<T> | undefined {
    if (this.closed || this.waiters.length >= this.opts.max) return undefined;
    return new Promise<T>((resolve) => {
      const w: Waiter = {
        seq: req.seq,
        group: req.group,
        deadline: req.deadline,
        attempt: req.attempt,
        expire: req.expire,
        settle: (v) => resolve(v as T),
        trying: false,
        done: false,
      };
      this.insert(w);
      req.signal?.addEventListener('abort', () => this.remove(w), { once: true });
      this.ensureTimer();
    });
  }

  /** A slot may have freed: the earliest held waiters try again (coalesced). */
  wake(): void {
    if (this.waiters.length === 0) return;
    if (this.waking) {
      this.wakeAgain = true;
      return;
    }
    this.waking = true;
    setImmediate(() => void this.runWake());
  }

  /** Answers every held request with its busy answer now (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.waiters].map((w) => this.finish(w, w.expire)));
  }

  private async runWake(): Promise<void> {
    try {
      do {
        this.wakeAgain = false;
        // One try per free slot, plus a few for waiters ahead whose item no free server holds
        // (they stay busy, and a slot elsewhere must not wait for them).
        let free = this.opts.freeSlots();
        let tries = Math.max(1, free) + SPARE_TRIES;
        const stuck = new Set<string>();
        /** Groups of which a waiter was admitted in this wake: those behind it may go together. */
        const proven = new Set<string>();
        const stillEligible = (w: Waiter) =>
          !w.done && !w.trying && !(w.group !== undefined && stuck.has(w.group));
        // A snapshot of the front only (a rush holds thousands, and a wake tries a handful):
        // waiters that arrive meanwhile are behind these anyway, or get the next wake.
        let queue = this.waiters.slice(0, Math.max(64, tries * 8));
        // Tries run in rounds, in line order, up to the free slots: first one waiter per item,
        // then, for an item whose waiter was admitted, as many as there are slots left, all at
        // once. One at a time, a wake with forty slots to fill waited for forty round trips
        // (store, notice) in a row while the slots stood idle; all at once from the start, a wake
        // whose slots are held for waiters not held open here would make forty tries that all
        // fail. Rounds of 1, 2, 4 … in between still left a wave of 80 transfers ending together
        // (a rush's first fill ends at once) to seven rounds, each an event-loop turn and a group
        // commit on a loaded reception: 10,000 buyers saw up to half of a server's slots free
        // for a second or two (issue 9). A round ends when each of its tries has a slot or is
        // busy, not when their answers are ready: waiting for the notices' round trips as well
        // left 7.5 % of the slots idle while 10,000 waited, every one of them held open.
        while (tries > 0 && free > 0 && queue.length > 0) {
          const round: Waiter[] = [];
          const inRound = new Set<string>();
          const rest: Waiter[] = [];
          for (const w of queue) {
            if (!stillEligible(w)) continue;
            const g = w.group;
            const fits =
              round.length < Math.min(free, tries) && (g === undefined || proven.has(g) || !inRound.has(g));
            if (!fits) {
              rest.push(w);
              continue;
            }
            round.push(w);
            if (g !== undefined) inRound.add(g);
          }
          queue = rest;
          if (round.length === 0) break;
          tries -= round.length;
          const admitted = await Promise.all(round.map((w) => this.try(w)));
          round.forEach((w, j) => {
            if (w.group === undefined) return;
            if (admitted[j]) proven.add(w.group);
            else stuck.add(w.group);
          });
          free = this.opts.freeSlots();
        }
      } while (this.wakeAgain && this.waiters.length > 0 && this.opts.freeSlots() > 0);
    } finally {
      this.waking = false;
    }
  }

  /**
   * Runs one waiter's attempt; resolves true as soon as a slot is reserved for it (or it is
   * answered), false when it stays busy. The attempt goes on to its answer on its own. One that
   * reserved and then came back busy (its notice failed everywhere) gave its slot back: the
   * waiter stays held, and a new wake hands the slot on.
   */
  private try(w: Waiter): Promise<boolean> {
    w.trying = true;
    return new Promise<boolean>((decided) => {
      let reserved = false;
      void w
        .attempt(() => {
          reserved = true;
          decided(true);
        })
        .then(
          (answer) => answer,
          () => undefined,
        )
        .then((answer) => {
          w.trying = false;
          if (answer !== undefined && !w.done) {
            this.remove(w);
            w.settle(answer);
          } else if (answer === undefined && reserved) {
            this.wake();
          }
          decided(answer !== undefined);
        });
    });
  }

  private tick(): void {
    const now = this.opts.now();
    for (const w of [...this.waiters]) {
      if (!w.done && !w.trying && w.deadline <= now) void this.finish(w, w.expire);
    }
    if (this.waiters.length === 0) {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.opts.freeSlots() > 0) this.wake();
  }

  private async finish(w: Waiter, answer: () => Promise<unknown>): Promise<void> {
    if (w.done) return;
    this.remove(w);
    w.settle(await answer());
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
  }

  private insert(w: Waiter): void {
    let lo = 0;
    let hi = this.waiters.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.waiters[mid]!.seq <= w.seq) lo = mid + 1;
      else hi = mid;
    }
    this.waiters.splice(lo, 0, w);
  }

  private remove(w: Waiter): void {
    w.done = true;
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}
