/**
 * A small HTTP/1.1 load client for the tail-latency rows (bench/tail-load.ts): it opens every
 * connection and has each answer one request *before* the clock starts, so that what it times is
 * the servers' answers, not connects (wrk times a connection's first request from before its
 * SYN, and at 2,000 connections those SYNs are what set p99 — issue 12). Then either a closed
 * loop (each connection sends again as soon as it is answered: full load) or an open loop at a
 * fixed offered rate, timed from when each request was *due*, so a server that falls behind is
 * charged for the requests that queued meanwhile (no coordinated omission). One request shape
 * for every connection: a prebuilt buffer, written as is.
 */
import net from 'node:net';

export interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers by status code. */
  statuses: Map<number, number>;
  /** Connections closed or failed under load. */
  errors: number;
}

export interface LoadOptions {
  port: number;
  host?: string;
  /** The whole request, head and body. */
  request: Buffer;
  connections: number;
  seconds: number;
  /** Requests per second offered, spread over the connections; absent: closed loop. */
  rate?: number;
  /** Closed loop only: stop after this many requests instead of after `seconds`. */
  total?: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');

interface Conn {
  socket: net.Socket;
  buf: Buffer;
  /** When the request in flight was due (open loop) or sent (closed loop), ms. */
  since: number;
  busy: boolean;
  onAnswer?: (status: number) => void;
}

/** Splits answers off the byte stream; returns the status of each complete one. */
function takeAnswers(c: Conn, chunk: Buffer, each: (status: number) => void): void {
  c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
  for (;;) {
    const end = c.buf.indexOf(HEAD_END);
    if (end < 0) return;
    const head = c.buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const length = m ? Number(m[1]) : 0;
    const total = end + 4 + length;
    if (c.buf.length < total) return;
    c.buf = c.buf.subarray(total);
    each(Number(head.slice(9, 12)));
  }
}

function open(port: number, host: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, noDelay: true });
    const c: Conn = { socket, buf: Buffer.alloc(0), since: 0, busy: false };
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(c);
    });
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) =>
      takeAnswers(c, chunk, (status) => {
        c.busy = false;
        c.onAnswer?.(status);
      }),
    );
  });
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Opens and warms `opts.connections` connections, then runs the timed load on them. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const host = opts.host ?? '127.0.0.1';
  const conns: Conn[] = [];
  // A few hundred connects at a time: under the listen backlog of either server.
  for (let i = 0; i < opts.connections; i += 200) {
    const n = Math.min(200, opts.connections - i);
    conns.push(...(await Promise.all(Array.from({ length: n }, () => open(opts.port, host)))));
  }
  let errors = 0;
  for (const c of conns) {
    c.socket.on('error', () => {
      errors++;
    });
    c.socket.on('close', () => {
      if (c.busy) errors++;
      c.busy = false;
    });
  }
  // Warm: one answered request per connection before the clock starts.
  await Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.onAnswer = () => resolve();
          c.busy = true;
          c.socket.write(opts.request);
        }),
    ),
  );

  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const started = performance.now();
  const endAt = started + opts.seconds * 1000;
  let sent = 0;
  const send = (c: Conn, due: number) => {
    c.since = due;
    c.busy = true;
    sent++;
    c.socket.write(opts.request);
  };
  const done = new Promise<void>((resolve) => {
    let outstanding = 0;
    /** Open loop: every due request has been handed out. */
    let allDue = false;
    const finishIfDone = () => {
      if (outstanding !== 0) return;
      const over =
        opts.rate !== undefined
          ? allDue
          : performance.now() >= endAt || (opts.total !== undefined && sent >= opts.total);
      if (over) resolve();
    };
    const record = (c: Conn, status: number) => {
      latencies.push(performance.now() - c.since);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      outstanding--;
    };
    if (opts.rate === undefined) {
      for (const c of conns) {
        c.onAnswer = (status) => {
          record(c, status);
          const more = opts.total !== undefined ? sent < opts.total : performance.now() < endAt;
          if (more) {
            outstanding++;
            send(c, performance.now());
          } else finishIfDone();
        };
        if (opts.total === undefined || sent < opts.total) {
          outstanding++;
          send(c, performance.now());
        }
      }
      return;
    }
    // Open loop: requests fall due at `rate`; a due request waits for an idle connection.
    const interval = 1000 / opts.rate;
    const idle: Conn[] = [...conns];
    const queued: number[] = [];
    let next = started;
    for (const c of conns) {
      c.onAnswer = (status) => {
        record(c, status);
        const due = queued.shift();
        // (Counted as outstanding when it fell due.)
        if (due !== undefined) send(c, due);
        else {
          idle.push(c);
          finishIfDone();
        }
      };
    }
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < endAt) {
        const c = idle.pop();
        outstanding++;
        if (c) send(c, next);
        else queued.push(next);
        next += interval;
      }
      if (next < endAt) setTimeout(tick, 1);
      else {
        allDue = true;
        finishIfDone();
      }
    };
    tick();
  });
  // A connection closed under a request never answers it: the run ends anyway, counted as errors.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    done,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, opts.seconds * 1000 + 15_000);
    }),
  ]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  for (const c of conns) c.socket.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    statuses,
    errors,
  };
}

/** A POST with a JSON body, as one buffer. */
export function postRequest(path: string, body: string, headers: Record<string, string> = {}): Buffer {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
