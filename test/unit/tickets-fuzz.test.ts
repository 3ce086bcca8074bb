/**
 * Property-based tampering of tickets (fast-check): whatever a client does to a valid ticket —
 * flip bits anywhere, truncate, extend, reorder or re-encode segments, graft in parts or the
 * header of other tickets, or send random strings — the content server answers `bad_ticket` and
 * never throws. Well over 100,000 mutated tokens in a few seconds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  issueTicket,
  type KeyRing,
  type RequestFacts,
  type TicketKey,
  type TicketState,
  type VerifySettings,
  verifyTicket,
} from '../../src/tickets/index.js';

const k1: TicketKey = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
const k2: TicketKey = { id: 'k2', key: new Uint8Array(randomBytes(32)) };
const ring: KeyRing = [k1, k2];
const T0 = 1_700_000_000;
const PATH = '/apps/editor-2.1.dmg';

// Every check past decryption passes for these facts, so bad_ticket is the only possible refusal
// and anything else would mean a tampered token got through decryption.
const facts: RequestFacts = {
  serverId: 'a',
  path: PATH,
  clientAddress: '203.0.113.7',
  nowMs: (T0 + 1) * 1000,
};
const settings: VerifySettings = { policy: 'strict', clockSkewSeconds: 30, ring };
const state: TicketState = { hasNotice: () => true, isRevoked: () => false };

function mint(key: TicketKey, i: number): string {
  return issueTicket(
    {
      ticketId: `t${i}`,
      orderId: `o${i}`,
      serverId: 'a',
      path: PATH,
      clientAddress: '203.0.113.7',
      nowMs: T0 * 1000,
    },
    {
      policy: 'strict',
      ttlSeconds: 600,
      startDelaySeconds: 0,
      bindClientAddress: true,
      bindPrefix: { ipv4: 32, ipv6: 64 },
    },
    [key],
  ).token;
}

const pool = [
  ...Array.from({ length: 8 }, (_, i) => mint(k1, i)),
  ...Array.from({ length: 8 }, (_, i) => mint(k2, i + 8)),
];
const valid = new Set(pool);
const headerOf = (kid: string) =>
  pool
    .find((t) => kid === JSON.parse(Buffer.from(t.split('.')[0] ?? '', 'base64url').toString()).kid)
    ?.split('.')[0] ?? '';
const headers = { k1: headerOf('k1'), k2: headerOf('k2') };

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const tokenChar = fc.constantFrom(...`${B64URL}.`);
const anyChar = fc.oneof(tokenChar, fc.constantFrom('=', '+', '/', ' ', '%', '\u0000', 'é', '😀'));

type Mutation = (t: string) => string;
const seg = (t: string) => t.split('.');
const clampIdx = (t: string, i: number) => (t.length === 0 ? 0 : i % t.length);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Bit flip anywhere, including separators; high bits produce non-ASCII characters.
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 15 })).map(
    ([i, bit]): Mutation =>
      (t) => {
        if (t.length === 0) return t;
        const at = clampIdx(t, i);
        return t.slice(0, at) + String.fromCharCode(t.charCodeAt(at) ^ (1 << bit)) + t.slice(at + 1);
      },
  ),
  // Bit flip inside one segment's decoded bytes, re-encoded canonically (a "clean" forgery).
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.nat(), fc.integer({ min: 0, max: 7 })).map(
    ([s, i, bit]): Mutation =>
      (t) => {
        const parts = seg(t);
        const raw = Buffer.from(parts[s] ?? '', 'base64url');
        if (raw.length === 0) return t;
        const at = i % raw.length;
        raw[at] = (raw[at] ?? 0) ^ (1 << bit);
        parts[s] = raw.toString('base64url');
        return parts.join('.');
      },
  ),
  fc.nat().map(
    (i): Mutation =>
      (t) =>
        t.slice(0, clampIdx(t, i)),
  ),
  fc.string({ unit: anyChar, minLength: 1, maxLength: 8 }).map(
    (s): Mutation =>
      (t) =>
        t + s,
  ),
  fc.tuple(fc.nat(), fc.string({ unit: anyChar, minLength: 1, maxLength: 4 })).map(
    ([i, s]): Mutation =>
      (t) => {
        const at = clampIdx(t, i);
        return t.slice(0, at) + s + t.slice(at);
      },
  ),
  fc.nat().map(
    (i): Mutation =>
      (t) => {
        const at = clampIdx(t, i);
        return t.slice(0, at) + t.slice(at + 1);
      },
  ),
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 })).map(
    ([a, b]): Mutation =>
      (t) => {
        const parts = seg(t);
        const x = parts[a];
        const y = parts[b];
        if (x === undefined || y === undefined) return t;
        parts[a] = y;
        parts[b] = x;
        return parts.join('.');
      },
  ),
  // Re-encode one segment as padded base64url, standard base64, or padded standard base64.
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.constantFrom('pad', 'std', 'stdpad')).map(
    ([s, how]): Mutation =>
      (t) => {
        const parts = seg(t);
        const raw = Buffer.from(parts[s] ?? '', 'base64url');
        const std = raw.toString('base64');
        parts[s] =
          how === 'std'
            ? std.replace(/=+$/, '')
            : how === 'stdpad'
              ? std
              : std.replace(/\+/g, '-').replace(/\//g, '_');
        return parts.join('.');
      },
  ),
  // The header of a ticket under the other key: the kid resolves, the tag must not.
  fc.constant<Mutation>((t) => {
    const parts = seg(t);
    parts[0] = parts[0] === headers.k1 ? headers.k2 : headers.k1;
    return parts.join('.');
  }),
  // A segment grafted from another valid ticket.
  fc.tuple(fc.integer({ min: 0, max: pool.length - 1 }), fc.integer({ min: 0, max: 4 })).map(
    ([d, s]): Mutation =>
      (t) => {
        const parts = seg(t);
        parts[s] = seg(pool[d] ?? '')[s] ?? '';
        return parts.join('.');
      },
  ),
  fc.constant<Mutation>((t) => t.replace('.', '..')),
  fc.constant<Mutation>((t) => t.repeat(2)),
);

let checked = 0;

function assertRefused(token: string, original?: string): void {
  // A mutation that undid itself (or grafted together a whole other valid ticket) is not tampering.
  if (token === original || valid.has(token)) return;
  let res: ReturnType<typeof verifyTicket>;
  try {
    res = verifyTicket(token, facts, settings, state);
  } catch (err) {
    assert.fail(`threw on ${JSON.stringify(token)}: ${String(err)}`);
  }
  checked++;
  assert.deepEqual(res, { ok: false, code: 'bad_ticket' }, `accepted a tampered token: ${token}`);
}

test('the unmutated pool verifies (sanity)', () => {
  for (const t of pool) assert.equal(verifyTicket(t, facts, settings, state).ok, true);
});

test('mutated tickets are all bad_ticket, none throws', () => {
  const before = checked;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: pool.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (which, mutations) => {
        const original = pool[which] ?? '';
        let t = original;
        // Every intermediate step is a tampered token of its own.
        for (const m of mutations) {
          t = m(t);
          assertRefused(t, original);
        }
      },
    ),
    { numRuns: 40_000 },
  );
  assert.ok(checked - before >= 90_000, `only ${checked - before} mutated tokens checked`);
});

test('random strings are all bad_ticket, none throws', () => {
  const before = checked;
  const fiveSegments = fc
    .array(fc.string({ unit: tokenChar, maxLength: 60 }), { minLength: 5, maxLength: 5 })
    .map((a) => a.join('.'));
  const shaped = fc
    .tuple(
      fc.constantFrom(headers.k1, headers.k2),
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
    )
    .map(([h, iv, ct, tag]) =>
      [
        h,
        '',
        Buffer.from(iv).toString('base64url'),
        Buffer.from(ct).toString('base64url'),
        Buffer.from(tag).toString('base64url'),
      ].join('.'),
    );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 400 }),
        fc.string({ unit: tokenChar, maxLength: 3000 }),
        fiveSegments,
        shaped,
      ),
      (s) => assertRefused(s),
    ),
    { numRuns: 20_000 },
  );
  assert.ok(checked - before >= 19_000);
});

test('at least 100,000 tampered tokens were checked in total', (t) => {
  t.diagnostic(`${checked} tampered tokens checked`);
  assert.ok(checked >= 100_000, `only ${checked}`);
});
