/**
 * The client's side of the reception's public API (CONTRACT §3; the seed's Sc31/Sc51 "access
 * request" and Sc32/Sc53–Sc55 answers): place an order, ask for a fresh ticket for an order, read
 * a place in the waiting line. Every answer is validated with zod and turned into one tagged
 * union, so the waiting room and the downloader switch on `kind` and never parse HTTP themselves.
 * Counts the order and ticket requests it makes (`attempts` in `rushgate get --json`).
 */
import { randomUUID } from 'node:crypto';
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import { linkSignal } from './abort-link.js';

const ticketSchema = z.object({
  id: z.string(),
  url: z.string().url(),
  server: z.string(),
  notBefore: z.string(),
  expiresAt: z.string(),
});
const ticketedSchema = z.object({ orderId: z.string().min(1), ticket: ticketSchema });
const busySchema = z.object({
  status: z.literal('busy'),
  position: z.number(),
  estimatedWaitSeconds: z.number(),
  retryAfterSeconds: z.number().optional(),
  // Null from a busy fresh-ticket request (POST /api/orders/{id}/tickets), which gives no place.
  queueToken: z.string().min(1).nullable().optional(),
  // Newer receptions add an 80 % interval; an older one, or a malformed pair, just means none.
  estimatedWaitRangeSeconds: z.unknown().optional(),
});
const rangeSchema = z
  .tuple([z.number().finite().min(0), z.number().finite().min(0)])
  .refine(([low, high]) => low <= high);
const queueSchema = z.object({ position: z.number(), estimatedWaitSeconds: z.number() });
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string().optional() }) });

export interface Ticket {
  id: string;
  url: string;
  server: string;
  /** ms since the epoch */
  notBefore: number;
  /** ms since the epoch */
  expiresAt: number;
}

export type ReceptionAnswer =
  | { kind: 'ticketed'; orderId: string; ticket: Ticket }
  | {
      kind: 'busy';
      /** 1 = next in line; 0 = the reception keeps no line and named no position. */
      position: number;
      estimatedWaitSeconds: number;
      /** From `Retry-After` (the body's value when the header is missing); at least 1. */
      retryAfterSeconds: number;
      /** Absent when the reception keeps no waiting line (`queue.enabled: false`). */
      queueToken?: string;
      /** `[low, high]`: the reception's 80 % interval for the wait, when it gives one. */
      estimatedWaitRangeSeconds?: [number, number];
      /**
       * `Preference-Applied: wait=N`: the reception held this request open for up to N s before
       * answering busy (CONTRACT §3), so the next held retry may follow at once.
       */
      waitAppliedSeconds?: number;
    }
  | { kind: 'rate_limited'; retryAfterSeconds: number }
  /**
   * Not yet, for this order: `409 ticket_live` — its latest ticket is still live on a server the
   * reception believes up. After a server dies mid-transfer that lasts until the reception's
   * monitor marks it down (or its restart ends the ticket), so the answer is a wait, not a no.
   */
  | { kind: 'not_yet'; code: string; retryAfterSeconds: number }
  /** A definite refusal: the reception answered and said no. */
  | { kind: 'error'; status: number; code: string; message: string }
  /** No answer (refused connection, reset, timeout): worth another try later. */
  | { kind: 'unreachable'; message: string };

export interface QueuePlace {
  position: number;
  estimatedWaitSeconds: number;
}

/** How one try is sent. */
export interface AskOptions {
  /**
   * `Prefer: wait=N` (RFC 7240): ask the reception to hold the request open up to N s and answer
   * the moment the client is admitted. Only worth sending with a queue token.
   */
  preferWaitSeconds?: number;
}

export interface ReceptionClient {
  readonly origin: string;
  /** Order and ticket requests made so far. */
  readonly attempts: number;
  order(
    req: { item: string; queueToken?: string; idempotencyKey?: string } & AskOptions,
    signal?: AbortSignal,
  ): Promise<ReceptionAnswer>;
  /** `queueToken`: the place a busy answer to an earlier fresh-ticket request gave, if any. */
  freshTicket(
    orderId: string,
    queueToken?: string,
    signal?: AbortSignal,
    ask?: AskOptions,
  ): Promise<ReceptionAnswer>;
  /** The place behind a queue token, or undefined when the reception does not know it (any more). */
  queue(token: string, signal?: AbortSignal): Promise<QueuePlace | undefined>;
}

export interface ReceptionClientOptions {
  origin: string;
  dispatcher?: Dispatcher;
  /** Per request (a held-open one gets its wait on top); the caller's signal may end it sooner. */
  timeoutMs?: number;
  userAgent?: string;
  /** A purchase grant sent with every new order (CONTRACT §7). */
  grant?: string;
}

export function createReceptionClient(options: ReceptionClientOptions): ReceptionClient {
  const origin = options.origin.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 15_000;
  const userAgent = options.userAgent ?? 'rushgate-client';
  let attempts = 0;

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    extraHeaders: Record<string, string>,
    signal: AbortSignal | undefined,
    heldSeconds = 0,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: unknown }> {
    const link = linkSignal(signal, timeoutMs + heldSeconds * 1000);
    try {
      return await send(method, path, body, extraHeaders, link.signal);
    } finally {
      link.done();
    }
  }

  async function send(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    extraHeaders: Record<string, string>,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: unknown }> {
    const res = await request(`${origin}${path}`, {
      method,
      dispatcher: options.dispatcher,
      signal,
      headers: {
        accept: 'application/json',
        'user-agent': userAgent,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...extraHeaders,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, json };
  }

  async function ticketCall(
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    ask: AskOptions | undefined,
  ) {
    attempts++;
    const held = preferWaitOf(ask);
    try {
      const res = await call(
        'POST',
        path,
        body,
        held > 0 ? { ...headers, prefer: `wait=${held}` } : headers,
        signal,
        held,
      );
      return interpret(res.status, res.headers, res.json);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      return { kind: 'unreachable', message: describeNetworkError(err) } satisfies ReceptionAnswer;
    }
  }

  return {
    origin,
    get attempts() {
      return attempts;
    },
    order(req, signal) {
      const body: Record<string, string> = { item: req.item };
      if (req.queueToken) body.queueToken = req.queueToken;
      if (options.grant) body.grant = options.grant;
      return ticketCall(
        '/api/orders',
        body,
        { 'idempotency-key': req.idempotencyKey ?? randomUUID() },
        signal,
        req.queueToken ? req : undefined,
      );
    },
    freshTicket(orderId, queueToken, signal, ask) {
      return ticketCall(
        `/api/orders/${encodeURIComponent(orderId)}/tickets`,
        {},
        queueToken ? { 'rushgate-queue-token': queueToken } : {},
        signal,
        // Held open without a token: the order itself is the client's place (CONTRACT §3).
        ask,
      );
    },
    async queue(token, signal) {
      try {
        const res = await call('GET', `/api/queue/${encodeURIComponent(token)}`, undefined, {}, signal);
        if (res.status !== 200) return undefined;
        const parsed = queueSchema.safeParse(res.json);
        return parsed.success ? parsed.data : undefined;
      } catch {
        if (signal?.aborted) throw signal.reason;
        return undefined;
      }
    },
  };
}

/** The whole seconds of a `Prefer: wait` worth sending (0: none). */
function preferWaitOf(ask: AskOptions | undefined): number {
  const n = ask?.preferWaitSeconds;
  return n !== undefined && Number.isFinite(n) && n >= 1 ? Math.floor(n) : 0;
}

/** A body that was not what the contract says, shortened for a message: what came instead. */
function bodySnippet(json: unknown): string {
  if (json === undefined) return 'and no JSON body';
  const text = JSON.stringify(json);
  return `and an unexpected body: ${text.length > 120 ? `${text.slice(0, 120)}…` : text}`;
}

/** Turns one HTTP answer of the order/ticket endpoints into a `ReceptionAnswer`. Pure. */
export function interpret(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  json: unknown,
): ReceptionAnswer {
  const retryAfter = retryAfterSeconds(headers['retry-after']);
  if (status === 200 || status === 201) {
    const parsed = ticketedSchema.safeParse(json);
    if (!parsed.success) return malformed(status);
    const t = parsed.data.ticket;
    const notBefore = Date.parse(t.notBefore);
    const expiresAt = Date.parse(t.expiresAt);
    if (Number.isNaN(notBefore) || Number.isNaN(expiresAt)) return malformed(status);
    return {
      kind: 'ticketed',
      orderId: parsed.data.orderId,
      ticket: { id: t.id, url: t.url, server: t.server, notBefore, expiresAt },
    };
  }
  if (status === 503) {
    const busy = busySchema.safeParse(json);
    if (busy.success) {
      const range = rangeSchema.safeParse(busy.data.estimatedWaitRangeSeconds);
      const applied = preferenceAppliedWait(headers['preference-applied']);
      return {
        kind: 'busy',
        position: Math.max(1, Math.round(busy.data.position)),
        estimatedWaitSeconds: Math.max(0, busy.data.estimatedWaitSeconds),
        retryAfterSeconds: retryAfter ?? Math.max(1, Math.ceil(busy.data.retryAfterSeconds ?? 1)),
        ...(busy.data.queueToken ? { queueToken: busy.data.queueToken } : {}),
        ...(range.success ? { estimatedWaitRangeSeconds: range.data } : {}),
        ...(applied === undefined ? {} : { waitAppliedSeconds: applied }),
      };
    }
  }
  if (status === 429) return { kind: 'rate_limited', retryAfterSeconds: retryAfter ?? 1 };
  const err = errorSchema.safeParse(json);
  if (status === 503 && err.success && err.data.error.code === 'busy') {
    // Busy without a waiting line: no position to show, but Retry-After still rules.
    return {
      kind: 'busy',
      position: 0,
      estimatedWaitSeconds: retryAfter ?? 1,
      retryAfterSeconds: retryAfter ?? 1,
    };
  }
  if (status === 503 && (!err.success || err.data.error.code === 'unavailable')) {
    // Not ready yet (no load report) or overloaded: a later try may succeed.
    return {
      kind: 'unreachable',
      message: `reception not ready (503 ${err.success ? err.data.error.code : bodySnippet(json)})`,
    };
  }
  if (status >= 500) return { kind: 'unreachable', message: `reception answered ${status}` };
  if (!err.success) return malformed(status);
  if (status === 409 && err.data.error.code === 'ticket_live')
    return { kind: 'not_yet', code: err.data.error.code, retryAfterSeconds: retryAfter ?? 1 };
  return {
    kind: 'error',
    status,
    code: err.data.error.code,
    message: err.data.error.message ?? `reception answered ${status}`,
  };
}

function malformed(status: number): ReceptionAnswer {
  return {
    kind: 'error',
    status,
    code: 'bad_answer',
    message: `the reception's answer (${status}) is malformed`,
  };
}

/**
 * The `wait` of a `Preference-Applied` header (RFC 7240: `wait=10`, maybe among other
 * preferences, maybe quoted), or undefined when the reception applied none. Pure.
 */
export function preferenceAppliedWait(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value.join(',') : value;
  if (!raw) return undefined;
  for (const part of raw.split(',')) {
    const m = /^\s*wait\s*=\s*"?(\d+)"?\s*(?:;.*)?$/i.exec(part);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** `Retry-After` as whole seconds ≥ 1 (delta-seconds or an HTTP date), or undefined. */
export function retryAfterSeconds(
  value: string | string[] | undefined,
  now = Date.now(),
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(raw)) return Math.max(1, Number(raw));
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

export function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code ?? (err.cause as { code?: string } | undefined)?.code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
