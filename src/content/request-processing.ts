/**
 * The seed's request-processing module 142 (FIG. 4; step Sb32 of FIG. 6B): "judgment processing
 * as to whether outstanding access from the client is permitted based on the permission ticket".
 * It takes what the ticket receiver found and the server's state and decides: serve, or refuse
 * with which code, status and `Retry-After`. The order is fixed and is part of the contract: the
 * ticket verdict first (CONTRACT §4's order, `revoked` last), then whether this server holds the
 * item, then draining, then the per-ticket connection cap, then the capacity guard. Pure: every fact comes in as an argument, and
 * every decision says why.
 */
import type { ErrorCode } from '../errors.js';
import { ERRORS } from '../errors.js';
import type { RefusalCode } from '../tickets/index.js';

export interface JudgeInput {
  /** The ticket receiver's verdict: admitted, or the first failed check. */
  ticket: { ok: true } | { ok: false; code: RefusalCode };
  itemFound: boolean;
  draining: boolean;
  /** Clients being served now: distinct tickets with a transfer in progress, plus untracked ones. */
  serving: number;
  capacity: number;
  /**
   * The request's ticket already has a transfer in progress: it is already one of the clients
   * being served, so a further (parallel range) request of it is not refused at capacity.
   */
  alreadyServing: boolean;
  /** Transfers of the request's ticket in flight now (0 without a ticket). */
  ticketTransfers: number;
  /**
   * `connectionsPerTicket` (CONTRACT §4): at this many transfers in flight a ticket's further
   * request is `429 too_many_connections`. This is what bounds the capacity exception above: one
   * ticket (a download manager's segments, or a URL posted in public) is one client, but never
   * more than this many connections.
   */
  connectionsPerTicket: number;
  /** What to put in Retry-After when refusing for load; asked only then (it may cost a sort). */
  retryAfterSeconds: () => number;
}

export type Decision =
  | { serve: true }
  | {
      serve: false;
      code: ErrorCode;
      status: number;
      /** Present on 503s and 429s. */
      retryAfterSeconds?: number;
    };

const SERVE: Decision = { serve: true };

function refuse(code: ErrorCode, retryAfterSeconds?: number): Decision {
  const d: Decision = { serve: false, code, status: ERRORS[code].status };
  if (retryAfterSeconds !== undefined) d.retryAfterSeconds = retryAfterSeconds;
  return d;
}

export function judgeRequest(input: JudgeInput): Decision {
  if (!input.ticket.ok) return refuse(input.ticket.code);
  if (!input.itemFound) return refuse('not_found');
  if (input.draining) return refuse('draining', input.retryAfterSeconds());
  if (input.ticketTransfers >= input.connectionsPerTicket) {
    return refuse('too_many_connections', input.retryAfterSeconds());
  }
  if (!input.alreadyServing && input.serving >= input.capacity) {
    return refuse('at_capacity', input.retryAfterSeconds());
  }
  return SERVE;
}

/**
 * Retry-After for a load refusal: the median of recent service times (how long a slot stays
 * taken), in whole seconds, between 1 and `max`; `fallback` when nothing has completed yet.
 */
export function retryAfterFrom(serviceTimesMs: readonly number[], max = 30, fallback = 2): number {
  if (serviceTimesMs.length === 0) return fallback;
  const sorted = [...serviceTimesMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  return Math.min(max, Math.max(1, Math.ceil(median / 1000)));
}
