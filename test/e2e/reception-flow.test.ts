/**
 * The reception with three real content servers: ordering by browser and by API and downloading,
 * every bad-input code, mail, revocation, the internal token, a content server killed (removed,
 * its order moved with a fresh ticket), and orders surviving a SIGKILL of the reception (SQLite).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type SmtpListener, startSmtpListener } from '../helpers/smtp.js';
import { waitUntil } from '../helpers/wait.js';
import { type ApiJson, type Cluster, postOrder, rawGet, startCluster } from './reception-cluster.js';

const ITEM = '/apps/editor-2.1.bin';
const BYTES = randomBytes(300_000);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('reception end to end', { timeout: 180_000 }, () => {
  let c: Cluster;
  let smtp: SmtpListener;

  before(async () => {
    smtp = await startSmtpListener();
    c = await startCluster({
      servers: 3,
      items: { [ITEM]: BYTES, '/docs/readme.txt': 'hello\n' },
      reception: {
        trustProxy: ['127.0.0.1'],
        rateLimit: { perSecond: 20, burst: 40 },
        monitor: { intervalMs: 100, timeoutMs: 2000, failuresBeforeDown: 3 },
        mail: { smtp: smtp.url, from: 'downloads@example.com' },
      },
    });
  });

  after(async () => {
    await c?.stop();
    await smtp.close();
  });

  it('sends a browser 303 to a ticket URL that downloads the item', async () => {
    const res = await fetch(`${c.pub}${ITEM}`, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const location = res.headers.get('location')!;
    assert.match(location, /\/t\/[A-Za-z0-9_.-]+\/apps\/editor-2\.1\.bin$/);
    const dl = await fetch(location);
    assert.equal(dl.status, 200);
    assert.equal(sha(Buffer.from(await dl.arrayBuffer())), sha(BYTES));
  });

  it('answers POST /api/orders with 201 and a ticket; the order is fulfilled after the download', async () => {
    const r = await postOrder(c.pub, { item: ITEM });
    assert.equal(r.status, 201);
    assert.equal(r.json.status, 'ticketed');
    assert.ok(['a', 'b', 'c'].includes(r.json.ticket.server));
    assert.ok(!Number.isNaN(Date.parse(r.json.ticket.expiresAt)));
    const dl = await fetch(r.json.ticket.url);
    assert.equal(sha(Buffer.from(await dl.arrayBuffer())), sha(BYTES));
    await waitUntil(
      async () =>
        ((await (await fetch(`${c.pub}/api/orders/${r.json.orderId}`)).json()) as ApiJson).status ===
        'fulfilled',
      30_000,
      'the order to be fulfilled',
    );
    // The end of the download was lost on the client's side: a fresh ticket for the fulfilled
    // order is a 201 that says "ticketed" (CONTRACT §3), not the order's earlier "fulfilled".
    const again = await fetch(`${c.pub}/api/orders/${r.json.orderId}/tickets`, { method: 'POST' });
    const againJson = (await again.json()) as ApiJson;
    assert.equal(again.status, 201, JSON.stringify(againJson));
    assert.equal(againJson.status, 'ticketed');
    assert.equal(againJson.orderId, r.json.orderId);
    assert.ok(againJson.ticket.url);
  });

  it('refuses a fresh ticket 409 ticket_live while the latest ticket is live on a server that is up', async () => {
    const r = await postOrder(c.pub, { item: ITEM });
    assert.equal(r.status, 201);
    const again = await fetch(`${c.pub}/api/orders/${r.json.orderId}/tickets`, { method: 'POST' });
    const body = (await again.json()) as ApiJson;
    assert.equal(again.status, 409, JSON.stringify(body));
    assert.equal(body.error.code, 'ticket_live');
    assert.match(again.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const order = (await (await fetch(`${c.pub}/api/orders/${r.json.orderId}`)).json()) as ApiJson;
    assert.equal(order.tickets.length, 1, 'no second ticket was issued');
    // The live ticket still downloads (and frees its slot for the tests after this one).
    const dl = await fetch(r.json.ticket.url);
    assert.equal(sha(Buffer.from(await dl.arrayBuffer())), sha(BYTES));
  });

  it('answers an unknown item 404 and each kind of bad input with its code', async () => {
    const unknown = await fetch(`${c.pub}/no/such/item.bin`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('cache-control'), 'no-store');
    assert.equal(((await unknown.json()) as ApiJson).error.code, 'unknown_item');

    for (const path of [
      '/apps/../etc/passwd',
      '/apps/%2e%2e/%2e%2e/etc/passwd',
      '/apps/..%2f..%2fetc/passwd',
      '/x%00.bin',
      '/apps%5c..%5cx',
      '/apps\\..\\x',
      '/%zz',
    ]) {
      const res = await rawGet(c.pub, path);
      assert.ok(res.status === 400 || res.status === 404, `${path} → ${res.status}`);
      assert.match(JSON.parse(res.body).error.code, /^[a-z_]+$/, path);
    }

    const post = (body: string, type?: string) =>
      fetch(`${c.pub}/api/orders`, { method: 'POST', body, headers: type ? { 'content-type': type } : {} });
    const big = await post(JSON.stringify({ item: ITEM, pad: 'x'.repeat(20_000) }), 'application/json');
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as ApiJson).error.code, 'body_too_large');
    const text = await post('item=/x', 'text/plain');
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as ApiJson).error.code, 'unsupported_media_type');
    const badJson = await post('{"item":', 'application/json');
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as ApiJson).error.code, 'bad_request');
    const badPath = await post(JSON.stringify({ item: '/apps/../../etc/passwd' }), 'application/json');
    assert.equal(badPath.status, 400);

    // 429: one client (by X-Forwarded-For, 127.0.0.1 is a trusted proxy) far over its burst (40),
    // all at once so that refilling (20/s) cannot keep up however slow this machine is.
    const answers = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await fetch(`${c.pub}/api/orders/none`, {
          headers: { 'x-forwarded-for': '198.51.100.7' },
        });
        return {
          status: res.status,
          retryAfter: res.headers.get('retry-after'),
          json: (await res.json()) as ApiJson,
        };
      }),
    );
    const limited = answers.find((a) => a.status === 429);
    assert.ok(
      answers.some((a) => a.status === 404) && limited,
      `statuses ${answers.map((a) => a.status).join(',')}`,
    );
    assert.equal(limited.json.error.code, 'rate_limited');
    assert.ok(Number(limited.retryAfter) >= 1);
    // Another client is not affected.
    const other = await fetch(`${c.pub}/api/orders/none`, { headers: { 'x-forwarded-for': '198.51.100.8' } });
    assert.equal(other.status, 404);
  });

  it('mails the ticket link when an e-mail address is given', async () => {
    const r = await postOrder(c.pub, { item: '/docs/readme.txt', email: 'buyer@example.com' });
    assert.equal(r.status, 201);
    await waitUntil(() => smtp.mails.some((m) => m.to.includes('buyer@example.com')), 30_000, 'the mail');
    const mail = smtp.mails.find((m) => m.to.includes('buyer@example.com'))!;
    // Quoted-printable wraps long lines with "=" soft breaks and encodes "=" itself.
    const text = mail.body.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
    assert.ok(text.includes(r.json.ticket.url), 'the mail carries the ticket URL');
    assert.ok(text.includes(r.json.orderId));
  });

  it('revokes an order through the internal API; its ticket then gets 410', async () => {
    const r = await postOrder(c.pub, { item: '/docs/readme.txt' });
    assert.equal(r.status, 201);
    const url = `${c.internal}/orders/${r.json.orderId}/revoke`;
    assert.equal((await fetch(url, { method: 'POST' })).status, 401);
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${c.token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { orderId: string; revokedTickets: number };
    assert.equal(body.orderId, r.json.orderId);
    assert.equal(body.revokedTickets, 1);
    const dl = await fetch(r.json.ticket.url);
    assert.equal(dl.status, 410);
    const unknown = await fetch(`${c.internal}/orders/nope/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${c.token}` },
    });
    assert.equal(unknown.status, 404);
  });

  it('refuses internal calls without the bearer token', async () => {
    for (const [method, path] of [
      ['POST', '/events'],
      ['OPTIONS', '/events'],
      ['POST', '/orders/x/revoke'],
      ['DELETE', '/whatever'],
    ]) {
      const res = await fetch(`${c.internal}${path}`, {
        method,
        headers: { authorization: 'Bearer wrong-token' },
      });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(((await res.json()) as ApiJson).error.code, 'unauthorized');
    }
    assert.equal((await fetch(`${c.internal}/metrics`)).status, 200);
  });

  it('removes a killed content server within its failure window and moves its order with a fresh ticket', async () => {
    const r = await postOrder(c.pub, { item: ITEM });
    assert.equal(r.status, 201);
    const dead = r.json.ticket.server as string;
    await c.content.get(dead)!.kill('SIGKILL');
    // A killed server refuses connections at once: down after failuresBeforeDown polls (~0.3 s);
    // the deadline only guards against a hang.
    await waitUntil(
      async () => (await c.status()).find((s) => s.id === dead)?.health === 'down',
      30_000,
      `${dead} down`,
    );
    for (let i = 0; i < 6; i++) {
      const o = await postOrder(c.pub, { item: '/docs/readme.txt' });
      assert.equal(o.status, 201);
      assert.notEqual(o.json.ticket.server, dead);
    }
    const fresh = await fetch(`${c.pub}/api/orders/${r.json.orderId}/tickets`, { method: 'POST' });
    assert.equal(fresh.status, 201);
    const ticket = ((await fresh.json()) as ApiJson).ticket;
    assert.notEqual(ticket.server, dead);
    const dl = await fetch(ticket.url);
    assert.equal(sha(Buffer.from(await dl.arrayBuffer())), sha(BYTES));
    const order = (await (await fetch(`${c.pub}/api/orders/${r.json.orderId}`)).json()) as ApiJson;
    assert.equal(order.tickets.length, 2);
  });

  it('keeps every order through a SIGKILL of the reception and a restart', async () => {
    const before = await postOrder(c.pub, { item: '/docs/readme.txt' }, { 'idempotency-key': 'restart-1' });
    assert.equal(before.status, 201);
    await c.reception.kill('SIGKILL');
    await c.startReception();
    const res = await fetch(`${c.pub}/api/orders/${before.json.orderId}`);
    assert.equal(res.status, 200);
    const order = (await res.json()) as ApiJson;
    assert.equal(order.item, '/docs/readme.txt');
    assert.equal(order.tickets[0]?.id, before.json.ticket.id);
    const again = await postOrder(c.pub, { item: '/docs/readme.txt' }, { 'idempotency-key': 'restart-1' });
    assert.equal(again.status, 200);
    assert.equal(again.json.orderId, before.json.orderId);
    // The ticket issued before the crash still downloads (its notice reached the content server).
    const dl = await fetch(before.json.ticket.url);
    assert.equal(await dl.text(), 'hello\n');
  });
});
