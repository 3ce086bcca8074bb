/**
 * Transfer events to the reception (`POST {reception.internalUrl}/events`, docs/PROTOCOL.md): the
 * content server's side of "the order processing is terminated" — `started`, `fulfilled`,
 * `abandoned` — which the reception needs to free slots and mark orders fulfilled within 2 s.
 *
 * Events wait in a bounded outbox and go out in batches: a `started` event of a quiet spell starts a
 * short timer (`flushDelayMs`, 100 ms) so that events close together share one request; an end
 * (`fulfilled`, `abandoned`) goes at once, since it frees a slot, and events that come while a
 * batch is in flight share the next one. A failed
 * batch (network error, timeout, 5xx, 408, 429) goes back to the front of the outbox and is
 * retried with exponential backoff and full jitter, capped at `maxBackoffMs` so that delivery
 * resumes within about two seconds of the reception coming back; a batch the reception refuses as
 * invalid (any other 4xx) can never succeed and is dropped with an error log. Every event has a
 * unique id (server id, boot id, sequence number), so a batch retried after a lost answer is
 * applied once. When the outbox is full, the oldest `started` event goes first (the reception can
 * live without it: a later `fulfilled` or `abandoned` settles the ticket anyway), then the oldest
 * event of any kind. On shutdown `flush` sends what is left, within a deadline.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import type { TransferEvent } from '../protocol/internal.js';
import { PATHS } from '../protocol/internal.js';
import type { Logger } from '../util/log.js';

export type NewEvent = Omit<TransferEvent, 'id'>;

/** Sends one batch; resolves with the HTTP status, rejects on a network error or timeout. */
export type BatchTransport = (body: string) => Promise<number>;

export interface EventReporterOptions {
  serverId: string;
  /** The reception's internal base URL. */
  receptionUrl: string;
  token: string;
  logger: Logger;
  flushDelayMs?: number;
  maxBatch?: number;
  maxOutbox?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  requestTimeoutMs?: number;
  random?: () => number;
  /** Replaces HTTP (unit tests). */
  transport?: BatchTransport;
  onSent?: (count: number) => void;
  onDropped?: (count: number) => void;
  onBatchFailed?: () => void;
}

export interface EventReporter {
  report(event: NewEvent): void;
  /** Events not yet accepted by the reception (outbox plus the batch in flight). */
  pending(): number;
  /** Sends everything left, retrying until `timeoutMs`; resolves true when nothing is left. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stops timers and closes connections; unsent events are lost (call `flush` first). */
  close(): Promise<void>;
}

export function buildEventReporter(options: EventReporterOptions): EventReporter {
  const { serverId, logger } = options;
  const flushDelayMs = options.flushDelayMs ?? 100;
  const maxBatch = options.maxBatch ?? 500;
  const maxOutbox = options.maxOutbox ?? 50_000;
  const initialBackoffMs = options.initialBackoffMs ?? 200;
  const maxBackoffMs = options.maxBackoffMs ?? 2000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const random = options.random ?? Math.random;

  let agent: Agent | null = null;
  const transport: BatchTransport =
    options.transport ??
    (async (body) => {
      agent ??= new Agent({ connections: 2, keepAliveTimeout: 10_000 });
      const res = await request(`${options.receptionUrl}${PATHS.reception.events}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body,
        dispatcher: agent,
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
      });
      await res.body.dump();
      return res.statusCode;
    });

  const bootId = randomBytes(6).toString('base64url');
  let seq = 0;
  let outbox: TransferEvent[] = [];
  let inFlight: TransferEvent[] | null = null;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;
  let closed = false;
  /** Wakes `flush` when a send attempt ends. */
  let onAttempt: (() => void) | null = null;

  function dropForRoom(): void {
    const total = outbox.length + (inFlight?.length ?? 0);
    if (total < maxOutbox) return;
    let i = outbox.findIndex((e) => e.type === 'started');
    if (i === -1) i = 0;
    if (outbox.length === 0) return;
    outbox.splice(i, 1);
    options.onDropped?.(1);
    logger.warn({ maxOutbox }, 'event outbox full: dropped an event');
  }

  function schedule(delayMs: number): void {
    if (closed || timer || inFlight || outbox.length === 0) return;
    timer = setTimeout(() => {
      timer = null;
      void sendBatch();
    }, delayMs);
    timer.unref();
  }

  function backoffMs(): number {
    const ceiling = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(failures - 1, 20));
    // Full jitter, but never below a tenth of the ceiling so a storm of retries cannot form.
    return Math.round(ceiling * (0.1 + 0.9 * random()));
  }

  async function sendBatch(): Promise<void> {
    if (inFlight || outbox.length === 0) return;
    const batch = outbox.slice(0, maxBatch);
    outbox = outbox.slice(batch.length);
    inFlight = batch;
    let status = 0;
    let error: unknown = null;
    try {
      status = await transport(JSON.stringify({ serverId, events: batch }));
    } catch (err) {
      error = err;
    }
    inFlight = null;
    if (status >= 200 && status < 300) {
      failures = 0;
      options.onSent?.(batch.length);
    } else if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      failures = 0;
      options.onDropped?.(batch.length);
      logger.error(
        { status, events: batch.length },
        'the reception refused a batch of transfer events; dropped',
      );
    } else {
      failures++;
      outbox = batch.concat(outbox);
      while (outbox.length > maxOutbox) {
        outbox.pop();
        options.onDropped?.(1);
      }
      options.onBatchFailed?.();
      const log =
        failures === 1 || failures % 20 === 0 ? logger.warn.bind(logger) : logger.debug.bind(logger);
      log(
        { status, err: error, failures, pending: outbox.length },
        'transfer events not delivered; will retry',
      );
    }
    const wake = onAttempt;
    onAttempt = null;
    wake?.();
    if (!closed) schedule(failures > 0 ? backoffMs() : 0);
  }

  return {
    report(event) {
      if (closed) return;
      dropForRoom();
      seq++;
      outbox.push({ ...event, id: `${serverId}.${bootId}.${seq}` });
      // An end frees a slot that someone in line is waiting for: it goes now (or as soon as the
      // batch in flight returns, with whatever gathered meanwhile). 100 ms on every end left a
      // slot idle for 7 % of its 1.4 s cycle in the 10,000-buyer rehearsal. Starts can wait.
      if (event.type !== 'started' && timer) {
        clearTimeout(timer);
        timer = null;
      }
      schedule(event.type === 'started' ? flushDelayMs : 0);
    },
    pending() {
      return outbox.length + (inFlight?.length ?? 0);
    },
    async flush(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (outbox.length + (inFlight?.length ?? 0) > 0 && Date.now() < deadline) {
        if (timer) {
          clearTimeout(timer);
          timer = null;
        }
        const attempt = new Promise<void>((resolve) => {
          onAttempt = resolve;
        });
        if (!inFlight) void sendBatch();
        let deadlineTimer: NodeJS.Timeout | undefined;
        await Promise.race([
          attempt,
          new Promise<void>((r) => {
            deadlineTimer = setTimeout(r, Math.max(0, deadline - Date.now()));
          }),
        ]);
        clearTimeout(deadlineTimer);
        if (failures > 0) {
          const wait = Math.min(backoffMs(), Math.max(0, deadline - Date.now()));
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      return outbox.length + (inFlight?.length ?? 0) === 0;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const a = agent;
      agent = null;
      await a?.close();
    },
  };
}
