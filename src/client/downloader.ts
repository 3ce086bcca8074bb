/**
 * One transfer under one ticket, the seed's Sc33–Sc34: `GET` the ticket URL (CONTRACT §4), from
 * the first missing byte with `Range` when some are already held, into a sink, and say how it
 * ended: complete, refused (with the content server's code), failed mid-way (connection refused,
 * reset, stalled), or "the item changed" (its stated digest or size differs from the bytes held,
 * which were dropped). It does not choose what to do next; `order-flow.ts` does.
 *
 * Resuming on another server must work, so no `If-Range` is sent: ETags are per server (they
 * follow each copy's mtime), while `Repr-Digest` names the item itself; the digest and size are
 * what tie the held bytes to the new response.
 */
import { type Dispatcher, request } from 'undici';
import type { Clock } from './clock.js';
import { sha256FromReprDigest } from './digest.js';
import { describeNetworkError } from './reception-api.js';
import type { Sink } from './sink.js';

export type FetchOutcome =
  | { kind: 'complete'; size: number; statedSha256?: string }
  | { kind: 'refused'; status: number; code?: string; retryAfterSeconds?: number }
  | { kind: 'failed'; message: string; progressed: boolean }
  | { kind: 'changed'; message: string };

export interface Expected {
  size?: number;
  sha256?: string;
}

export interface FetchOptions {
  clock: Clock;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** What earlier responses stated about the item, if any. */
  expected: Expected;
  /** Learned from this response: the item's size and digest. */
  onStart?(info: { offset: number; size: number; sha256?: string }): void | Promise<void>;
  onProgress?(held: number): void;
  /** Bytes per second; undefined = as fast as it comes. */
  limitRate?: number;
  /** A server that sends nothing for this long has failed; default 30 s. */
  stallTimeoutMs?: number;
}

export async function fetchInto(url: string, sink: Sink, opts: FetchOptions): Promise<FetchOutcome> {
  const offset = sink.length;
  if (opts.expected.size !== undefined && offset > opts.expected.size) {
    await sink.truncate();
    return { kind: 'changed', message: 'more bytes held than the item has' };
  }
  const stall = opts.stallTimeoutMs ?? 30_000;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'GET',
      dispatcher: opts.dispatcher,
      signal: opts.signal,
      headersTimeout: stall,
      bodyTimeout: stall,
      headers: {
        'accept-encoding': 'identity',
        'user-agent': 'rushgate-client',
        ...(offset > 0 ? { range: `bytes=${offset}-` } : {}),
      },
    });
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    return { kind: 'failed', message: describeNetworkError(err), progressed: false };
  }

  const stated = sha256FromReprDigest(res.headers['repr-digest']);
  let size: number;
  if (res.statusCode === 200) {
    size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size)) {
      await res.body.dump();
      return { kind: 'failed', message: 'the content server sent no Content-Length', progressed: false };
    }
    if (offset > 0) await sink.truncate();
  } else if (res.statusCode === 206) {
    const range = parseContentRange(one(res.headers['content-range']));
    if (!range || range.start !== offset || range.size === undefined) {
      await res.body.dump();
      return {
        kind: 'failed',
        message: 'the content server answered another range than asked',
        progressed: false,
      };
    }
    size = range.size;
  } else if (res.statusCode === 416) {
    await res.body.dump();
    const range = parseContentRange(one(res.headers['content-range']));
    if (range?.size !== undefined && range.size === offset) {
      return { kind: 'complete', size: offset, ...(stated ? { statedSha256: stated } : {}) };
    }
    await sink.truncate();
    return { kind: 'changed', message: 'the held bytes do not fit the item any more' };
  } else {
    return refusal(res);
  }

  // The held bytes belong to another version of the item: start again from the first byte.
  if (
    sink.length > 0 &&
    ((opts.expected.sha256 && stated && stated !== opts.expected.sha256) ||
      (opts.expected.size !== undefined && opts.expected.size !== size))
  ) {
    res.body.destroy();
    await sink.truncate();
    return { kind: 'changed', message: 'the item changed since the first bytes were fetched' };
  }
  await opts.onStart?.({ offset: sink.length, size, ...(stated ? { sha256: stated } : {}) });

  const started = opts.clock.now();
  let received = 0;
  try {
    for await (const chunk of res.body) {
      await sink.write(chunk as Buffer);
      received += (chunk as Buffer).length;
      opts.onProgress?.(sink.length);
      if (opts.limitRate) {
        const wait = throttleDelayMs(received, opts.clock.now() - started, opts.limitRate);
        if (wait > 0) await opts.clock.sleep(wait, opts.signal);
      }
    }
  } catch (err) {
    res.body.destroy();
    if (opts.signal?.aborted) throw opts.signal.reason;
    return { kind: 'failed', message: describeNetworkError(err), progressed: received > 0 };
  }
  if (sink.length !== size) {
    return {
      kind: 'failed',
      message: `the transfer ended after ${sink.length} of ${size} bytes`,
      progressed: received > 0,
    };
  }
  return { kind: 'complete', size, ...(stated ? { statedSha256: stated } : {}) };
}

async function refusal(res: Dispatcher.ResponseData): Promise<FetchOutcome> {
  let code: string | undefined;
  try {
    const text = await res.body.text();
    const json = JSON.parse(text) as { error?: { code?: unknown } };
    if (typeof json.error?.code === 'string') code = json.error.code;
  } catch {
    // Not our JSON error shape (or a cut connection): the status alone must do.
  }
  const retryAfter = Number(one(res.headers['retry-after']));
  return {
    kind: 'refused',
    status: res.statusCode,
    ...(code ? { code } : {}),
    ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
  };
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Parses `Content-Range`: `bytes 10-99/100` gives start, end and size; the unsatisfied form (a star for the range) gives the size alone. Pure. */
export function parseContentRange(
  value: string | undefined,
): { start?: number; end?: number; size?: number } | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const out: { start?: number; end?: number; size?: number } = {};
  if (m[1] !== undefined && m[2] !== undefined) {
    out.start = Number(m[1]);
    out.end = Number(m[2]);
  }
  if (m[3] !== '*') out.size = Number(m[3]);
  return out;
}

/** How long to pause so that `bytes` in `elapsedMs` stays at `rate` bytes/s. Pure. */
export function throttleDelayMs(bytes: number, elapsedMs: number, rate: number): number {
  if (!(rate > 0)) return 0;
  return Math.max(0, Math.ceil((bytes / rate) * 1000 - elapsedMs));
}
