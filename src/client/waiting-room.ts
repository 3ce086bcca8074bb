/**
 * The client's waiting room, the seed's FIG. 12C: ask (Sc51), and when the answer is "busy" with
 * an estimated wait (Sc53, Sc55) wait that long (Sc56) and ask again automatically, with the queue
 * token so the place is kept — never sooner than `Retry-After`. Between tries it may read the
 * place (`GET /api/queue/{token}`) so the position shown stays live and the reception keeps
 * seeing the client. Every retry that carries a queue token asks the reception to hold it open
 * (`Prefer: wait=N`, CONTRACT §3 "Admission without delay"); when the reception did
 * (`Preference-Applied`), a busy answer is followed by the next held retry at once, so the client
 * is always listening for its turn. The first busy answer is followed at once by one held retry
 * too, to learn whether the reception holds; one that ignores the preference answers it at once
 * and is retried at `Retry-After` from then on, as before. `--max-wait` becomes a deadline: no try is made after it, no hold
 * reaches past it, and the wait ends at it. `decide` and `preferWaitSeconds` are the pure rules;
 * `waitForTicket` runs them against a clock and the reception.
 */
import { linkSignal } from './abort-link.js';
import { type Clock, sleepUntil } from './clock.js';
import type { AskOptions, QueuePlace, ReceptionAnswer, Ticket } from './reception-api.js';

/** Timers can run a hair early and clocks differ by a few ms: arriving late is harmless, early is not. */
export const RETRY_MARGIN_MS = 20;
const UNREACHABLE_BACKOFF_MS = [500, 1000, 2000, 4000, 8000] as const;
/** The hold asked for (the reception applies at most its `queue.maxRetryAfterSeconds`). */
export const MAX_HOLD_SECONDS = 30;

export interface BusyView {
  position: number;
  estimatedWaitSeconds: number;
  /** The reception's 80 % interval, when it gives one. */
  estimatedWaitRangeSeconds?: [number, number];
  /** When the next try will be made (ms since the epoch). */
  retryAt: number;
  /** The next try is a held-open request sent at once: the client is listening for its turn. */
  heldOpen?: boolean;
}

/** What is known of the first busy answer of a wait: when the place was taken, what was promised. */
export interface FirstBusy {
  /** When the try that got it was sent (ms since the epoch). */
  askedAt: number;
  /** When it arrived. */
  answeredAt: number;
  position: number;
  estimatedWaitSeconds: number;
  estimatedWaitRangeSeconds?: [number, number];
}

export interface WaitObserver {
  /** A busy answer arrived, or a queue read updated the place. */
  busy?(view: BusyView): void;
  /** The reception could not be reached; the next try is at `retryAt`. */
  unreachable?(message: string, retryAt: number): void;
  /** About to ask the reception again. */
  retrying?(): void;
}

export type Admission =
  | {
      kind: 'admitted';
      orderId: string;
      ticket: Ticket;
      waitedMs: number;
      busyAnswers: number;
      /** Busy answers to a request the reception had held open (`Preference-Applied`). */
      heldAnswers: number;
      /** The estimated wait of the first busy answer, for calibration. */
      firstEstimateSeconds?: number;
      firstBusy?: FirstBusy;
      /** When the ticket arrived (ms since the epoch). */
      admittedAt: number;
    }
  /** The deadline came while still busy. */
  | { kind: 'gave_up'; waitedMs: number; busyAnswers: number; position?: number }
  /** The reception said no for good (unknown item, ticket limit, …). */
  | { kind: 'refused'; status: number; code: string; message: string; waitedMs: number; busyAnswers: number }
  /** The reception stayed out of reach. */
  | { kind: 'unreachable'; message: string; waitedMs: number; busyAnswers: number };

export type Step =
  | { action: 'admit' }
  | { action: 'refuse' }
  /** `held`: a busy answer to a held-open request, so the next held retry goes out at once. */
  | { action: 'retry'; at: number; held?: boolean }
  /** Stop at `at`: the deadline would pass before the next try, or the reception stayed out of reach. */
  | { action: 'give_up'; at: number; reason: 'deadline' | 'unreachable' };

/**
 * What to do after an answer that arrived at `now`. `failures` counts unanswered tries in a row.
 * Pure: the rule "retry after Retry-After, never sooner; no try after the deadline" lives here.
 */
export function decide(
  answer: ReceptionAnswer,
  now: number,
  opts: {
    deadline?: number;
    failures: number;
    unreachableSince?: number;
    unreachableGiveUpMs: number;
    /** When the try was sent and the hold it asked for, if it asked for one. */
    askedAt?: number;
    preferWaitSeconds?: number;
    /**
     * Whether the reception has yet to show if it holds requests: then the first busy answer is
     * followed at once by one held retry, so no slot freed in the meantime waits for this client's
     * Retry-After; a reception that ignores the preference answers it at once and is paced by
     * Retry-After from then on.
     */
    probeHold?: boolean;
  },
): Step {
  let at: number;
  switch (answer.kind) {
    case 'ticketed':
      return { action: 'admit' };
    case 'error':
      return { action: 'refuse' };
    case 'busy':
      if (heldLongEnough(answer, now, opts) || (opts.probeHold && opts.preferWaitSeconds === undefined)) {
        if (opts.deadline !== undefined && now >= opts.deadline)
          return { action: 'give_up', at: now, reason: 'deadline' };
        return { action: 'retry', at: now, held: true };
      }
      at = now + answer.retryAfterSeconds * 1000 + RETRY_MARGIN_MS;
      break;
    case 'rate_limited':
    case 'not_yet':
      at = now + answer.retryAfterSeconds * 1000 + RETRY_MARGIN_MS;
      break;
    case 'unreachable': {
      if (opts.unreachableSince !== undefined && now - opts.unreachableSince >= opts.unreachableGiveUpMs)
        return { action: 'give_up', at: now, reason: 'unreachable' };
      const backoff =
        UNREACHABLE_BACKOFF_MS[Math.min(opts.failures, UNREACHABLE_BACKOFF_MS.length) - 1] ?? 500;
      at = now + backoff;
      break;
    }
  }
  if (opts.deadline !== undefined && at > opts.deadline)
    return { action: 'give_up', at: Math.max(now, opts.deadline), reason: 'deadline' };
  return { action: 'retry', at };
}

/**
 * Whether a busy answer came from a request the reception really held: it said so
 * (`Preference-Applied`), to a try that asked, and not much sooner than the hold it named. A
 * reception that answers a held request busy at once (its cap of open requests reached) is
 * retried at `Retry-After`, so a client never spins against it.
 */
function heldLongEnough(
  answer: Extract<ReceptionAnswer, { kind: 'busy' }>,
  now: number,
  opts: { askedAt?: number; preferWaitSeconds?: number },
): boolean {
  if (answer.waitAppliedSeconds === undefined || opts.preferWaitSeconds === undefined) return false;
  if (opts.askedAt === undefined) return false;
  const held = Math.min(answer.waitAppliedSeconds, opts.preferWaitSeconds);
  return held >= 1 && now - opts.askedAt >= (held * 1000) / 2;
}

/**
 * The `N` of `Prefer: wait=N` for the next try: 30 s, never past the deadline; undefined when no
 * whole second is left before it (a plain try then). Pure.
 * Not the `Retry-After`: a held request is answered the moment its client is admitted, so a
 * shorter hold gains nothing and costs a request per hold. Near the front `Retry-After` is held
 * under `holdSeconds` for clients that poll, and holding only that long made the 10,000 waiters
 * of a rehearsal send 70,000 held retries in 90 s.
 */
export function preferWaitSeconds(now: number, deadline: number | undefined): number | undefined {
  let n = MAX_HOLD_SECONDS;
  if (deadline !== undefined) n = Math.min(n, Math.floor((deadline - now) / 1000));
  return n >= 1 ? n : undefined;
}

export interface WaitOptions {
  clock: Clock;
  /** One try: the order (with the queue token of the last busy answer) or a fresh-ticket request. */
  ask: (queueToken: string | undefined, signal?: AbortSignal, how?: AskOptions) => Promise<ReceptionAnswer>;
  /** Reads the place behind a queue token between tries; omit to not read it. */
  readPlace?: (queueToken: string, signal?: AbortSignal) => Promise<QueuePlace | undefined>;
  /** ms since the epoch after which no try is made (`--max-wait`). */
  deadline?: number;
  signal?: AbortSignal;
  observer?: WaitObserver;
  /** How often the place is read while a wait lasts longer than this; default 5 s. */
  placeReadIntervalMs?: number;
  /** Give up when the reception has not answered for this long; default 60 s. */
  unreachableGiveUpMs?: number;
  /**
   * Ask to be held open from the first try, without a queue token: a fresh ticket's order is
   * its place (CONTRACT §3). Otherwise only a retry with a token asks.
   */
  holdWithoutToken?: boolean;
}

export async function waitForTicket(opts: WaitOptions): Promise<Admission> {
  const { clock, observer } = opts;
  const readEvery = opts.placeReadIntervalMs ?? 5000;
  const unreachableGiveUpMs = opts.unreachableGiveUpMs ?? 60_000;
  let queueToken: string | undefined;
  let busyAnswers = 0;
  let heldAnswers = 0;
  let firstBusy: FirstBusy | undefined;
  let failures = 0;
  let unreachableSince: number | undefined;
  let lastPosition: number | undefined;
  /** Whether this reception holds requests open: unknown until a held try was answered. */
  let holds: 'unknown' | 'yes' | 'no' = 'unknown';
  let tries = 0;
  const waited = () => (firstBusy === undefined ? 0 : clock.now() - firstBusy.answeredAt);

  for (;;) {
    // A held retry follows its answer at once, with no sleep that would notice an abort.
    if (opts.signal?.aborted) throw opts.signal.reason;
    const askedAt = clock.now();
    const hold = queueToken || opts.holdWithoutToken ? preferWaitSeconds(askedAt, opts.deadline) : undefined;
    // The first try always runs to its answer, so `--max-wait 0` means "try once".
    const answer = await askBefore(opts, queueToken, tries++ === 0, hold);
    const now = clock.now();
    if (answer === undefined) {
      // The deadline passed while the reception was still thinking.
      return busyAnswers > 0
        ? {
            kind: 'gave_up',
            waitedMs: waited(),
            busyAnswers,
            ...(lastPosition === undefined ? {} : { position: lastPosition }),
          }
        : {
            kind: 'unreachable',
            message: 'the reception did not answer in time',
            waitedMs: waited(),
            busyAnswers,
          };
    }
    if (answer.kind === 'unreachable') {
      failures++;
      unreachableSince ??= now;
    } else {
      failures = 0;
      unreachableSince = undefined;
    }
    if (answer.kind === 'busy') {
      busyAnswers++;
      firstBusy ??= {
        askedAt,
        answeredAt: now,
        position: answer.position,
        estimatedWaitSeconds: answer.estimatedWaitSeconds,
        ...(answer.estimatedWaitRangeSeconds
          ? { estimatedWaitRangeSeconds: answer.estimatedWaitRangeSeconds }
          : {}),
      };
      if (answer.queueToken) queueToken = answer.queueToken;
      lastPosition = answer.position;
      if (hold !== undefined) holds = answer.waitAppliedSeconds === undefined ? 'no' : 'yes';
      if (hold !== undefined && answer.waitAppliedSeconds !== undefined) heldAnswers++;
    }
    const probeHold =
      holds === 'unknown' &&
      answer.kind === 'busy' &&
      (queueToken !== undefined || opts.holdWithoutToken === true) &&
      preferWaitSeconds(now, opts.deadline) !== undefined;
    const step = decide(answer, now, {
      deadline: opts.deadline,
      failures,
      unreachableSince,
      unreachableGiveUpMs,
      askedAt,
      ...(hold === undefined ? {} : { preferWaitSeconds: hold }),
      probeHold,
    });
    switch (step.action) {
      case 'admit':
        if (answer.kind !== 'ticketed') throw new Error('unreachable: admit without a ticket');
        return {
          kind: 'admitted',
          orderId: answer.orderId,
          ticket: answer.ticket,
          waitedMs: waited(),
          busyAnswers,
          heldAnswers,
          ...(firstBusy === undefined
            ? {}
            : { firstEstimateSeconds: firstBusy.estimatedWaitSeconds, firstBusy }),
          admittedAt: now,
        };
      case 'refuse':
        if (answer.kind !== 'error') throw new Error('unreachable: refuse without an error');
        return {
          kind: 'refused',
          status: answer.status,
          code: answer.code,
          message: answer.message,
          waitedMs: waited(),
          busyAnswers,
        };
      case 'give_up':
        // Waiting out the deadline keeps the promise "gives up at S seconds", not before.
        await pause(opts, step.at, answer, queueToken, readEvery);
        if (answer.kind === 'unreachable' && (step.reason === 'unreachable' || busyAnswers === 0))
          return { kind: 'unreachable', message: answer.message, waitedMs: waited(), busyAnswers };
        return {
          kind: 'gave_up',
          waitedMs: waited(),
          busyAnswers,
          ...(lastPosition === undefined ? {} : { position: lastPosition }),
        };
      case 'retry':
        if (answer.kind === 'unreachable') observer?.unreachable?.(answer.message, step.at);
        if (step.held && answer.kind === 'busy') {
          observer?.busy?.(viewOf(answer, step.at, true));
          break;
        }
        await pause(opts, step.at, answer, queueToken, readEvery);
        observer?.retrying?.();
        break;
    }
  }
}

function viewOf(
  answer: Extract<ReceptionAnswer, { kind: 'busy' }>,
  retryAt: number,
  heldOpen: boolean,
): BusyView {
  return {
    position: answer.position,
    estimatedWaitSeconds: answer.estimatedWaitSeconds,
    ...(answer.estimatedWaitRangeSeconds
      ? { estimatedWaitRangeSeconds: answer.estimatedWaitRangeSeconds }
      : {}),
    retryAt,
    ...(heldOpen ? { heldOpen } : {}),
  };
}

/** A try may run past the deadline by this much at most (CONTRACT §5: "S + 1 at the latest"). */
const ASK_GRACE_MS = 600;

/** One try, cut short once the deadline (plus a little grace) has passed; undefined when it was. */
async function askBefore(
  opts: WaitOptions,
  queueToken: string | undefined,
  first: boolean,
  hold: number | undefined,
): Promise<ReceptionAnswer | undefined> {
  const how: AskOptions | undefined = hold === undefined ? undefined : { preferWaitSeconds: hold };
  if (opts.deadline === undefined || first) return opts.ask(queueToken, opts.signal, how);
  const grace = linkSignal(opts.signal, Math.max(0, opts.deadline - opts.clock.now()) + ASK_GRACE_MS);
  try {
    return await opts.ask(queueToken, grace.signal, how);
  } catch (err) {
    if (grace.timedOut && !opts.signal?.aborted) return undefined;
    throw err;
  } finally {
    grace.done();
  }
}

/** Waits until `until`, reading the place now and then so the display stays live. */
async function pause(
  opts: WaitOptions,
  until: number,
  answer: ReceptionAnswer,
  queueToken: string | undefined,
  readEvery: number,
): Promise<void> {
  const { clock, observer, signal } = opts;
  if (answer.kind === 'busy') observer?.busy?.(viewOf(answer, until, false));
  if (answer.kind !== 'busy' || !queueToken || !opts.readPlace) {
    await sleepUntil(clock, until, signal);
    return;
  }
  // Read the place only while a whole read interval still fits before the next try.
  while (until - clock.now() > readEvery + 1000) {
    await sleepUntil(clock, clock.now() + readEvery, signal);
    const place = await opts.readPlace(queueToken, signal);
    if (place) observer?.busy?.({ ...place, retryAt: until });
  }
  await sleepUntil(clock, until, signal);
}
