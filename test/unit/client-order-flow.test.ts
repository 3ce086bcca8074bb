/**
 * One order through the client (seed FIG. 6C/12C) against in-process fakes on loopback: a fake
 * reception that answers orders and fresh tickets as CONTRACT §3 says, and fake content servers
 * that can die mid-transfer, refuse a ticket, or serve corrupted bytes. Checks the decisions of
 * `order-flow.ts`: resume with Range on whichever server the fresh ticket names, the digest check,
 * continuing an order from a sidecar, and placing a new order when the old one cannot be renewed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { systemClock } from '../../src/client/clock.js';
import { runOrder } from '../../src/client/order-flow.js';
import { createReceptionClient } from '../../src/client/reception-api.js';
import { DiscardSink, FileSink } from '../../src/client/sink.js';

const ITEM = '/apps/x.bin';
const BODY = randomBytes(300 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');
const DIGEST = `sha-256=:${Buffer.from(SHA, 'hex').toString('base64')}:`;

interface Behaviour {
  /** Cut the connection after this many body bytes. */
  failAfter?: number;
  refuse?: { status: number; code: string };
  corrupt?: boolean;
}

interface FakeContent {
  id: string;
  url: string;
  behaviour: Behaviour;
  ranges: (string | undefined)[];
  server: Server;
}

const listen = (server: Server) =>
  new Promise<string>((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });

async function fakeContent(id: string): Promise<FakeContent> {
  const fc = { id, behaviour: {}, ranges: [] } as unknown as FakeContent;
  fc.server = createServer((req, res) => {
    fc.ranges.push(req.headers.range);
    const b = fc.behaviour;
    if (b.refuse) {
      res.writeHead(b.refuse.status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: { code: b.refuse.code } }));
      return;
    }
    const body = b.corrupt ? Buffer.from(BODY).fill(7, 1000, 1010) : BODY;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const headers = {
      'repr-digest': DIGEST,
      'accept-ranges': 'bytes',
      'content-length': String(BODY.length - start),
    };
    if (m)
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}` });
    else res.writeHead(200, headers);
    const slice = body.subarray(start);
    if (b.failAfter !== undefined && b.failAfter < slice.length) {
      res.write(slice.subarray(0, b.failAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  });
  fc.url = await listen(fc.server);
  return fc;
}

interface FakeReception {
  url: string;
  server: Server;
  requests: string[];
  /** The `Prefer` header of each request. */
  prefer: (string | undefined)[];
  /** Answers to come for POST /api/orders (default: a ticket on `next`). */
  orderAnswers: ((res: ServerResponse) => void)[];
  ticketAnswers: ((res: ServerResponse) => void)[];
  next: string;
  issued: number;
}

let contents: Record<string, FakeContent>;
let reception: FakeReception;
let dir: string;

function sendTicket(res: ServerResponse, orderId: string, server: string, status = 201) {
  reception.issued++;
  const fc = contents[server]!;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      orderId,
      status: 'ticketed',
      ticket: {
        id: `t${reception.issued}`,
        url: `${fc.url}/t/tok${reception.issued}${ITEM}`,
        server,
        notBefore: new Date(Date.now() - 1000).toISOString(),
        expiresAt: new Date(Date.now() + 600_000).toISOString(),
      },
    }),
  );
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function fakeReception(): Promise<FakeReception> {
  const fr = {
    requests: [],
    prefer: [],
    orderAnswers: [],
    ticketAnswers: [],
    next: 'a',
    issued: 0,
  } as unknown as FakeReception;
  fr.server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      fr.requests.push(`${req.method} ${req.url} ${body}`);
      fr.prefer.push(req.headers.prefer as string | undefined);
      if (req.method === 'POST' && req.url === '/api/orders') {
        const custom = fr.orderAnswers.shift();
        if (custom) custom(res);
        else sendTicket(res, `o${fr.requests.length}`, fr.next);
        return;
      }
      const m = /^\/api\/orders\/([^/]+)\/tickets$/.exec(req.url ?? '');
      if (req.method === 'POST' && m) {
        const custom = fr.ticketAnswers.shift();
        if (custom) custom(res);
        else sendTicket(res, decodeURIComponent(m[1]!), fr.next);
        return;
      }
      json(res, 404, { error: { code: 'not_found', message: 'Not found.' } });
    });
  });
  fr.url = await listen(fr.server);
  return fr;
}

before(async () => {
  contents = { a: await fakeContent('a'), b: await fakeContent('b') };
  reception = await fakeReception();
  dir = mkdtempSync(path.join(tmpdir(), 'rushgate-flow-'));
});

after(() => {
  for (const fc of Object.values(contents)) fc.server.close();
  reception.server.close();
  rmSync(dir, { recursive: true, force: true });
});

function reset() {
  for (const fc of Object.values(contents)) {
    fc.behaviour = {};
    fc.ranges = [];
  }
  reception.requests = [];
  reception.prefer = [];
  reception.orderAnswers = [];
  reception.ticketAnswers = [];
  reception.next = 'a';
}

const client = () => createReceptionClient({ origin: reception.url, timeoutMs: 5000 });

test('orders, downloads and checks the digest', async () => {
  reset();
  const sink = new DiscardSink();
  const r = await runOrder({ reception: client(), item: ITEM, sink, clock: systemClock });
  assert.equal(r.kind, 'done');
  if (r.kind !== 'done') return;
  assert.equal(r.sha256, SHA);
  assert.equal(r.size, BODY.length);
  assert.equal(r.server, 'a');
  assert.equal(r.attempts, 1);
  assert.deepEqual(r.tickets, ['a']);
  assert.deepEqual(contents.a!.ranges, [undefined]);
  assert.match(reception.requests[0]!, /^POST \/api\/orders \{"item":"\/apps\/x\.bin"\}$/);
});

test('a server that dies mid-transfer: fresh ticket for the same order, resumed with Range on the other server', async () => {
  reset();
  contents.a!.behaviour = { failAfter: 100 * 1024 };
  reception.next = 'a';
  reception.ticketAnswers.push((res) => sendTicket(res, 'o-same', 'b'));
  reception.orderAnswers.push((res) => sendTicket(res, 'o-same', 'a'));
  const notices: string[] = [];
  const sink = new DiscardSink();
  const r = await runOrder({
    reception: client(),
    item: ITEM,
    sink,
    clock: systemClock,
    observer: { notice: (t) => notices.push(t) },
  });
  assert.equal(r.kind, 'done', JSON.stringify(r));
  if (r.kind !== 'done') return;
  assert.equal(r.sha256, SHA);
  assert.deepEqual(r.tickets, ['a', 'b']);
  assert.equal(r.attempts, 2);
  assert.equal(r.orderId, 'o-same');
  assert.match(reception.requests[1]!, /^POST \/api\/orders\/o-same\/tickets /);
  // Its order is its place (CONTRACT §3): held open from the first try, no queue token needed.
  assert.match(reception.prefer[1] ?? '', /^wait=\d+$/);
  assert.equal(reception.prefer[0], undefined, 'a new order asks only once it has a token');
  const range = contents.b!.ranges[0];
  assert.ok(range && /^bytes=\d+-$/.test(range), `resumed with a range, got ${range}`);
  assert.ok(Number(/\d+/.exec(range)![0]) >= 100 * 1024 - 1, 'from the first missing byte');
  assert.ok(notices.some((n) => /server a failed/.test(n)));
});

test('a revoked ticket (410) before every byte: a fresh ticket', async () => {
  reset();
  contents.a!.behaviour = { refuse: { status: 410, code: 'revoked' } };
  reception.ticketAnswers.push((res) => sendTicket(res, 'o-r', 'b'));
  const r = await runOrder({ reception: client(), item: ITEM, sink: new DiscardSink(), clock: systemClock });
  assert.equal(r.kind, 'done');
  assert.deepEqual(r.tickets, ['a', 'b']);
});

test('bytes that do not match the stated Repr-Digest: an integrity failure', async () => {
  reset();
  contents.a!.behaviour = { corrupt: true };
  const r = await runOrder({ reception: client(), item: ITEM, sink: new DiscardSink(), clock: systemClock });
  assert.equal(r.kind, 'integrity');
  if (r.kind === 'integrity') assert.equal(r.expected, SHA);
});

test('continues an order from its sidecar: the kept ticket, from the first missing byte, no reception call', async () => {
  reset();
  const part = path.join(dir, 'resume.part');
  writeFileSync(part, BODY.subarray(0, 123_456));
  const sink = await FileSink.open(part);
  assert.equal(sink.length, 123_456);
  const r = await runOrder({
    reception: client(),
    item: ITEM,
    sink,
    clock: systemClock,
    resume: {
      orderId: 'o-kept',
      ticket: {
        id: 't-kept',
        url: `${contents.b!.url}/t/kept${ITEM}`,
        server: 'b',
        notBefore: 0,
        expiresAt: Date.now() + 60_000,
      },
      size: BODY.length,
      sha256: SHA,
    },
  });
  await sink.close();
  assert.equal(r.kind, 'done');
  if (r.kind !== 'done') return;
  assert.equal(r.sha256, SHA);
  assert.equal(r.orderId, 'o-kept');
  assert.equal(r.attempts, 0);
  assert.deepEqual(contents.b!.ranges, ['bytes=123456-']);
});

test('an order the reception will not renew (409): a new order, keeping the bytes', async () => {
  reset();
  const part = path.join(dir, 'renew.part');
  writeFileSync(part, BODY.subarray(0, 1000));
  const sink = await FileSink.open(part);
  reception.ticketAnswers.push((res) =>
    json(res, 409, { error: { code: 'ticket_limit_reached', message: 'limit' } }),
  );
  const r = await runOrder({
    reception: client(),
    item: ITEM,
    sink,
    clock: systemClock,
    resume: { orderId: 'o-old', size: BODY.length, sha256: SHA },
  });
  await sink.close();
  assert.equal(r.kind, 'done');
  if (r.kind !== 'done') return;
  assert.notEqual(r.orderId, 'o-old');
  assert.equal(r.attempts, 2);
  assert.deepEqual(contents.a!.ranges, ['bytes=1000-']);
});

test('busy, then admitted: the wait is counted and the queue token sent back', async () => {
  reset();
  // This reception ignores Prefer: the held try that finds out is answered busy at once.
  const busyAnswer = (res: ServerResponse) =>
    json(
      res,
      503,
      { status: 'busy', position: 1, estimatedWaitSeconds: 1, retryAfterSeconds: 1, queueToken: 'qq' },
      { 'retry-after': '1' },
    );
  reception.orderAnswers.push(busyAnswer, busyAnswer);
  const admitted: boolean[] = [];
  const r = await runOrder({
    reception: client(),
    item: ITEM,
    sink: new DiscardSink(),
    clock: systemClock,
    observer: { admitted: (i) => admitted.push(i.afterWaiting) },
  });
  assert.equal(r.kind, 'done');
  assert.equal(r.busyAnswers, 2);
  assert.ok(r.waitedMs >= 1000);
  assert.equal(r.firstEstimateSeconds, 1);
  assert.deepEqual(admitted, [true]);
  assert.match(reception.requests[1]!, /"queueToken":"qq"/);
});

test('held retries: Prefer: wait on every retry with a token; a held busy answer, then the ticket', async () => {
  reset();
  const busyBody = {
    status: 'busy',
    position: 2,
    estimatedWaitSeconds: 2,
    estimatedWaitRangeSeconds: [1, 4],
    retryAfterSeconds: 1,
    queueToken: 'qh',
  };
  reception.orderAnswers.push(
    (res) => json(res, 503, busyBody, { 'retry-after': '1' }),
    // Held for the whole second it was asked to wait, then busy with Preference-Applied.
    (res) =>
      setTimeout(
        () =>
          json(
            res,
            503,
            { ...busyBody, position: 1 },
            { 'retry-after': '1', 'preference-applied': 'wait=1' },
          ),
        1000,
      ),
  );
  const views: { position: number; held: boolean; range?: [number, number] }[] = [];
  const r = await runOrder({
    reception: client(),
    item: ITEM,
    sink: new DiscardSink(),
    clock: systemClock,
    observer: {
      busy: (v) =>
        views.push({
          position: v.position,
          held: v.heldOpen === true,
          ...(v.estimatedWaitRangeSeconds ? { range: v.estimatedWaitRangeSeconds } : {}),
        }),
    },
  });
  assert.equal(r.kind, 'done');
  assert.deepEqual(reception.prefer, [undefined, 'wait=30', 'wait=30'], 'no hold before a token');
  assert.equal(r.busyAnswers, 2);
  assert.equal(r.heldAnswers, 1);
  assert.deepEqual(r.firstBusy?.estimatedWaitRangeSeconds, [1, 4]);
  assert.deepEqual(views, [
    { position: 2, held: true, range: [1, 4] },
    { position: 1, held: true, range: [1, 4] },
  ]);
});

test('an unknown item is a failure with the reception code', async () => {
  reset();
  reception.orderAnswers.push((res) => json(res, 404, { error: { code: 'unknown_item', message: 'nope' } }));
  const r = await runOrder({ reception: client(), item: ITEM, sink: new DiscardSink(), clock: systemClock });
  assert.equal(r.kind, 'failed');
  if (r.kind === 'failed') assert.equal(r.code, 'unknown_item');
});
