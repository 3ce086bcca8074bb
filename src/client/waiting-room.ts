/**
 * The client's waiting room, the seed's FIG. 12C: ask (Sc51), and when the answer is "busy" with
 * an estimated wait (Sc53, Sc55) wait that long (Sc56) and ask again automatically, with the queue
 * token so the place is kept — never sooner than `Retry-After`. Between tries it may read the
 * place (`GET /api/queue/{token}`) so the position shown stays live and the reception keeps
 * seeing the client. `--max-wait` becomes a deadline: no try is made after it, and the wait ends at
 * it. `decide` is the pure rule; `waitForTicket` runs it against a clock and the reception.
 */
import { type Clock, sleepUntil } from './clock.js';
import type { QueuePlace, ReceptionAnswer, Ticket } from './reception-api.js';

/** Timers can run a hair early and clocks differ by a few ms: arriving late is harmless, early is not. */
export const RETRY_MARGIN_MS = 20;
const UNREACHABLE_BACKOFF_MS = [500, 1000, 2000, 4000, 8000] as const;

export interface BusyView {
  position: number;
  estimatedWaitSeconds: number;
  /** When the next try will be made (ms since the epoch). */
  retryAt: number;
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
      /** The estimated wait of the first busy answer, for calibration. */
      firstEstimateSeconds?: number;
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
  | { action: 'retry'; at: number }
  /** Stop at `at`: the deadline would pass before the next try, or the reception stayed out of reach. */
  | { action: 'give_up'; at: number; reason: 'deadline' | 'unreachable' };

/**
 * What to do after an answer that arrived at `now`. `failures` counts unanswered tries in a row.
 * Pure: the rule "retry after Retry-After, never sooner; no try after the deadline" lives here.
 */
export function decide(
  answer: ReceptionAnswer,
  now: number,
  opts: { deadline?: number; failures: number; unreachableSince?: number; unreachableGiveUpMs: number },
): Step {
  let at: number;
  switch (answer.kind) {
    case 'ticketed':
      return { action: 'admit' };
    case 'error':
      return { action: 'refuse' };
    case 'busy':
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

export interface WaitOptions {
  clock: Clock;
  /** One try: the order (with the queue token of the last busy answer) or a fresh-ticket request. */
  ask: (queueToken: string | undefined, signal?: AbortSignal) => Promise<ReceptionAnswer>;
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
}

export async function waitForTicket(opts: WaitOptions): Promise<Admission> {
  const { clock, observer } = opts;
  const readEvery = opts.placeReadIntervalMs ?? 5000;
  const unreachableGiveUpMs = opts.unreachableGiveUpMs ?? 60_000;
  let queueToken: string | undefined;
  let busyAnswers = 0;
  let firstBusyAt: number | undefined;
  let firstEstimateSeconds: number | undefined;
  let failures = 0;
  let unreachableSince: number | undefined;
  let lastPosition: number | undefined;
  let tries = 0;
  const waited = () => (firstBusyAt === undefined ? 0 : clock.now() - firstBusyAt);

  for (;;) {
    // The first try always runs to its answer, so `--max-wait 0` means "try once".
    const answer = await askBefore(opts, queueToken, tries++ === 0);
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
      firstBusyAt ??= now;
      firstEstimateSeconds ??= answer.estimatedWaitSeconds;
      if (answer.queueToken) queueToken = answer.queueToken;
      lastPosition = answer.position;
    }
    const step = decide(answer, now, {
      deadline: opts.deadline,
      failures,
      unreachableSince,
      unreachableGiveUpMs,
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
          ...(firstEstimateSeconds === undefined ? {} : { firstEstimateSeconds }),
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
        await pause(opts, step.at, answer, queueToken, readEvery);
        observer?.retrying?.();
        break;
    }
  }
}

/** A try may run past the deadline by this much at most (CONTRACT §5: "S + 1 at the latest"). */
const ASK_GRACE_MS = 600;

/** One try, cut short once the deadline (plus a little grace) has passed; undefined when it was. */
async function askBefore(
  opts: WaitOptions,
  queueToken: string | undefined,
  first: boolean,
): Promise<ReceptionAnswer | undefined> {
  if (opts.deadline === undefined || first) return opts.ask(queueToken, opts.signal);
  const grace = AbortSignal.timeout(Math.ceil(Math.max(0, opts.deadline - opts.clock.now())) + ASK_GRACE_MS);
  const signal = opts.signal ? AbortSignal.any([opts.signal, grace]) : grace;
  try {
    return await opts.ask(queueToken, signal);
  } catch (err) {
    if (grace.aborted && !opts.signal?.aborted) return undefined;
    throw err;
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
  if (answer.kind === 'busy') {
    observer?.busy?.({
      position: answer.position,
      estimatedWaitSeconds: answer.estimatedWaitSeconds,
      retryAt: until,
    });
  }
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
