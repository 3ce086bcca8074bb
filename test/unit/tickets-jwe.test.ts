/**
 * The ticket envelope (src/tickets/jwe.ts): standard JWE compact form that interoperates with
 * `jose` in both directions, refuses every malformed or foreign token without throwing, keeps the
 * claims unreadable without the key, and stays URL-segment safe and small.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { CompactEncrypt, type CompactJWEHeaderParameters, compactDecrypt } from 'jose';
import { issueTicket, verifyTicket } from '../../src/tickets/index.js';
import { decryptCompact, encryptCompact, MAX_TOKEN_LENGTH } from '../../src/tickets/jwe.js';
import type { KeyRing, TicketClaims, TicketKey } from '../../src/tickets/types.js';

const k1: TicketKey = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
const k2: TicketKey = { id: 'k2', key: new Uint8Array(randomBytes(32)) };
const ring: KeyRing = [k1, k2];

const T0 = 1_700_000_000;
const claims: TicketClaims = {
  jti: 'tkt_01HZY3J6Q8W5',
  oid: 'ord_01HZY3J6Q8W4',
  aud: 'a',
  path: '/apps/editor-2.1.dmg',
  iat: T0,
  nbf: T0,
  exp: T0 + 600,
  cip: '203.0.113.7/32',
};
const plaintext = Buffer.from(JSON.stringify(claims));

const b64 = (s: string) => Buffer.from(s).toString('base64url');

function joseEncrypt(pt: Uint8Array, key: TicketKey, header?: CompactJWEHeaderParameters): Promise<string> {
  return new CompactEncrypt(pt)
    .setProtectedHeader(header ?? { alg: 'dir', enc: 'A256GCM', kid: key.id })
    .encrypt(key.key);
}

function mustFail(token: string, r: KeyRing = ring): string {
  const res = decryptCompact(token, r);
  assert.equal(res.ok, false, `accepted: ${token}`);
  return res.ok ? '' : res.reason;
}

describe('jose interoperability', () => {
  test('our tokens decrypt with jose, with the expected protected header', async () => {
    const token = encryptCompact(plaintext, k1);
    const out = await compactDecrypt(token, k1.key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    assert.deepEqual(out.protectedHeader, { alg: 'dir', enc: 'A256GCM', kid: 'k1' });
    assert.deepEqual(JSON.parse(Buffer.from(out.plaintext).toString()), claims);
  });

  test('issued tickets decrypt with jose (through the public API)', async () => {
    const { token, claims: issued } = issueTicket(
      {
        ticketId: 't1',
        orderId: 'o1',
        serverId: 'a',
        path: '/x.bin',
        clientAddress: '127.0.0.1',
        nowMs: T0 * 1000,
      },
      {
        policy: 'strict',
        ttlSeconds: 60,
        startDelaySeconds: 5,
        bindClientAddress: true,
        bindPrefix: { ipv4: 32, ipv6: 64 },
      },
      ring,
    );
    const out = await compactDecrypt(token, k1.key);
    assert.deepEqual(JSON.parse(Buffer.from(out.plaintext).toString()), issued);
  });

  test("jose's tokens decrypt with ours, under either ring key", async () => {
    for (const key of [k1, k2]) {
      const token = await joseEncrypt(plaintext, key);
      const res = decryptCompact(token, ring);
      assert.ok(res.ok);
      assert.equal(res.kid, key.id);
      assert.deepEqual(res.plaintext, plaintext);
    }
  });

  test("jose's tokens with header members in another order (slow path) still decrypt", async () => {
    const token = await joseEncrypt(plaintext, k2, {
      kid: 'k2',
      enc: 'A256GCM',
      alg: 'dir',
      typ: 'rushgate+jwe',
    });
    const res = decryptCompact(token, ring);
    assert.ok(res.ok);
    assert.deepEqual(res.plaintext, plaintext);
  });

  test("jose's tokens verify as tickets", async () => {
    const token = await joseEncrypt(plaintext, k1);
    const res = verifyTicket(
      token,
      { serverId: 'a', path: '/apps/editor-2.1.dmg', clientAddress: '203.0.113.7', nowMs: T0 * 1000 },
      { policy: 'strict', clockSkewSeconds: 0, ring },
      { hasNotice: () => true, isRevoked: () => false },
    );
    assert.deepEqual(res, { ok: true, claims });
  });

  test('jose refuses a token of ours that was tampered with (and so do we)', async () => {
    const token = encryptCompact(plaintext, k1);
    const parts = token.split('.');
    const tag = Buffer.from(parts[4] ?? '', 'base64url');
    tag[0] = (tag[0] ?? 0) ^ 1;
    parts[4] = tag.toString('base64url');
    const bad = parts.join('.');
    await assert.rejects(compactDecrypt(bad, k1.key));
    mustFail(bad);
  });

  test('jose tokens with other algorithms are refused', async () => {
    const a128 = { id: 'k1', key: new Uint8Array(randomBytes(16)) };
    const t128 = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'dir', enc: 'A128GCM', kid: 'k1' })
      .encrypt(a128.key);
    assert.equal(mustFail(t128), 'unsupported enc');
    const kw = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM', kid: 'k1' })
      .encrypt(k1.key);
    // Key wrapping fills the encrypted-key segment, which dir must leave empty.
    assert.equal(mustFail(kw), 'encrypted key must be empty under dir');
  });
});

describe('malformed tokens are refused, never thrown', () => {
  const good = encryptCompact(plaintext, k1);
  const [h, , iv, ct, tag] = good.split('.') as [string, string, string, string, string];

  test('the good token itself decrypts', () => {
    assert.ok(decryptCompact(good, ring).ok);
  });

  const cases: Array<[string, string]> = [
    ['empty string', ''],
    ['one segment', h],
    ['four segments', [h, '', iv, ct].join('.')],
    ['six segments', [h, '', iv, ct, tag, ''].join('.')],
    ['non-empty encrypted key', [h, 'AAAA', iv, ct, tag].join('.')],
    ['padding', [h, '', iv, `${ct}==`, tag].join('.')],
    ['standard base64 alphabet', [h, '', iv, `${ct.slice(0, -1)}+`, tag].join('.')],
    ['whitespace', ` ${good}`],
    ['non-ASCII', `${good}é`],
    ['short iv (11 bytes)', [h, '', Buffer.alloc(11).toString('base64url'), ct, tag].join('.')],
    ['long iv (16 bytes)', [h, '', Buffer.alloc(16).toString('base64url'), ct, tag].join('.')],
    ['truncated tag', [h, '', iv, ct, tag.slice(0, 21)].join('.')],
    ['short tag (12 bytes)', [h, '', iv, ct, Buffer.alloc(12).toString('base64url')].join('.')],
    ['truncated ciphertext', [h, '', iv, ct.slice(0, -4), tag].join('.')],
    ['empty ciphertext', [h, '', iv, '', tag].join('.')],
    ['impossible base64 length', [h, '', iv, 'AAAAA', tag].join('.')],
    ['header not JSON', [b64('nope'), '', iv, ct, tag].join('.')],
    ['header an array', [b64('["dir"]'), '', iv, ct, tag].join('.')],
    ['alg none', [b64('{"alg":"none","enc":"A256GCM","kid":"k1"}'), '', iv, ct, tag].join('.')],
    ['enc A128GCM', [b64('{"alg":"dir","enc":"A128GCM","kid":"k1"}'), '', iv, ct, tag].join('.')],
    ['missing kid', [b64('{"alg":"dir","enc":"A256GCM"}'), '', iv, ct, tag].join('.')],
    ['numeric kid', [b64('{"alg":"dir","enc":"A256GCM","kid":1}'), '', iv, ct, tag].join('.')],
    ['unknown kid', [b64('{"alg":"dir","enc":"A256GCM","kid":"k9"}'), '', iv, ct, tag].join('.')],
    ['zip', [b64('{"alg":"dir","enc":"A256GCM","kid":"k1","zip":"DEF"}'), '', iv, ct, tag].join('.')],
    ['crit', [b64('{"alg":"dir","enc":"A256GCM","kid":"k1","crit":["x"],"x":1}'), '', iv, ct, tag].join('.')],
    [
      'same header, other spelling',
      [b64('{"kid":"k1","alg":"dir","enc":"A256GCM"}'), '', iv, ct, tag].join('.'),
    ],
    ['header of the other key', [b64('{"alg":"dir","enc":"A256GCM","kid":"k2"}'), '', iv, ct, tag].join('.')],
    ['too long', `${good}${'A'.repeat(MAX_TOKEN_LENGTH)}`],
    ['dots only', '....'],
  ];
  for (const [name, token] of cases) {
    test(name, () => {
      mustFail(token);
      const res = verifyTicket(
        token,
        { serverId: 'a', path: claims.path, clientAddress: '203.0.113.7', nowMs: T0 * 1000 },
        { policy: 'expiring', clockSkewSeconds: 0, ring },
      );
      assert.deepEqual(res, { ok: false, code: 'bad_ticket' });
    });
  }

  test('a non-canonical spelling of the same bytes (unused low bits set) is refused', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // 22 chars carry 132 bits for a 128-bit tag: the last character's low 4 bits are unused.
    const last = alphabet.indexOf(tag.at(-1) ?? '');
    const twin = `${tag.slice(0, -1)}${alphabet[last | 1]}`;
    assert.notEqual(twin, tag);
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(tag, 'base64url'));
    assert.equal(mustFail([h, '', iv, ct, twin].join('.')), 'bad tag');
  });

  test('non-string input (from untyped callers)', () => {
    for (const v of [undefined, null, 42, {}, ['a']]) mustFail(v as unknown as string);
  });

  test('a token under a key missing from the ring', () => {
    assert.equal(mustFail(encryptCompact(plaintext, k2), [k1]), 'unknown kid');
  });

  test('a known kid with other key bytes', () => {
    const impostor = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
    assert.equal(mustFail(encryptCompact(plaintext, impostor)), 'decryption failed');
  });

  test('a wrong-sized ring key is a configuration error (throws on use)', () => {
    assert.throws(() => encryptCompact(plaintext, { id: 'short', key: new Uint8Array(16) }), TypeError);
  });
});

describe('confidentiality and shape', () => {
  const issue = () =>
    issueTicket(
      {
        ticketId: 'TICKETID-secret-9001',
        orderId: 'ORDERID-secret-4711',
        serverId: 'content-east-7',
        path: '/private/quarterly-report-2024.pdf',
        clientAddress: '2001:db8:abcd:12::7',
        nowMs: T0 * 1000,
      },
      {
        policy: 'strict',
        ttlSeconds: 600,
        startDelaySeconds: 0,
        bindClientAddress: true,
        bindPrefix: { ipv4: 32, ipv6: 64 },
      },
      ring,
    );

  test('claims appear neither in the token nor in any decoded segment', () => {
    const { token, claims: c } = issue();
    const secrets = [
      c.jti,
      c.oid,
      c.aud,
      c.path,
      'quarterly',
      'secret',
      '2001:db8',
      String(c.exp),
      c.cip ?? '',
    ];
    const views = [token];
    for (const seg of token.split('.')) {
      const raw = Buffer.from(seg, 'base64url');
      views.push(raw.toString('latin1'), raw.toString('utf8'), raw.toString('hex'));
    }
    for (const s of secrets) {
      assert.ok(s.length > 0);
      for (const v of views) assert.ok(!v.includes(s), `${s} leaked`);
      assert.ok(!token.includes(Buffer.from(s).toString('base64url').slice(2, -2)), `${s} leaked (base64)`);
    }
    // The one readable part is the header, and it names only the algorithm and the key.
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString());
    assert.deepEqual(header, { alg: 'dir', enc: 'A256GCM', kid: 'k1' });
  });

  test('two tickets for the same claims differ (fresh IV each time)', () => {
    const a = encryptCompact(plaintext, k1);
    const b = encryptCompact(plaintext, k1);
    assert.notEqual(a, b);
    assert.notEqual(a.split('.')[2], b.split('.')[2]);
  });

  test('tokens are URL-segment safe and under 1 KiB', () => {
    for (let i = 0; i < 200; i++) {
      const { token } = issue();
      assert.match(token, /^[A-Za-z0-9_.-]+$/);
      assert.ok(token.length < 1024, `token is ${token.length} chars`);
      assert.equal(token.split('.').length, 5);
      assert.equal(token.split('.')[1], '');
    }
  });
});
