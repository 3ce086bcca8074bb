/**
 * Purchase grants (CONTRACT §7) through the real reception — order desk, gate, verifier, acceptor,
 * memory store — driven with `inject()`, a fake clock and fake content servers. Grants are made by
 * `jose` here and, for HS256, by `node:crypto` alone (interop).
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { parseConfig } from '../../src/config/load.js';
import type { LoadReport, Revocation } from '../../src/protocol/internal.js';
import { buildReception, type Reception } from '../../src/reception/app.js';
import type { InternalClient } from '../../src/reception/internal-client.js';
import type { Mailer } from '../../src/reception/mailer.js';
import { createMemoryStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';

const SHA = 'ab'.repeat(32);
const SHOP = 'https://shop.example.com';
const HS_SHOP = 'https://hs.example.com';
const T0 = 1_700_000_000_000;

function fakeNetwork(capacity: number) {
  const revocations: Revocation[] = [];
  const items = { '/free.bin': 10, '/paid/game.bin': 100, '/paid/dlc.bin': 5 };
  const client: InternalClient = {
    async load(serverId, catalogSince): Promise<LoadReport> {
      const version = 'v1';
      return {
        serverId,
        at: Date.now(),
        active: 0,
        activeTickets: [],
        untrackedActive: 0,
        capacity,
        rssBytes: 1,
        memoryLimitBytes: null,
        bytesPerSecond: 0,
        serviceTimesMs: [],
        draining: false,
        catalogVersion: version,
        ...(catalogSince === version
          ? {}
          : { catalog: Object.entries(items).map(([p, size]) => ({ path: p, size, sha256: SHA })) }),
      };
    },
    async notices() {},
    async revocations(_serverId, r) {
      revocations.push(...r);
    },
    async close() {},
  };
  return { client, revocations };
}

interface Shop {
  dir: string;
  jwksFile: string;
  hsSecret: string;
  keys: {
    kid: string;
    priv: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
    pub: JWK;
    alg: string;
  }[];
}

async function newShop(): Promise<Shop> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-grants-'));
  const ed = await generateKeyPair('EdDSA', { extractable: true });
  const es = await generateKeyPair('ES256', { extractable: true });
  const rs = await generateKeyPair('RS256', { extractable: true });
  const keys = [
    { kid: 'ed1', priv: ed.privateKey, pub: await exportJWK(ed.publicKey), alg: 'EdDSA' },
    { kid: 'es1', priv: es.privateKey, pub: await exportJWK(es.publicKey), alg: 'ES256' },
    { kid: 'rs1', priv: rs.privateKey, pub: await exportJWK(rs.publicKey), alg: 'RS256' },
  ];
  const jwksFile = path.join(dir, 'shop-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: keys.map((k) => ({ ...k.pub, kid: k.kid })) }));
  return { dir, jwksFile, hsSecret: randomBytes(32).toString('base64url'), keys };
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup) await c();
  cleanup = [];
});

async function harness(shop: Shop, opts: { mail?: boolean; capacity?: number } = {}) {
  const capacity = opts.capacity ?? 10;
  const internalToken = randomBytes(18).toString('base64url');
  const config = parseConfig({
    secrets: { ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }], internalToken },
    reception: {
      listen: '127.0.0.1:0',
      internalListen: '127.0.0.1:0',
      publicUrl: 'http://rushgate.test',
      store: 'memory:',
      rateLimit: null,
      tickets: { clockSkewSeconds: 30 },
      grants: {
        required: ['/paid/**'],
        issuers: [
          { iss: SHOP, jwks: shop.jwksFile },
          { iss: HS_SHOP, secret: shop.hsSecret },
        ],
      },
      ...(opts.mail ? { mail: { smtp: 'smtp://127.0.0.1:1', from: 'downloads@example.com' } } : {}),
    },
    contentServers: [
      {
        id: 'a',
        publicUrl: 'http://content-a.test',
        internalUrl: 'http://127.0.0.1:9100',
        listen: '127.0.0.1:8100',
        internalListen: '127.0.0.1:9100',
        capacity,
      },
    ],
  });
  const net = fakeNetwork(capacity);
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const mails: { to: string; url: string }[] = [];
  const mailer: Mailer = {
    stats: { sent: 0, failed: 0 },
    async sendTicketLink(m) {
      mails.push({ to: m.to, url: m.url });
    },
    close() {},
  };
  const reception: Reception = buildReception({
    config,
    store: createMemoryStore(),
    logger: silentLogger,
    mailer,
    clock,
    random: () => 0.5,
    client: net.client,
  });
  cleanup.push(async () => {
    await reception.stop();
  });
  await reception.monitor.pollAll();
  let eventN = 0;
  return {
    reception,
    net,
    clock,
    mails,
    async order(body: Record<string, unknown>, headers: Record<string, string> = {}) {
      const res = await reception.publicApp.inject({
        method: 'POST',
        url: '/api/orders',
        headers: { 'content-type': 'application/json', ...headers },
        payload: JSON.stringify(body),
      });
      return { status: res.statusCode, json: res.json(), headers: res.headers };
    },
    async fulfil(ticket: { id: string }, orderId: string, item: string) {
      const res = await reception.internalApp.inject({
        method: 'POST',
        url: '/events',
        headers: { authorization: `Bearer ${internalToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify({
          serverId: 'a',
          events: [
            {
              id: `e${++eventN}`,
              type: 'fulfilled',
              jti: ticket.id,
              oid: orderId,
              path: item,
              at: clock.t,
              delivered: 100,
              size: 100,
            },
          ],
        }),
      });
      assert.equal(res.statusCode, 200, res.body);
    },
    async revoke(body: unknown, token = internalToken) {
      const res = await reception.internalApp.inject({
        method: 'POST',
        url: '/grants/revocations',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      });
      return { status: res.statusCode, json: res.json() };
    },
  };
}

async function grant(
  shop: Shop,
  claims: Record<string, unknown> = {},
  opts: { kid?: string; expIn?: number; nowMs?: number } = {},
): Promise<string> {
  const kid = opts.kid ?? 'ed1';
  const key = shop.keys.find((k) => k.kid === kid) ?? shop.keys[0]!;
  const iat = Math.floor((opts.nowMs ?? T0) / 1000);
  return new SignJWT({ items: ['/paid/game.bin'], ...claims })
    .setProtectedHeader({ alg: key.alg, kid })
    .setIssuer(SHOP)
    .setSubject((claims.sub as string | undefined) ?? 'purchase-1')
    .setIssuedAt(iat)
    .setExpirationTime(iat + (opts.expIn ?? 3600))
    .sign(key.priv);
}

/** HS256 by hand, with node:crypto only: what a shop without a JOSE library does. */
function hs256(
  secret: string,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT', ...header })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const code = (r: { json: { error?: { code: string } } }) => r.json.error?.code;

describe('purchase grants (CONTRACT §7)', () => {
  it('a free item needs no grant; a paid one is 401 grant_required without, 201 with (EdDSA, ES256, RS256)', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    assert.equal((await h.order({ item: '/free.bin' })).status, 201);
    const none = await h.order({ item: '/paid/game.bin' });
    assert.equal(none.status, 401);
    assert.equal(code(none), 'grant_required');
    for (const [i, kid] of ['ed1', 'es1', 'rs1'].entries()) {
      const r = await h.order({
        item: '/paid/game.bin',
        grant: await grant(shop, { sub: `p${i}` }, { kid }),
      });
      assert.equal(r.status, 201, `${kid}: ${JSON.stringify(r.json)}`);
      const order = await h.reception.desk.getOrder(r.json.orderId);
      assert.deepEqual(order?.purchase, { iss: SHOP, sub: `p${i}` });
    }
    // Authorization: Bearer carries it as well.
    const bearer = await h.order(
      { item: '/paid/game.bin' },
      { authorization: `Bearer ${await grant(shop, { sub: 'p-bearer' })}` },
    );
    assert.equal(bearer.status, 201);
  });

  it('refuses alg none, alg confusion, a wrong kid, a bad signature, an unknown iss and garbage as 403 bad_grant', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const good = await grant(shop);
    const [head, body] = good.split('.');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const rsPub = shop.keys.find((k) => k.kid === 'rs1')!.pub;
    const edPub = shop.keys.find((k) => k.kid === 'ed1')!.pub;
    const bad: [string, string][] = [
      ['alg none', `${b64({ alg: 'none', kid: 'ed1' })}.${body}.`],
      ['alg none, no kid', `${b64({ alg: 'none' })}.${body}.`],
      // The RSA public key (as its JWK text, its n, or PEM-like bytes) used as an HMAC secret.
      ['HS256 with the RSA key as secret', hs256(JSON.stringify(rsPub), claims, { kid: 'rs1' })],
      ['HS256 with the RSA modulus', hs256(rsPub.n!, claims, { kid: 'rs1' })],
      ['HS256 with the Ed25519 x', hs256(edPub.x!, claims, { kid: 'ed1' })],
      ['RS256 header on the EdDSA key', `${b64({ alg: 'RS256', kid: 'ed1' })}.${body}.${good.split('.')[2]}`],
      ['wrong kid', await grant(shop, {}, { kid: 'nope' })],
      ['bad signature', `${head}.${b64({ ...claims, items: '**' })}.${good.split('.')[2]}`],
      ['unknown iss', hs256(shop.hsSecret, { ...claims, iss: 'https://evil.example.com' })],
      ['garbage', 'not-a-jwt'],
      ['three dots of nothing', '..'],
      ['bad base64 header', `!!!.${body}.x`],
      ['header not JSON', `${Buffer.from('{').toString('base64url')}.${body}.x`],
      ['claims not JSON', `${head}.${Buffer.from('[').toString('base64url')}.x`],
      ['crit header', `${b64({ alg: 'EdDSA', kid: 'ed1', crit: ['x'], x: 1 })}.${body}.x`],
      ['huge', `${head}.${'A'.repeat(9000)}.x`],
    ];
    for (const [what, token] of bad) {
      const r = await h.order({ item: '/paid/game.bin', grant: token.slice(0, 8192) });
      assert.equal(r.status, 403, `${what}: ${r.status} ${JSON.stringify(r.json)}`);
      assert.equal(code(r), 'bad_grant', what);
    }
    // A grant sent for a free item is checked all the same.
    assert.equal(code(await h.order({ item: '/free.bin', grant: 'not-a-jwt' })), 'bad_grant');
    // The same good grant still works after all that.
    assert.equal((await h.order({ item: '/paid/game.bin', grant: good })).status, 201);
  });

  it('checks exp with clockSkewSeconds: 30 s past exp holds, 31 s does not; nbf likewise', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const g = await grant(shop, { sub: 'skew' }, { expIn: 60 });
    h.clock.t = T0 + (60 + 31) * 1000;
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: g })), 'bad_grant');
    h.clock.t = T0 + (60 + 29) * 1000;
    assert.equal((await h.order({ item: '/paid/game.bin', grant: g })).status, 201);
    // Verified once and cached: the cache must not outlive exp + skew either.
    h.clock.t = T0 + (60 + 31) * 1000;
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: g })), 'bad_grant');
    h.clock.t = T0;
    const early = await grant(shop, { sub: 'nbf', nbf: Math.floor(T0 / 1000) + 60 });
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: early })), 'bad_grant');
    h.clock.t = T0 + 31_000;
    assert.equal((await h.order({ item: '/paid/game.bin', grant: early })).status, 201);
  });

  it('403 grant_item for an item the grant does not list; "**" lists all', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const r = await h.order({ item: '/paid/dlc.bin', grant: await grant(shop) });
    assert.equal(r.status, 403);
    assert.equal(code(r), 'grant_item');
    const all = await grant(shop, { sub: 'all', items: '**' });
    assert.equal((await h.order({ item: '/paid/dlc.bin', grant: all })).status, 201);
  });

  it('one order per grant and item; a fulfilled order makes room for the next up to max, then 409 grant_used', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const g = await grant(shop, { sub: 'twice', max: 2 });
    const first = await h.order({ item: '/paid/game.bin', grant: g });
    assert.equal(first.status, 201);
    const again = await h.order({ item: '/paid/game.bin', grant: g });
    assert.equal(again.status, 200);
    assert.equal(again.json.orderId, first.json.orderId);
    assert.equal(again.json.ticket.id, first.json.ticket.id);
    await h.fulfil(first.json.ticket, first.json.orderId, '/paid/game.bin');
    const second = await h.order({ item: '/paid/game.bin', grant: g });
    assert.equal(second.status, 201);
    assert.notEqual(second.json.orderId, first.json.orderId);
    await h.fulfil(second.json.ticket, second.json.orderId, '/paid/game.bin');
    const third = await h.order({ item: '/paid/game.bin', grant: g });
    assert.equal(third.status, 409);
    assert.equal(code(third), 'grant_used');
    // max defaults to 1.
    const once = await grant(shop, { sub: 'once' });
    const o = await h.order({ item: '/paid/game.bin', grant: once });
    await h.fulfil(o.json.ticket, o.json.orderId, '/paid/game.bin');
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: once })), 'grant_used');
  });

  it('a refund revokes every order of the purchase on the content servers, then refuses its grants', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const g = await grant(shop, { sub: 'refund-me', items: '**' });
    const a = await h.order({ item: '/paid/game.bin', grant: g });
    const b = await h.order({ item: '/paid/dlc.bin', grant: g });
    const other = await h.order({ item: '/paid/game.bin', grant: await grant(shop, { sub: 'keeper' }) });
    assert.equal((await h.revoke({ iss: SHOP, sub: 'refund-me' }, 'wrong-token-wrong-token')).status, 401);
    assert.equal((await h.revoke({ iss: SHOP })).status, 400);
    const r = await h.revoke({ iss: SHOP, sub: 'refund-me' });
    assert.equal(r.status, 200);
    assert.deepEqual([...r.json.orders].sort(), [a.json.orderId, b.json.orderId].sort());
    assert.equal(r.json.revokedTickets, 2);
    const revokedOrders = h.net.revocations.map((x) => (x.kind === 'order' ? x.orderId : '')).sort();
    assert.deepEqual(revokedOrders, [a.json.orderId, b.json.orderId].sort());
    assert.ok(!revokedOrders.includes(other.json.orderId));
    for (const id of [a.json.orderId, b.json.orderId]) {
      const fresh = await h.reception.publicApp.inject({ method: 'POST', url: `/api/orders/${id}/tickets` });
      assert.equal(fresh.statusCode, 409, 'no fresh ticket for a refunded order');
      assert.equal(fresh.json().error.code, 'order_closed');
    }
    const after = await h.order({ item: '/paid/game.bin', grant: g });
    assert.equal(after.status, 403);
    assert.equal(code(after), 'bad_grant');
    // A fresh grant of the same purchase is refused too; another purchase is not.
    assert.equal(
      code(
        await h.order({ item: '/paid/dlc.bin', grant: await grant(shop, { sub: 'refund-me', items: '**' }) }),
      ),
      'bad_grant',
    );
    assert.equal(
      (await h.order({ item: '/paid/game.bin', grant: await grant(shop, { sub: 'keeper' }) })).status,
      200,
    );
  });

  it("mails the ticket link to the grant's email", async () => {
    const shop = await newShop();
    const h = await harness(shop, { mail: true });
    const r = await h.order({
      item: '/paid/game.bin',
      grant: await grant(shop, { email: 'buyer@example.com' }),
    });
    assert.equal(r.status, 201);
    assert.deepEqual(h.mails, [{ to: 'buyer@example.com', url: r.json.ticket.url }]);
  });

  it('picks up a rotated JWK Set without a restart', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const next = await generateKeyPair('EdDSA', { extractable: true });
    const rotated = new SignJWT({ items: ['/paid/game.bin'] })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'ed2' })
      .setIssuer(SHOP)
      .setSubject('rotated')
      .setIssuedAt(Math.floor(T0 / 1000))
      .setExpirationTime(Math.floor(T0 / 1000) + 3600);
    const token = await rotated.sign(next.privateKey);
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: token })), 'bad_grant');
    writeFileSync(
      shop.jwksFile,
      JSON.stringify({ keys: [{ ...(await exportJWK(next.publicKey)), kid: 'ed2' }] }),
    );
    h.clock.t += 1000;
    assert.equal((await h.order({ item: '/paid/game.bin', grant: token })).status, 201);
    // The old key is gone from the set: its grants are refused now.
    assert.equal(
      code(await h.order({ item: '/paid/game.bin', grant: await grant(shop, { sub: 'old' }) })),
      'bad_grant',
    );
    rmSync(shop.dir, { recursive: true, force: true });
  });

  it('accepts HS256 grants made with node:crypto alone, and refuses other algs for a secret issuer', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const iat = Math.floor(T0 / 1000);
    const claims = { iss: HS_SHOP, sub: 'hs-1', items: ['/paid/game.bin'], iat, exp: iat + 600 };
    const r = await h.order({ item: '/paid/game.bin', grant: hs256(shop.hsSecret, claims) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(
      code(
        await h.order({ item: '/paid/game.bin', grant: hs256('x'.repeat(32), { ...claims, sub: 'hs-2' }) }),
      ),
      'bad_grant',
    );
    const hs512 = await new SignJWT({ items: ['/paid/game.bin'] })
      .setProtectedHeader({ alg: 'HS512' })
      .setIssuer(HS_SHOP)
      .setSubject('hs-3')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 600)
      .sign(new TextEncoder().encode(shop.hsSecret));
    assert.equal(code(await h.order({ item: '/paid/game.bin', grant: hs512 })), 'bad_grant');
  });

  it('browser: GET /item?grant= answers 303 to a Location without the grant, with Referrer-Policy: no-referrer', async () => {
    const shop = await newShop();
    const h = await harness(shop);
    const g = await grant(shop, { sub: 'browser' });
    const refused = await h.reception.publicApp.inject({
      url: '/paid/game.bin',
      headers: { accept: 'text/html' },
    });
    assert.equal(refused.statusCode, 401);
    const res = await h.reception.publicApp.inject({
      url: `/paid/game.bin?grant=${g}`,
      headers: { accept: 'text/html' },
    });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    const location = String(res.headers.location);
    assert.ok(!location.includes(g) && !location.includes('grant'), location);
    const bad = await h.reception.publicApp.inject({ url: '/paid/game.bin?grant=nope' });
    assert.equal(bad.statusCode, 403);
  });

  it('browser: a waiting buyer keeps the grant in a cookie for the item path, never in the page or the retry URL', async () => {
    const shop = await newShop();
    const h = await harness(shop, { capacity: 1 });
    const first = await h.order({ item: '/paid/game.bin', grant: await grant(shop, { sub: 'first' }) });
    assert.equal(first.status, 201);
    const g = await grant(shop, { sub: 'waiter' });
    const waiting = await h.reception.publicApp.inject({
      url: `/paid/game.bin?grant=${g}`,
      headers: { accept: 'text/html' },
    });
    assert.equal(waiting.statusCode, 503);
    assert.equal(waiting.headers['referrer-policy'], 'no-referrer');
    assert.ok(!waiting.body.includes(g), 'the waiting page does not carry the grant');
    const cookies = ([] as string[]).concat(waiting.headers['set-cookie'] as string | string[]);
    const grantCookie = cookies.find((c) => c.startsWith('rushgate_grant_'));
    const queueCookie = cookies.find((c) => c.startsWith('rushgate_queue='));
    assert.ok(grantCookie && queueCookie, cookies.join(' | '));
    assert.match(grantCookie, /Path=\/;/);
    assert.match(grantCookie, /HttpOnly/);
    const jar = [grantCookie, queueCookie].map((c) => c.split(';')[0]).join('; ');
    // The page's retry is the bare item URL; the cookie alone carries the grant. Still busy: 503.
    const retry = await h.reception.publicApp.inject({ url: '/paid/game.bin', headers: { cookie: jar } });
    assert.equal(retry.statusCode, 503);
    await h.fulfil(first.json.ticket, first.json.orderId, '/paid/game.bin');
    const admitted = await h.reception.publicApp.inject({ url: '/paid/game.bin', headers: { cookie: jar } });
    assert.equal(admitted.statusCode, 303, admitted.body);
    assert.ok(!String(admitted.headers.location).includes('grant'));
    const cleared = ([] as string[]).concat(admitted.headers['set-cookie'] as string | string[]);
    assert.ok(
      cleared.some((c) => c.startsWith(`${grantCookie.split('=')[0]}=;`) && c.includes('Max-Age=0')),
      cleared.join(' | '),
    );
    // The cookie is for this item only: a free item ordered with it in the jar is not refused
    // (busy: the one slot is taken by the admitted buyer), and no grant is checked for it.
    const other = await h.reception.publicApp.inject({ url: '/free.bin', headers: { cookie: jar } });
    assert.equal(other.statusCode, 503, other.body);
    assert.equal(other.json().status, 'busy');
    // Without the cookie (and without ?grant=) the paid item is refused.
    const bare = await h.reception.publicApp.inject({ url: '/paid/game.bin' });
    assert.equal(bare.statusCode, 401);
  });
});
