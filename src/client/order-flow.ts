/**
 * The whole client of the seed's FIG. 6C and FIG. 12C for one order, shared by `rushgate get` and
 * every simulated buyer of `rushgate rush`: order (Sc31/Sc51), wait and retry while busy
 * (Sc53–Sc56, `waiting-room.ts`), fetch under the ticket (Sc33–Sc34, `downloader.ts`), and, when
 * the ticket lapsed, was revoked before every byte arrived, or its server failed, ask for a fresh
 * ticket for the same order and resume with `Range` on whichever server it names (CONTRACT §3,
 * §5). Ends with the SHA-256 of every byte checked against the stated `Repr-Digest`. Where the
 * bytes go (a `.part` file or nowhere) is the caller's sink; what the user sees is the observer.
 */
import { randomUUID } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { type Clock, sleepUntil } from './clock.js';
import { type Expected, fetchInto } from './downloader.js';
import type { AskOptions, ReceptionClient, Ticket } from './reception-api.js';
import type { Sink } from './sink.js';
import { type Admission, type FirstBusy, type WaitObserver, waitForTicket } from './waiting-room.js';

export interface FlowObserver extends WaitObserver {
  /** A ticket arrived; `afterWaiting` when at least one busy answer came before it (ring the bell). */
  admitted?(info: { server: string; afterWaiting: boolean; fresh: boolean }): void;
  transferStart?(info: { server: string; offset: number; size: number }): void;
  transferProgress?(held: number): void;
  transferEnd?(): void;
  /** Something worth a line: a server failed, a fresh ticket is being asked for, … */
  notice?(text: string): void;
}

/** What a `get` keeps in its sidecar so that a rerun continues the same order. */
export interface FlowState {
  orderId: string;
  ticket?: Ticket;
  size?: number;
  sha256?: string;
}

export interface OrderFlowOptions {
  reception: ReceptionClient;
  item: string;
  sink: Sink;
  clock: Clock;
  signal?: AbortSignal;
  /** ms since the epoch: no try for a ticket after it (`--max-wait`). */
  deadline?: number;
  observer?: FlowObserver;
  dispatcher?: Dispatcher;
  limitRate?: number;
  /** An order to continue (a rerun of `get`): its id, last ticket, and what was learned of the item. */
  resume?: FlowState;
  /** Called whenever the state worth keeping changes. */
  onState?(state: FlowState): void | Promise<void>;
  placeReadIntervalMs?: number;
  stallTimeoutMs?: number;
}

interface Common {
  orderId?: string;
  item: string;
  server?: string;
  /** Bytes held at the end. */
  bytes: number;
  waitedMs: number;
  /** Order and ticket requests made to the reception. */
  attempts: number;
  busyAnswers: number;
  /** Busy answers to requests the reception held open (`Prefer: wait` applied). */
  heldAnswers: number;
  /** Server of every ticket received, in order. */
  tickets: string[];
  /** Estimated wait of the first busy answer of the first admission, if it was busy. */
  firstEstimateSeconds?: number;
  /** The first busy answer of the first admission, if it was busy (its place in line). */
  firstBusy?: FirstBusy;
  /** ms from the start to the first ticket. */
  admittedAfterMs?: number;
  /** When the first ticket arrived (ms since the epoch). */
  admittedAt?: number;
  /** Whether the finished bytes were checked against a stated `Repr-Digest`. */
  digestChecked?: boolean;
}

export type FlowResult =
  | (Common & { kind: 'done'; orderId: string; server: string; sha256: string; size: number })
  /** Still busy when the deadline came. */
  | (Common & { kind: 'busy_timeout' })
  | (Common & { kind: 'integrity'; expected: string; actual: string })
  | (Common & { kind: 'failed'; code: string; message: string });

/** Fresh tickets that brought no new byte, in a row, before the order is given up. */
const MAX_FRUITLESS_ROUNDS = 12;
/** New orders placed for one `get` when the reception will not renew the old one. */
const MAX_ORDERS = 3;
/** Answers to a fresh-ticket request that mean "this order cannot be renewed; place another". */
const ORDER_ENDED = new Set([
  'ticket_limit_reached',
  'order_closed',
  'unknown_order',
  'idempotency_conflict',
]);

export async function runOrder(opts: OrderFlowOptions): Promise<FlowResult> {
  const { reception, sink, clock, observer } = opts;
  const startedAt = clock.now();
  let orderId = opts.resume?.orderId;
  let ticket = opts.resume?.ticket;
  const expected: Expected = {
    ...(opts.resume?.size === undefined ? {} : { size: opts.resume.size }),
    ...(opts.resume?.sha256 === undefined ? {} : { sha256: opts.resume.sha256 }),
  };
  const common: Common = {
    item: opts.item,
    bytes: sink.length,
    waitedMs: 0,
    attempts: 0,
    busyAnswers: 0,
    heldAnswers: 0,
    tickets: [],
  };
  let ordersPlaced = 0;
  let fruitless = 0;
  let notYetValid = 0;

  const snapshot = (): Common => ({
    ...common,
    ...(orderId ? { orderId } : {}),
    ...(ticket ? { server: ticket.server } : {}),
    bytes: sink.length,
    attempts: reception.attempts,
  });
  const saveState = async () => {
    if (orderId) await opts.onState?.({ orderId, ...(ticket ? { ticket } : {}), ...expected });
  };

  for (;;) {
    if (!ticket || ticket.expiresAt <= clock.now()) {
      const fresh = orderId !== undefined;
      if (!fresh) {
        if (ordersPlaced >= MAX_ORDERS)
          return {
            ...snapshot(),
            kind: 'failed',
            code: 'too_many_orders',
            message: 'the reception kept ending the order',
          };
        ordersPlaced++;
      }
      const admission = await admit(opts, orderId);
      common.waitedMs += admission.waitedMs;
      common.busyAnswers += admission.busyAnswers;
      if (admission.kind === 'admitted') {
        common.heldAnswers += admission.heldAnswers;
        // Calibration and FIFO order are judged on the first wait only: the place taken at the start.
        if (common.admittedAt === undefined && admission.firstBusy !== undefined) {
          common.firstEstimateSeconds = admission.firstBusy.estimatedWaitSeconds;
          common.firstBusy = admission.firstBusy;
        }
        common.admittedAt ??= admission.admittedAt;
      }
      if (admission.kind === 'gave_up') return { ...snapshot(), kind: 'busy_timeout' };
      if (admission.kind === 'unreachable')
        return { ...snapshot(), kind: 'failed', code: 'reception_unreachable', message: admission.message };
      if (admission.kind === 'refused') {
        if (fresh && ORDER_ENDED.has(admission.code)) {
          observer?.notice?.(
            `the reception will not renew order ${orderId} (${admission.code}); placing a new order`,
          );
          orderId = undefined;
          ticket = undefined;
          continue;
        }
        return { ...snapshot(), kind: 'failed', code: admission.code, message: admission.message };
      }
      orderId = admission.orderId;
      ticket = admission.ticket;
      common.tickets.push(ticket.server);
      common.admittedAfterMs ??= clock.now() - startedAt;
      notYetValid = 0;
      observer?.admitted?.({ server: ticket.server, afterWaiting: admission.busyAnswers > 0, fresh });
      await saveState();
    }

    // Under `window`/`strict` a ticket may start later than it is issued (startDelaySeconds).
    if (ticket.notBefore > clock.now()) await sleepUntil(clock, ticket.notBefore, opts.signal);

    const heldBefore = sink.length;
    const server = ticket.server;
    const outcome = await fetchInto(ticket.url, sink, {
      clock,
      expected,
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.limitRate ? { limitRate: opts.limitRate } : {}),
      ...(opts.stallTimeoutMs ? { stallTimeoutMs: opts.stallTimeoutMs } : {}),
      onStart: async (info) => {
        const changed =
          expected.size !== info.size || (info.sha256 !== undefined && expected.sha256 !== info.sha256);
        expected.size = info.size;
        if (info.sha256) expected.sha256 = info.sha256;
        if (changed) await saveState();
        observer?.transferStart?.({ server, offset: info.offset, size: info.size });
      },
      onProgress: (held) => observer?.transferProgress?.(held),
    });
    observer?.transferEnd?.();

    switch (outcome.kind) {
      case 'complete': {
        const actual = sink.sha256();
        const stated = outcome.statedSha256 ?? expected.sha256;
        if (stated !== undefined && stated !== actual) {
          return { ...snapshot(), kind: 'integrity', expected: stated, actual };
        }
        if (stated === undefined)
          observer?.notice?.('the content server stated no Repr-Digest; the download is unchecked');
        return {
          ...snapshot(),
          digestChecked: stated !== undefined,
          kind: 'done',
          orderId: orderId!,
          server,
          sha256: actual,
          size: outcome.size,
        };
      }
      case 'changed':
        observer?.notice?.(`${outcome.message}; starting again from the first byte`);
        delete expected.sha256;
        delete expected.size;
        await saveState();
        break;
      case 'refused':
        if (outcome.status === 403 && outcome.code === 'not_yet_valid' && notYetValid < 5) {
          // The content server's clock is behind ours: wait a moment and present the same ticket.
          notYetValid++;
          await clock.sleep(1000, opts.signal);
          break;
        }
        observer?.notice?.(
          `server ${server} refused the ticket (${outcome.status}${outcome.code ? ` ${outcome.code}` : ''}); asking for a fresh one`,
        );
        ticket = undefined;
        break;
      case 'failed':
        observer?.notice?.(`server ${server} failed (${outcome.message}); asking for a fresh ticket`);
        ticket = undefined;
        break;
    }
    fruitless = sink.length > heldBefore ? 0 : fruitless + 1;
    if (fruitless > MAX_FRUITLESS_ROUNDS) {
      return {
        ...snapshot(),
        kind: 'failed',
        code: 'no_progress',
        message: `no byte arrived in ${fruitless} tries in a row; giving up (rerun to continue)`,
      };
    }
  }
}

/** Waits for a ticket: a new order for the item, or a fresh ticket for `orderId`. */
function admit(opts: OrderFlowOptions, orderId: string | undefined): Promise<Admission> {
  const { reception } = opts;
  // One key per logical order request: a try whose answer was lost is repeated under the same key
  // (the reception answers the same order), every try after a real answer gets a new one.
  let key = randomUUID();
  const ask =
    orderId === undefined
      ? async (queueToken: string | undefined, signal?: AbortSignal, how?: AskOptions) => {
          const answer = await reception.order(
            { item: opts.item, idempotencyKey: key, ...(queueToken ? { queueToken } : {}), ...how },
            signal,
          );
          if (answer.kind !== 'unreachable') key = randomUUID();
          return answer;
        }
      : (queueToken: string | undefined, signal?: AbortSignal, how?: AskOptions) =>
          reception.freshTicket(orderId, queueToken, signal, how);
  return waitForTicket({
    clock: opts.clock,
    ask,
    readPlace: (token, signal) => reception.queue(token, signal),
    ...(orderId === undefined ? {} : { holdWithoutToken: true }),
    ...(opts.deadline === undefined ? {} : { deadline: opts.deadline }),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.observer ? { observer: opts.observer } : {}),
    ...(opts.placeReadIntervalMs === undefined ? {} : { placeReadIntervalMs: opts.placeReadIntervalMs }),
  });
}
