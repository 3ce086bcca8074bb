/**
 * Timeouts of every listener, public and internal, of the reception and the content servers
 * (issue 10): without them a client that sends its headers or body a byte at a time (slowloris)
 * holds a socket forever, since every byte resets a plain idle timer.
 *
 * - `headersMs`: the whole header block must arrive within this (Node's `headersTimeout`).
 * - `requestMs`: the whole request, body included, must arrive within this (`requestTimeout`);
 *   it counts receiving only, so a long download or a `Prefer: wait` hold is not cut by it.
 * - `keepAliveMs`: an idle keep-alive socket is closed after this.
 * - `idleMs`: a socket with no traffic either way is closed after this (a stalled download,
 *   a client that stopped reading); longer than `queue.maxRetryAfterSeconds`, the longest
 *   `Prefer: wait` hold.
 *
 * Node checks the first two every `connectionsCheckingInterval` (30 s by default, which would let
 * a slow client stay 30 s past its deadline): a quarter of `headersMs` here.
 *
 * Operators (and the tests, to stay short) may tune them with the environment variables
 * RUSHGATE_HEADERS_TIMEOUT_MS, RUSHGATE_REQUEST_TIMEOUT_MS, RUSHGATE_KEEPALIVE_TIMEOUT_MS and
 * RUSHGATE_IDLE_TIMEOUT_MS (positive integers, milliseconds).
 */

export interface ListenerTimeouts {
  headersMs: number;
  requestMs: number;
  keepAliveMs: number;
  idleMs: number;
}

export const DEFAULT_LISTENER_TIMEOUTS: ListenerTimeouts = {
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 5_000,
  idleMs: 60_000,
};

const ENV: Record<keyof ListenerTimeouts, string> = {
  headersMs: 'RUSHGATE_HEADERS_TIMEOUT_MS',
  requestMs: 'RUSHGATE_REQUEST_TIMEOUT_MS',
  keepAliveMs: 'RUSHGATE_KEEPALIVE_TIMEOUT_MS',
  idleMs: 'RUSHGATE_IDLE_TIMEOUT_MS',
};

/** The defaults, with any valid override from `env`; an invalid value is ignored (the default stands). */
export function listenerTimeouts(env: NodeJS.ProcessEnv = process.env): ListenerTimeouts {
  const out = { ...DEFAULT_LISTENER_TIMEOUTS };
  for (const key of Object.keys(ENV) as (keyof ListenerTimeouts)[]) {
    const raw = env[ENV[key]];
    if (raw === undefined || !/^[1-9]\d{0,8}$/.test(raw)) continue;
    out[key] = Number(raw);
  }
  // Node requires headersTimeout ≤ requestTimeout.
  out.requestMs = Math.max(out.requestMs, out.headersMs);
  return out;
}

/** Options for `http.createServer` / `https.createServer` (set at creation only). */
export function nodeServerOptions(t: ListenerTimeouts) {
  return {
    headersTimeout: t.headersMs,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    connectionsCheckingInterval: Math.max(250, Math.floor(t.headersMs / 4)),
  };
}

/** Fastify's own options for the same timeouts, plus the node server options it passes on. */
export function fastifyTimeoutOptions(t: ListenerTimeouts) {
  return {
    connectionTimeout: t.idleMs,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    http: nodeServerOptions(t),
  };
}
