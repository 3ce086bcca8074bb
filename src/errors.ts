/**
 * The one registry of errors that cross a process boundary. Every HTTP error answer and every
 * CLI failure names one of these codes, so callers (and tests) can switch on a stable string
 * instead of parsing messages. The public shape is CONTRACT §3: `{"error": {"code", "message"}}`.
 */

export const ERRORS = {
  // Reception, public side (CONTRACT §3)
  bad_request: { status: 400, message: 'The request is malformed.' },
  invalid_item_path: { status: 400, message: 'The item path is not a valid path inside the item tree.' },
  unknown_item: { status: 404, message: 'No content server holds this item.' },
  unknown_order: { status: 404, message: 'No such order.' },
  unknown_queue_token: { status: 404, message: 'No such place in the waiting line.' },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  idempotency_conflict: { status: 409, message: 'This Idempotency-Key was used for another item.' },
  ticket_limit_reached: { status: 409, message: 'This order has had its maximum number of tickets.' },
  order_closed: { status: 409, message: 'This order was revoked; it takes no fresh ticket.' },
  ticket_live: {
    status: 409,
    message: "This order's latest ticket is still live; use it, or ask again after Retry-After.",
  },
  body_too_large: { status: 413, message: 'The request body is over 16 KiB.' },
  unsupported_media_type: {
    status: 415,
    message: 'The request body must be JSON (Content-Type: application/json).',
  },
  rate_limited: { status: 429, message: 'Too many requests from this client; slow down.' },
  client_limit: {
    status: 429,
    message: 'This client already holds its share of tickets or places in line; try again later.',
  },
  busy: { status: 503, message: 'Every content server holding this item is busy.' },
  line_full: {
    status: 503,
    message: 'The waiting line is full (queue.maxLength places); try again later.',
  },
  unavailable: { status: 503, message: 'The service is not ready to take orders.' },
  store_unavailable: {
    status: 503,
    message: 'The order store is unreachable or cannot write; nothing was recorded. Try again shortly.',
  },
  internal_error: { status: 500, message: 'Internal error.' },
  // Purchase grants (CONTRACT §7)
  grant_required: { status: 401, message: 'This item is sold: the order needs a purchase grant.' },
  bad_grant: {
    status: 403,
    message:
      'The grant is malformed, not signed by a known issuer key, expired, or its purchase was refunded.',
  },
  grant_item: { status: 403, message: 'The grant does not cover this item.' },
  grant_used: { status: 409, message: 'The grant has made all the orders it may make for this item.' },
  // Internal network (CONTRACT §6)
  unauthorized: { status: 401, message: 'Missing or wrong internal bearer token.' },
  // Content server, public side (CONTRACT §4). Ticket refusals keep the contract's codes.
  bad_ticket: { status: 403, message: 'The ticket is malformed or was not issued by this deployment.' },
  wrong_server: { status: 403, message: 'The ticket was issued for another content server.' },
  wrong_path: { status: 403, message: 'The ticket was issued for another item.' },
  expired: { status: 403, message: 'The ticket has expired.' },
  not_yet_valid: { status: 403, message: 'The ticket is not valid yet.' },
  wrong_client: { status: 403, message: 'The ticket was issued to another client address.' },
  no_notice: { status: 403, message: 'The reception has not announced this ticket to this server.' },
  revoked: { status: 410, message: 'The ticket has been revoked or its order is complete.' },
  at_capacity: { status: 503, message: 'This content server is at capacity.' },
  draining: { status: 503, message: 'This content server is shutting down.' },
  too_many_connections: {
    status: 429,
    message: 'This ticket already has its maximum number of transfers in flight.',
  },
  range_not_satisfiable: { status: 416, message: 'The requested range is not satisfiable.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a registry code; `message` may be more specific than the registry's default. */
export class RushgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? ERRORS[code].message, options);
    this.name = 'RushgateError';
    this.code = code;
    this.status = ERRORS[code].status;
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: ErrorCode, message?: string): ErrorBody {
  return { error: { code, message: message ?? ERRORS[code].message } };
}

/** Thrown by the deployment-file loader; the CLI prints `message` and exits 2 (CONTRACT §2). */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid deployment file:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A command-line usage problem: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
