/**
 * The content server's decisions, pure parts: request processing 142 (order of refusals, the
 * capacity guard and its exception for an already-active ticket), the ticket receiver 141 (URL
 * split, every refusal code, malformed paths, policy `open`), the ticket registry (notices,
 * revocations of tickets and orders, expiry at exp/until + skew) and the load report pieces.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildLoadReport, ServiceTimes, ThroughputMeter } from '../../src/content/load-report.js';
import { judgeRequest, retryAfterFrom } from '../../src/content/request-processing.js';
import { buildTicketReceiver } from '../../src/content/ticket-receiver.js';
import { normalizeUntil, TicketRegistry } from '../../src/content/ticket-registry.js';
import type { KeyRing, TicketClaims, TicketPolicy } from '../../src/tickets/index.js';
import { mintTestTicket } from '../helpers/tickets.js';

const ring: KeyRing = [{ id: 'k1', key: new Uint8Array(randomBytes(32)) }];
const NOW = 1_700_000_000_000;
const base = {
  ticket: { ok: true } as const,
  itemFound: true,
  draining: false,
  serving: 0,
  capacity: 2,
  alreadyServing: false,
  ticketTransfers: 0,
  connectionsPerTicket: 8,
  retryAfterSeconds: () => 3,
};

describe('judgeRequest', () => {
  test('serves when everything is in order', () => {
    assert.deepEqual(judgeRequest(base), { serve: true });
  });

  test('refusals come in order: ticket, item, draining, capacity', () => {
    const all = {
      ...base,
      ticket: { ok: false, code: 'expired' } as const,
      itemFound: false,
      draining: true,
      serving: 9,
    };
    assert.deepEqual(judgeRequest(all), { serve: false, code: 'expired', status: 403 });
    assert.deepEqual(judgeRequest({ ...all, ticket: { ok: true } }), {
      serve: false,
      code: 'not_found',
      status: 404,
    });
    assert.deepEqual(judgeRequest({ ...all, ticket: { ok: true }, itemFound: true }), {
      serve: false,
      code: 'draining',
      status: 503,
      retryAfterSeconds: 3,
    });
    assert.deepEqual(judgeRequest({ ...base, serving: 2 }), {
      serve: false,
      code: 'at_capacity',
      status: 503,
      retryAfterSeconds: 3,
    });
    assert.deepEqual(judgeRequest({ ...base, ticket: { ok: false, code: 'revoked' } }), {
      serve: false,
      code: 'revoked',
      status: 410,
    });
  });

  test('a further request of an already-active ticket is not refused at capacity', () => {
    assert.deepEqual(judgeRequest({ ...base, serving: 2, alreadyServing: true, ticketTransfers: 1 }), {
      serve: true,
    });
  });

  test('a ticket at connectionsPerTicket transfers is refused 429 too_many_connections, at capacity or not', () => {
    assert.deepEqual(judgeRequest({ ...base, alreadyServing: true, ticketTransfers: 7 }), { serve: true });
    for (const serving of [1, 2]) {
      assert.deepEqual(judgeRequest({ ...base, serving, alreadyServing: true, ticketTransfers: 8 }), {
        serve: false,
        code: 'too_many_connections',
        status: 429,
        retryAfterSeconds: 3,
      });
    }
  });

  test('retryAfterFrom: median of service times, clamped', () => {
    assert.equal(retryAfterFrom([]), 2);
    assert.equal(retryAfterFrom([100, 2500, 9000]), 3);
    assert.equal(retryAfterFrom([1]), 1);
    assert.equal(retryAfterFrom([600_000], 30), 30);
  });
});

function mint(
  policy: TicketPolicy,
  over: Partial<{ serverId: string; path: string; nowMs: number; client: string }> = {},
) {
  return mintTestTicket(ring, policy, {
    orderId: 'o1',
    serverId: over.serverId ?? 'a',
    path: over.path ?? '/dir/file one.bin',
    client: over.client ?? '127.0.0.1',
    nowMs: over.nowMs ?? NOW,
  });
}

describe('ticket receiver', () => {
  const registry = new TicketRegistry({ clockSkewSeconds: 30 });
  const receiver = (policy: TicketPolicy) =>
    buildTicketReceiver({ serverId: 'a', tickets: { policy, clockSkewSeconds: 30 }, ring, state: registry });
  const url = (token: string, path = '/dir/file%20one.bin') => `/t/${token}${path}`;

  test('admits a valid strict ticket once its notice arrived; query strings are ignored', () => {
    const { token, claims } = mint('strict');
    const r = receiver('strict');
    assert.deepEqual(r.receive(url(token), '127.0.0.1', NOW), {
      kind: 'refused',
      code: 'no_notice',
      itemPath: claims.path,
    });
    registry.addNotices([{ jti: claims.jti, oid: claims.oid, path: claims.path, exp: claims.exp }], NOW);
    assert.deepEqual(r.receive(`${url(token)}?x=1`, '::ffff:127.0.0.1', NOW), {
      kind: 'admitted',
      itemPath: '/dir/file one.bin',
      claims,
    });
  });

  test('every refusal code', () => {
    const r = receiver('strict');
    const code = (u: string, client = '127.0.0.1') => {
      const got = r.receive(u, client, NOW);
      return got.kind === 'refused' ? got.code : got.kind;
    };
    const { token } = mint('strict');
    assert.equal(code(url('garbage')), 'bad_ticket');
    assert.equal(code('/dir/file%20one.bin'), 'bad_ticket', 'no ticket at all');
    assert.equal(code(url(mint('strict', { serverId: 'b' }).token)), 'wrong_server');
    assert.equal(code(url(token, '/other.bin')), 'wrong_path');
    assert.equal(code(url(mint('strict', { nowMs: NOW - 700_000 }).token)), 'expired');
    assert.equal(code(url(mint('strict', { nowMs: NOW + 120_000 }).token)), 'not_yet_valid');
    assert.equal(code(url(token), '127.0.0.2'), 'wrong_client');
    assert.equal(code(url(token)), 'no_notice');
    const t2 = mint('strict');
    registry.addNotices(
      [{ jti: t2.claims.jti, oid: t2.claims.oid, path: t2.claims.path, exp: t2.claims.exp }],
      NOW,
    );
    registry.revokeTicket(t2.claims.jti, t2.claims.exp);
    assert.equal(code(url(t2.token)), 'revoked');
  });

  test('malformed item paths are refused before the ticket is looked at', () => {
    const r = receiver('strict');
    for (const p of ['/../etc/passwd', '/a/%2e%2e/b', '/a%2fb', '/a\\b', '/a%00b', '/']) {
      assert.equal(r.receive(`/t/garbage${p}`, '127.0.0.1', NOW).kind, 'bad_path', p);
    }
    const bare = r.receive('/t/garbage', '127.0.0.1', NOW);
    assert.equal(bare.kind === 'refused' && bare.code, 'bad_ticket', 'no item path after the ticket');
  });

  test('policy open: the URL path is the item path', () => {
    const r = receiver('open');
    assert.deepEqual(r.receive('/dir/file%20one.bin?a', '1.2.3.4', NOW), {
      kind: 'admitted',
      itemPath: '/dir/file one.bin',
      claims: null,
    });
    assert.equal(r.receive('/%2e%2e/x', '1.2.3.4', NOW).kind, 'bad_path');
  });

  test('policy expiring: no notice needed, client not checked', () => {
    const r = receiver('expiring');
    const { token } = mint('expiring');
    assert.equal(r.receive(url(token), '10.9.8.7', NOW).kind, 'admitted');
  });
});

describe('ticket registry', () => {
  const claims = (over: Partial<TicketClaims> = {}): TicketClaims => ({
    jti: 'j1',
    oid: 'o1',
    aud: 'a',
    path: '/x',
    iat: 0,
    nbf: 0,
    exp: NOW / 1000 + 100,
    ...over,
  });

  test('a notice counts only for its own order and item, and goes at exp + skew', () => {
    const reg = new TicketRegistry({ clockSkewSeconds: 30 });
    assert.equal(reg.addNotices([{ jti: 'j1', oid: 'o1', path: '/x', exp: NOW / 1000 + 100 }], NOW), 1);
    assert.equal(reg.addNotices([{ jti: 'old', oid: 'o1', path: '/x', exp: NOW / 1000 - 31 }], NOW), 0);
    assert.equal(reg.hasNotice(claims()), true);
    assert.equal(reg.hasNotice(claims({ oid: 'o2' })), false);
    assert.equal(reg.hasNotice(claims({ path: '/y' })), false);
    assert.equal(reg.sweep(NOW + 129_999), 0);
    assert.equal(reg.sweep(NOW + 130_000), 1);
    assert.equal(reg.hasNotice(claims()), false);
  });

  test('revocations of tickets and of whole orders, forgotten at until + skew', () => {
    const reg = new TicketRegistry({ clockSkewSeconds: 0 });
    const until = NOW / 1000 + 60;
    assert.equal(
      reg.addRevocations(
        [
          { kind: 'order', orderId: 'o9', until },
          { kind: 'ticket', ticketId: 'j5', until },
          { kind: 'ticket', ticketId: 'gone', until: NOW / 1000 - 1 },
        ],
        NOW,
      ),
      3,
    );
    assert.deepEqual(reg.counts(), { notices: 0, revokedTickets: 1, revokedOrders: 1 });
    assert.equal(reg.isRevoked(claims({ oid: 'o9' })), true);
    assert.equal(reg.isRevoked(claims({ jti: 'j5' })), true);
    assert.equal(reg.isRevoked(claims()), false);
    reg.sweep(NOW + 60_000);
    assert.equal(reg.isRevoked(claims({ oid: 'o9' })), false);
  });

  test('until in milliseconds is understood', () => {
    assert.equal(normalizeUntil(1_700_000_000), 1_700_000_000);
    assert.equal(normalizeUntil(1_700_000_000_123), 1_700_000_000);
  });
});

describe('load report', () => {
  test('throughput meter averages over its window and forgets old buckets', () => {
    const m = new ThroughputMeter(5000, 1000);
    for (let t = 0; t < 10_000; t += 100) m.add(500, NOW + t);
    assert.equal(Math.round(m.perSecond(NOW + 9_999) / 100), 50, '5,000 bytes a second, steady');
    assert.equal(m.perSecond(NOW + 60_000), 0);
  });

  test('throughput meter counts only the time since sending began, when that is shorter', () => {
    const m = new ThroughputMeter(5000, 1000);
    m.add(5000, NOW);
    m.add(5000, NOW + 1000);
    // 10,000 bytes over the first second of sending, not over a mostly idle 5 s window.
    assert.equal(Math.round(m.perSecond(NOW + 1000)), 10_000);
    // After an idle window, a new burst starts the count again.
    m.add(3000, NOW + 20_000);
    assert.equal(Math.round(m.perSecond(NOW + 20_500)), 6000);
  });

  test('service times keep the newest, oldest first', () => {
    const s = new ServiceTimes(3);
    assert.deepEqual(s.values(), []);
    s.push(1);
    s.push(2);
    assert.deepEqual(s.values(), [1, 2]);
    for (const t of [3, 4, 5]) s.push(t);
    assert.deepEqual(s.values(), [3, 4, 5]);
    s.push(-1);
    assert.deepEqual(s.values(), [4, 5, 0]);
  });

  test('the catalog is sent only when the poller is behind', () => {
    const facts = {
      serverId: 'a',
      instanceId: 'i1',
      nowMs: NOW,
      transfers: 2,
      activeTickets: ['j1'],
      untrackedActive: 1,
      capacity: 5,
      rssBytes: 1000,
      memoryLimitMb: 1.5,
      bytesPerSecond: 12.4,
      serviceTimesMs: [5],
      draining: false,
      catalogVersion: 'v2',
      catalog: () => [{ path: '/x', size: 1, sha256: 'a'.repeat(64) }],
    };
    const fresh = buildLoadReport(facts, undefined);
    assert.equal(fresh.catalog?.length, 1);
    assert.equal(fresh.memoryLimitBytes, 1572864);
    assert.equal(fresh.bytesPerSecond, 12);
    assert.equal(buildLoadReport(facts, 'v2').catalog, undefined);
    assert.equal(buildLoadReport(facts, 'v1').catalog?.length, 1);
  });
});
