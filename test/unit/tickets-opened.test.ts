/**
 * The memory of opened tickets (src/tickets/opened-tickets.ts) and the ticket receiver that uses
 * it: a remembered ticket is still judged on every request — expired, revoked, wrong client, no
 * notice are refused even when its claims come from memory — and the memory is bounded, keeps
 * only tokens that opened, and forgets the least recently used first.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildTicketReceiver } from '../../src/content/ticket-receiver.js';
import { TicketRegistry } from '../../src/content/ticket-registry.js';
import { type KeyRing, OpenedTickets, type TicketPolicy } from '../../src/tickets/index.js';
import { mintTestTicket } from '../helpers/tickets.js';

const ring: KeyRing = [{ id: 'k1', key: new Uint8Array(randomBytes(32)) }];
const NOW = 1_700_000_000_000;
const PATH = '/dir/file.bin';

function mint(policy: TicketPolicy, over: { orderId?: string; client?: string } = {}) {
  return mintTestTicket(ring, policy, {
    orderId: over.orderId ?? 'o1',
    serverId: 'a',
    path: PATH,
    client: over.client ?? '203.0.113.7',
    nowMs: NOW,
  });
}

describe('OpenedTickets', () => {
  test('a hit gives the very claims the first opening gave, frozen', () => {
    const { token, claims } = mint('strict');
    const opened = new OpenedTickets(ring);
    const first = opened.open(token);
    assert.deepEqual(first, claims);
    assert.ok(Object.isFrozen(first));
    assert.equal(opened.open(token), first);
    assert.equal(opened.size, 1);
  });

  test('tokens that do not open are refused and never kept', () => {
    const { token } = mint('strict');
    const opened = new OpenedTickets(ring);
    const last = token.at(-1) === 'A' ? 'Q' : 'A';
    assert.equal(opened.open(`${token.slice(0, -1)}${last}`), null);
    assert.equal(opened.open('not-a-ticket'), null);
    const foreign = new OpenedTickets([{ id: 'k1', key: new Uint8Array(randomBytes(32)) }]);
    assert.equal(foreign.open(token), null);
    assert.equal(opened.size, 0);
    assert.equal(foreign.size, 0);
  });

  test('bounded: past capacity the least recently used ticket is forgotten', () => {
    const opened = new OpenedTickets(ring, 2);
    const [a, b, c] = [mint('expiring'), mint('expiring'), mint('expiring')];
    const firstA = opened.open(a.token);
    const firstB = opened.open(b.token);
    // Using a again makes b the least recent.
    assert.equal(opened.open(a.token), firstA);
    opened.open(c.token);
    assert.equal(opened.size, 2);
    assert.equal(opened.open(a.token), firstA, 'a was used recently and stays');
    const againB = opened.open(b.token);
    assert.deepEqual(againB, b.claims);
    assert.notEqual(againB, firstB, 'b was forgotten and opened anew');
    assert.equal(opened.size, 2);
    for (let i = 0; i < 50; i++) opened.open(mint('expiring').token);
    assert.equal(opened.size, 2);
  });

  test('capacity must be a positive integer', () => {
    assert.throws(() => new OpenedTickets(ring, 0), RangeError);
    assert.throws(() => new OpenedTickets(ring, 1.5), RangeError);
  });
});

describe('ticket receiver: a remembered ticket is judged on every request', () => {
  const url = (token: string) => `/t/${token}${PATH}`;
  const setup = () => {
    const registry = new TicketRegistry({ clockSkewSeconds: 0 });
    const receiver = buildTicketReceiver({
      serverId: 'a',
      tickets: { policy: 'strict', clockSkewSeconds: 0 },
      ring,
      state: registry,
    });
    return { registry, receiver };
  };
  const admittedOnce = (policy: TicketPolicy = 'strict') => {
    const s = setup();
    const t = mint(policy);
    s.registry.addNotices([{ jti: t.claims.jti, oid: t.claims.oid, path: PATH, exp: t.claims.exp }], NOW);
    assert.equal(s.receiver.receive(url(t.token), '203.0.113.7', NOW).kind, 'admitted');
    return { ...s, ...t };
  };
  const codeOf = (r: ReturnType<ReturnType<typeof setup>['receiver']['receive']>) =>
    r.kind === 'refused' ? r.code : r.kind;

  test('expired once the clock passes exp', () => {
    const { receiver, token, claims } = admittedOnce();
    assert.equal(codeOf(receiver.receive(url(token), '203.0.113.7', claims.exp * 1000 - 1)), 'admitted');
    assert.equal(codeOf(receiver.receive(url(token), '203.0.113.7', claims.exp * 1000)), 'expired');
  });

  test('not yet valid before nbf, even after it was admitted later', () => {
    const { receiver, token, claims } = admittedOnce();
    assert.equal(
      codeOf(receiver.receive(url(token), '203.0.113.7', (claims.nbf - 1) * 1000)),
      'not_yet_valid',
    );
  });

  test('revoked: the ticket, or its order', () => {
    const one = admittedOnce();
    one.registry.addRevocations([{ kind: 'ticket', ticketId: one.claims.jti, until: one.claims.exp }], NOW);
    assert.equal(codeOf(one.receiver.receive(url(one.token), '203.0.113.7', NOW)), 'revoked');
    const order = admittedOnce();
    order.registry.addRevocations(
      [{ kind: 'order', orderId: order.claims.oid, until: order.claims.exp }],
      NOW,
    );
    assert.equal(codeOf(order.receiver.receive(url(order.token), '203.0.113.7', NOW)), 'revoked');
    const local = admittedOnce();
    local.registry.revokeTicket(local.claims.jti, local.claims.exp);
    assert.equal(codeOf(local.receiver.receive(url(local.token), '203.0.113.7', NOW)), 'revoked');
  });

  test('wrong client from another address', () => {
    const { receiver, token } = admittedOnce();
    assert.equal(codeOf(receiver.receive(url(token), '198.51.100.1', NOW)), 'wrong_client');
    assert.equal(codeOf(receiver.receive(url(token), '::ffff:203.0.113.7', NOW)), 'admitted');
  });

  test('no notice: a notice forgotten (swept) refuses the remembered ticket', () => {
    const { receiver, registry, token, claims } = admittedOnce();
    registry.sweep(claims.exp * 1000 + 1);
    assert.equal(codeOf(receiver.receive(url(token), '203.0.113.7', NOW)), 'no_notice');
  });

  test('wrong path and wrong server are judged per request too', () => {
    const { receiver, token } = admittedOnce();
    assert.equal(codeOf(receiver.receive(`/t/${token}/dir/other.bin`, '203.0.113.7', NOW)), 'wrong_path');
    const other = buildTicketReceiver({
      serverId: 'b',
      tickets: { policy: 'expiring', clockSkewSeconds: 0 },
      ring,
      state: new TicketRegistry({ clockSkewSeconds: 0 }),
    });
    assert.equal(codeOf(other.receive(url(token), '203.0.113.7', NOW)), 'wrong_server');
  });
});
