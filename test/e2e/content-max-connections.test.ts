/**
 * The content server's server-wide connection cap (issue 10, `contentServers[].maxConnections`) on
 * a real `rushgate content` process: with the cap at 3, three keep-alive connections are served,
 * a fourth is dropped before any answer while the three still serve further requests, and once
 * they close a new connection is served again. The keep-alive and idle timeouts are lengthened
 * through the environment so that the held connections stay open for the whole test (and only
 * the cap can be what drops the fourth).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { eventually, mint, serverOf, ticketPath } from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { type Proc, startRushgate, waitForHttp } from '../helpers/proc.js';

const CAP = 3;
const env = { RUSHGATE_KEEPALIVE_TIMEOUT_MS: '120000', RUSHGATE_IDLE_TIMEOUT_MS: '120000' };

let dep: TestDeployment;
let proc: Proc;
let host: string;
let port: number;
let path: string;

before(async () => {
  dep = await makeDeployment({
    servers: 1,
    // `expiring`: the ticket needs no notice from a reception, which this test does not run.
    reception: { tickets: { policy: 'expiring' } },
    server: () => ({ maxConnections: CAP }),
  });
  dep.writeItem('/hello.txt', 'hello\n', 'a');
  proc = startRushgate(['content', '--config', dep.configPath, '--id', 'a'], { env });
  await waitForHttp(`${serverOf(dep.config, 'a').internalUrl}/healthz`, { proc });
  const u = new URL(serverOf(dep.config, 'a').publicUrl);
  host = u.hostname;
  port = Number(u.port);
  path = ticketPath(mint(dep.config, { path: '/hello.txt' }).token, '/hello.txt');
});

after(async () => {
  await proc?.kill('SIGKILL');
  dep?.cleanup();
});

/** A raw keep-alive connection: each `get` writes one request and resolves with its status once the whole body is in. */
class Conn {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  received = 0;
  private buf = Buffer.alloc(0);
  private waiting: ((status: number) => void) | null = null;

  constructor() {
    this.socket = net.connect({ host, port });
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (c: Buffer) => {
      this.received += c.length;
      this.buf = Buffer.concat([this.buf, c]);
      this.drain();
    });
  }

  private drain(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.waiting) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + length) return;
    this.buf = this.buf.subarray(end + 4 + length);
    const done = this.waiting;
    this.waiting = null;
    done(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0));
  }

  /** Rejects if the server closes the connection before the answer. */
  get(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.closed.then(() => reject(new Error('closed before an answer')));
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: keep-alive\r\n\r\n`);
    });
  }
}

describe('server-wide maxConnections', () => {
  test(`at ${CAP} connections the next is dropped, the held ones serve on, and a new one is served once they close`, async () => {
    const held = Array.from({ length: CAP }, () => new Conn());
    const extra: Conn[] = [];
    try {
      // Each held connection has been answered, so the server has accepted and counts it.
      for (const c of held) assert.equal(await c.get(), 200);

      const over = new Conn();
      extra.push(over);
      over.get().catch(() => {});
      // A failure guard: a connection the cap does not drop stays open for 120 s (the timeouts above).
      await Promise.race([
        over.closed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('over-cap connection not dropped')), 15_000),
        ),
      ]);
      assert.equal(over.received, 0, 'the over-cap connection got no answer');

      // The held connections are untouched by the refusal.
      for (const c of held) assert.equal(await c.get(), 200);
    } finally {
      for (const c of held) c.socket.destroy();
    }
    await Promise.all(held.map((c) => c.closed));
    // The server sees the closes shortly after; a new connection is then served.
    await eventually(async () => {
      const c = new Conn();
      extra.push(c);
      try {
        return (await c.get()) === 200;
      } finally {
        c.socket.destroy();
      }
    });
    for (const c of extra) c.socket.destroy();
  });
});
