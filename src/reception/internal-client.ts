/**
 * The reception's side of the internal network (CONTRACT §6, src/protocol/internal.ts): one
 * keep-alive connection pool per content server, and the three calls the reception makes — the
 * load report, ticket notices and revocations — each bounded by `monitor.timeoutMs` and carrying
 * the bearer token. Answers are validated with the protocol's schemas; anything else is an error
 * with a short reason the health state can keep.
 *
 * The timeout is lag-aware. In a rush the reception's own event loop can be busy for longer than
 * `timeoutMs`; a plain timer then fires before the (already arrived) answer is read, and healthy
 * content servers would be marked down by a reception that was merely slow — turning a busy
 * moment into 404s. When the timer itself fires late, the deadline is extended instead, so a
 * timeout means the server was slow, not us.
 */
import { Pool } from 'undici';
import { z } from 'zod';
import type { ContentServerConfig } from '../config/schema.js';
import {
  type LoadReport,
  loadReportSchema,
  type Notice,
  noticeAckSchema,
  PATHS,
  type Revocation,
} from '../protocol/internal.js';

export class InternalCallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalCallError';
  }
}

export interface InternalClient {
  load(serverId: string, catalogSince: string): Promise<LoadReport>;
  notices(serverId: string, notices: readonly Notice[]): Promise<void>;
  revocations(serverId: string, revocations: readonly Revocation[]): Promise<void>;
  close(): Promise<void>;
}

export function createInternalClient(opts: {
  servers: readonly ContentServerConfig[];
  token: string;
  timeoutMs: number;
}): InternalClient {
  const pools = new Map<string, Pool>();
  for (const s of opts.servers) {
    pools.set(
      s.id,
      new Pool(s.internalUrl, {
        connections: 32,
        keepAliveTimeout: 30_000,
        // Our own lag-aware deadline bounds each call; undici's timers only catch what it misses.
        headersTimeout: opts.timeoutMs * UNDICI_TIMEOUT_FACTOR,
        bodyTimeout: opts.timeoutMs * UNDICI_TIMEOUT_FACTOR,
        connectTimeout: opts.timeoutMs * UNDICI_TIMEOUT_FACTOR,
      }),
    );
  }
  const auth = `Bearer ${opts.token}`;

  async function call<T extends z.ZodType>(
    serverId: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    schema: T,
  ): Promise<z.output<T>> {
    const pool = pools.get(serverId);
    if (!pool) throw new InternalCallError(`unknown content server ${serverId}`);
    const deadline = lagAwareDeadline(opts.timeoutMs);
    try {
      return await send(pool, method, path, body, schema, deadline.signal);
    } finally {
      deadline.clear();
    }
  }

  async function send<T extends z.ZodType>(
    pool: Pool,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    schema: T,
    signal: AbortSignal,
  ): Promise<z.output<T>> {
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await pool.request({
        method,
        path,
        headers:
          body === undefined
            ? { authorization: auth }
            : { authorization: auth, 'content-type': 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw new InternalCallError(describe(err));
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw new InternalCallError(`reading the answer: ${describe(err)}`);
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw new InternalCallError(`${method} ${path.split('?')[0]} answered ${res.statusCode}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new InternalCallError(`${method} ${path.split('?')[0]} answered with something that is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new InternalCallError(`${method} ${path.split('?')[0]} answered an invalid message`);
    }
    return parsed.data;
  }

  return {
    load: (serverId, catalogSince) =>
      call(
        serverId,
        'GET',
        `${PATHS.content.load}?catalogSince=${encodeURIComponent(catalogSince)}`,
        undefined,
        loadReportSchema,
      ),
    async notices(serverId, notices) {
      await call(serverId, 'POST', PATHS.content.notices, { notices }, noticeAckSchema);
    },
    async revocations(serverId, revocations) {
      await call(serverId, 'POST', PATHS.content.revocations, { revocations }, anyJson);
    },
    async close() {
      await Promise.allSettled([...pools.values()].map((p) => p.close()));
    },
  };
}

const UNDICI_TIMEOUT_FACTOR = 10;
/** A timer this late means our event loop was busy, not that the server was slow. */
const LAG_MS = 25;
/** After a late timer, how long the answer gets to be read before the deadline is checked again. */
const GRACE_MS = 25;
/** A reception busy for longer than this many timeouts in a row times out anyway. */
const MAX_EXTENSION_FACTOR = 10;

/**
 * An abort signal that fires `timeoutMs` after now — unless its timer fires late (this process
 * was too busy to run it, and so too busy to read the answer), in which case the deadline moves
 * on by a short grace, during which the event loop reads whatever has arrived.
 */
export function lagAwareDeadline(timeoutMs: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const start = performance.now();
  let due = start + timeoutMs;
  let timer: NodeJS.Timeout;
  const fire = () => {
    const now = performance.now();
    if (now - due > LAG_MS && now - start < timeoutMs * MAX_EXTENSION_FACTOR) {
      due = now + GRACE_MS;
      timer = setTimeout(fire, GRACE_MS);
      return;
    }
    controller.abort(new DOMException('timed out', 'TimeoutError'));
  };
  timer = setTimeout(fire, timeoutMs);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Revocation answers carry nothing the reception uses; any JSON will do. */
const anyJson = z.unknown();

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
