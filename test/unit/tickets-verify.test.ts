/**
 * Issuing and verifying tickets (src/tickets/issue.ts, verify.ts) against CONTRACT §4: which
 * checks each policy runs, the order they run in, the exact edges of nbf/exp with and without
 * clock skew, key rotation, client binding, and the claims schema.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  type IssueSettings,
  issueTicket,
  type KeyRing,
  type RefusalCode,
  type RequestFacts,
  type TicketClaims,
  type TicketKey,
  type TicketPolicy,
  type TicketState,
  ticketClaims,
  type VerifyResult,
  verifyTicket,
} from '../../src/tickets/index.js';
import { encryptCompact } from '../../src/tickets/jwe.js';

const k1: TicketKey = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
const k2: TicketKey = { id: 'k2', key: new Uint8Array(randomBytes(32)) };
const ring: KeyRing = [k1];

const T0 = 1_700_000_000;
const TTL = 600;
const DELAY = 60;
const PATH = '/apps/editor-2.1.dmg';
const CLIENT = '203.0.113.7';

const settingsFor = (policy: TicketPolicy, extra: Partial<IssueSettings> = {}): IssueSettings => ({
  policy,
  ttlSeconds: TTL,
  startDelaySeconds: DELAY,
  bindClientAddress: policy === 'strict',
  bindPrefix: { ipv4: 32, ipv6: 64 },
  ...extra,
});

function issue(
  policy: TicketPolicy,
  extra: Partial<IssueSettings> = {},
  clientAddress = CLIENT,
  r: KeyRing = ring,
) {
  return issueTicket(
    { ticketId: 't1', orderId: 'o1', serverId: 'a', path: PATH, clientAddress, nowMs: T0 * 1000 + 250 },
    settingsFor(policy, extra),
    r,
  );
}

const allowed: TicketState = { hasNotice: () => true, isRevoked: () => false };

function facts(over: Partial<RequestFacts> = {}): RequestFacts {
  return { serverId: 'a', path: PATH, clientAddress: CLIENT, nowMs: (T0 + 1) * 1000, ...over };
}

function check(
  token: string,
  policy: TicketPolicy,
  over: Partial<RequestFacts> = {},
  skew = 0,
  state: TicketState = allowed,
  r: KeyRing = ring,
): VerifyResult {
  return verifyTicket(token, facts(over), { policy, clockSkewSeconds: skew, ring: r }, state);
}

const codeOf = (res: VerifyResult): RefusalCode | 'ok' => (res.ok ? 'ok' : res.code);

describe('issued claims', () => {
  test('times, binding and ids', () => {
    const { claims } = issue('strict');
    assert.deepEqual(claims, {
      jti: 't1',
      oid: 'o1',
      aud: 'a',
      path: PATH,
      iat: T0,
      nbf: T0 + DELAY,
      exp: T0 + TTL,
      cip: '203.0.113.7/32',
    });
  });

  test('startDelaySeconds applies to window and strict only', () => {
    assert.equal(issue('window').claims.nbf, T0 + DELAY);
    assert.equal(issue('expiring').claims.nbf, T0);
    assert.equal(issue('open').claims.nbf, T0);
  });

  test('cip only when bindClientAddress', () => {
    assert.equal(issue('strict', { bindClientAddress: false }).claims.cip, undefined);
    assert.equal('cip' in issue('strict', { bindClientAddress: false }).claims, false);
    assert.equal(issue('expiring', { bindClientAddress: true }).claims.cip, '203.0.113.7/32');
    assert.equal(issue('strict', { bindPrefix: { ipv4: 24, ipv6: 64 } }).claims.cip, '203.0.113.0/24');
    assert.equal(issue('strict', {}, '2001:db8:1:2:3:4:5:6').claims.cip, '2001:db8:1:2::/64');
  });

  test('under open a token is still issued', () => {
    const { token } = issue('open');
    assert.match(token, /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  test('iat floors nowMs to the second', () => {
    const c = ticketClaims(
      {
        ticketId: 't',
        orderId: 'o',
        serverId: 'a',
        path: '/x',
        clientAddress: CLIENT,
        nowMs: T0 * 1000 + 999,
      },
      settingsFor('window'),
    );
    assert.equal(c.iat, T0);
  });

  test('programming errors throw', () => {
    assert.throws(() => issue('strict', {}, CLIENT, []), /empty/);
    assert.throws(() => issue('strict', {}, 'not-an-address'), TypeError);
    assert.throws(() => issue('strict', { ttlSeconds: 0 }), RangeError);
    assert.throws(() => issue('strict', { ttlSeconds: 1.5 }), RangeError);
    assert.throws(() => issue('strict', { bindPrefix: { ipv4: 33, ipv6: 64 } }), RangeError);
  });
});

const TICKETED: TicketPolicy[] = ['expiring', 'window', 'strict'];

describe('a valid ticket is accepted under every policy', () => {
  for (const policy of [...TICKETED, 'open' as const]) {
    test(policy, () => {
      const { token, claims } = issue(policy);
      const res = check(token, policy, { nowMs: (T0 + DELAY) * 1000 });
      assert.deepEqual(res, { ok: true, claims });
    });
  }
});

describe('expiry edge: valid while now < exp + skew', () => {
  for (const policy of TICKETED) {
    for (const skew of [0, 30]) {
      const exp = T0 + TTL;
      const cases: Array<[string, number, RefusalCode | 'ok']> = [
        ['one second before', (exp + skew - 1) * 1000, 'ok'],
        ['last millisecond before', (exp + skew) * 1000 - 1, 'ok'],
        ['exactly at', (exp + skew) * 1000, 'expired'],
        ['exactly at, mid-second', (exp + skew) * 1000 + 500, 'expired'],
        ['one second after', (exp + skew + 1) * 1000, 'expired'],
      ];
      if (skew > 0) cases.push(['at exp itself, inside the skew', exp * 1000, 'ok']);
      for (const [name, nowMs, expected] of cases) {
        test(`${policy}, skew ${skew}: ${name} → ${expected}`, () => {
          const { token } = issue(policy);
          assert.equal(codeOf(check(token, policy, { nowMs }, skew)), expected);
        });
      }
    }
  }
});

describe('start edge: valid from now >= nbf - skew (window and strict)', () => {
  for (const policy of ['window', 'strict'] as const) {
    for (const skew of [0, 30]) {
      const nbf = T0 + DELAY;
      const cases: Array<[string, number, RefusalCode | 'ok']> = [
        ['one second before', (nbf - skew - 1) * 1000, 'not_yet_valid'],
        ['last millisecond before', (nbf - skew) * 1000 - 1, 'not_yet_valid'],
        ['exactly at', (nbf - skew) * 1000, 'ok'],
        ['one second after', (nbf - skew + 1) * 1000, 'ok'],
      ];
      if (skew > 0) cases.push(['one second before nbf, inside the skew', (nbf - 1) * 1000, 'ok']);
      for (const [name, nowMs, expected] of cases) {
        test(`${policy}, skew ${skew}: ${name} → ${expected}`, () => {
          const { token } = issue(policy);
          assert.equal(codeOf(check(token, policy, { nowMs }, skew)), expected);
        });
      }
    }
  }

  test('without a start delay a ticket is valid in the second it is issued', () => {
    for (const policy of ['window', 'strict'] as const) {
      const { token } = issue(policy, { startDelaySeconds: 0 });
      assert.equal(codeOf(check(token, policy, { nowMs: T0 * 1000 })), 'ok');
    }
  });

  test('expiring does not check nbf', () => {
    // A hand-made ticket whose nbf lies in the future: window refuses it, expiring does not.
    const claims: TicketClaims = {
      jti: 't',
      oid: 'o',
      aud: 'a',
      path: PATH,
      iat: T0,
      nbf: T0 + 300,
      exp: T0 + 600,
    };
    const token = encryptCompact(Buffer.from(JSON.stringify(claims)), k1);
    assert.equal(codeOf(check(token, 'expiring', { nowMs: T0 * 1000 })), 'ok');
    assert.equal(codeOf(check(token, 'window', { nowMs: T0 * 1000 })), 'not_yet_valid');
  });

  test('open checks neither time, server, path, client nor state', () => {
    const { token } = issue('open', { bindClientAddress: true });
    const never: TicketState = { hasNotice: () => false, isRevoked: () => true };
    const res = check(
      token,
      'open',
      { serverId: 'b', path: '/other', clientAddress: '198.51.100.1', nowMs: (T0 + 10 * TTL) * 1000 },
      0,
      never,
    );
    assert.equal(codeOf(res), 'ok');
    assert.equal(codeOf(check('garbage', 'open')), 'bad_ticket');
  });
});

describe('each refusal code under each policy that checks it', () => {
  const at = (T0 + DELAY + 1) * 1000;
  const matrix: Array<{
    code: RefusalCode;
    policies: TicketPolicy[];
    run: (p: TicketPolicy) => VerifyResult;
  }> = [
    { code: 'bad_ticket', policies: TICKETED, run: (p) => check(`${issue(p).token}x`, p, { nowMs: at }) },
    {
      code: 'wrong_server',
      policies: TICKETED,
      run: (p) => check(issue(p).token, p, { nowMs: at, serverId: 'b' }),
    },
    {
      code: 'wrong_path',
      policies: TICKETED,
      run: (p) => check(issue(p).token, p, { nowMs: at, path: '/apps/editor-2.1.DMG' }),
    },
    {
      code: 'expired',
      policies: TICKETED,
      run: (p) => check(issue(p).token, p, { nowMs: (T0 + TTL) * 1000 }),
    },
    {
      code: 'not_yet_valid',
      policies: ['window', 'strict'],
      run: (p) => check(issue(p).token, p, { nowMs: T0 * 1000 }),
    },
    {
      code: 'wrong_client',
      policies: ['strict'],
      run: (p) => check(issue(p).token, p, { nowMs: at, clientAddress: '203.0.113.8' }),
    },
    {
      code: 'no_notice',
      policies: ['strict'],
      run: (p) =>
        check(issue(p).token, p, { nowMs: at }, 0, { hasNotice: () => false, isRevoked: () => false }),
    },
    {
      code: 'revoked',
      policies: TICKETED,
      run: (p) =>
        check(issue(p).token, p, { nowMs: at }, 0, { hasNotice: () => true, isRevoked: () => true }),
    },
  ];
  for (const { code, policies, run } of matrix) {
    for (const policy of TICKETED) {
      const applies = policies.includes(policy);
      test(`${code} under ${policy}: ${applies ? 'refused' : 'not checked'}`, () => {
        // A policy that does not run the check accepts the same request — except wrong_client,
        // which the other policies do not even bind for by default, so give them a bound ticket.
        if (code === 'wrong_client' && !applies) {
          const { token } = issue(policy, { bindClientAddress: true });
          assert.equal(codeOf(check(token, policy, { nowMs: at, clientAddress: '203.0.113.8' })), 'ok');
          return;
        }
        assert.equal(codeOf(run(policy)), applies ? code : 'ok');
      });
    }
  }

  test('strict without a TicketState refuses with no_notice; other policies accept', () => {
    // Called directly: check() would fill in a default state.
    const stateless = (p: TicketPolicy) =>
      codeOf(verifyTicket(issue(p).token, facts({ nowMs: at }), { policy: p, clockSkewSeconds: 0, ring }));
    assert.equal(stateless('strict'), 'no_notice');
    assert.equal(stateless('window'), 'ok');
    assert.equal(stateless('expiring'), 'ok');
  });

  test('strict with an unbound ticket does not check the client', () => {
    const { token } = issue('strict', { bindClientAddress: false });
    assert.equal(codeOf(check(token, 'strict', { nowMs: at, clientAddress: '198.51.100.1' })), 'ok');
  });
});

describe('check order: the first failing check names the code', () => {
  const at = (T0 + DELAY + 1) * 1000;
  const everything: TicketState = { hasNotice: () => false, isRevoked: () => true };
  const steps: Array<[RefusalCode, Partial<RequestFacts>, TicketState]> = [
    [
      'wrong_server',
      { serverId: 'b', path: '/x', clientAddress: '198.51.100.1', nowMs: T0 * 1000 },
      everything,
    ],
    ['wrong_path', { path: '/x', clientAddress: '198.51.100.1', nowMs: (T0 + TTL) * 1000 }, everything],
    ['expired', { clientAddress: '198.51.100.1', nowMs: (T0 + TTL) * 1000 }, everything],
    ['not_yet_valid', { clientAddress: '198.51.100.1', nowMs: T0 * 1000 }, everything],
    ['wrong_client', { clientAddress: '198.51.100.1', nowMs: at }, everything],
    ['no_notice', { nowMs: at }, everything],
    ['revoked', { nowMs: at }, { hasNotice: () => true, isRevoked: () => true }],
  ];
  for (const [code, over, state] of steps) {
    test(code, () => {
      assert.equal(codeOf(check(issue('strict').token, 'strict', over, 0, state)), code);
    });
  }

  test('bad_ticket before anything else', () => {
    const { token } = issue('strict');
    assert.equal(codeOf(check(token, 'strict', { serverId: 'b' }, 0, everything, [k2])), 'bad_ticket');
  });

  test('the state is not consulted once an earlier check has failed', () => {
    let calls = 0;
    const counting: TicketState = {
      hasNotice: () => {
        calls++;
        return true;
      },
      isRevoked: () => {
        calls++;
        return false;
      },
    };
    check(issue('strict').token, 'strict', { nowMs: (T0 + TTL) * 1000 }, 0, counting);
    assert.equal(calls, 0);
  });

  test('the state sees the decrypted claims', () => {
    const seen: TicketClaims[] = [];
    const spy: TicketState = {
      hasNotice: (c) => seen.push(c) > 0,
      isRevoked: (c) => seen.push(c) < 0,
    };
    const { token, claims } = issue('strict');
    check(token, 'strict', { nowMs: at }, 0, spy);
    assert.deepEqual(seen, [claims, claims]);
  });
});

describe('key rotation', () => {
  test('old tickets verify after a new key is put first; new tickets use it', () => {
    const old = issue('expiring', {}, CLIENT, [k1]).token;
    const rotated: KeyRing = [k2, k1];
    assert.equal(codeOf(check(old, 'expiring', {}, 0, allowed, rotated)), 'ok');
    const fresh = issue('expiring', {}, CLIENT, rotated).token;
    assert.equal(JSON.parse(Buffer.from(fresh.split('.')[0] ?? '', 'base64url').toString()).kid, 'k2');
    assert.equal(codeOf(check(fresh, 'expiring', {}, 0, allowed, rotated)), 'ok');
    // Before the rotation reached this server, its ring lacks k2.
    assert.equal(codeOf(check(fresh, 'expiring', {}, 0, allowed, [k1])), 'bad_ticket');
  });

  test('once the old key is retired, its tickets are bad_ticket', () => {
    const old = issue('expiring', {}, CLIENT, [k1]).token;
    assert.equal(codeOf(check(old, 'expiring', {}, 0, allowed, [k2])), 'bad_ticket');
  });

  test('a reused kid with new key bytes does not accept old tickets', () => {
    const old = issue('expiring', {}, CLIENT, [k1]).token;
    const reused: TicketKey = { id: 'k1', key: new Uint8Array(randomBytes(32)) };
    assert.equal(codeOf(check(old, 'expiring', {}, 0, allowed, [reused])), 'bad_ticket');
  });

  test('a key object mutated in place is noticed (no stale cache)', () => {
    const mutable: TicketKey = { id: 'm', key: new Uint8Array(randomBytes(32)) };
    const before = issue('expiring', {}, CLIENT, [mutable]).token;
    mutable.key = new Uint8Array(randomBytes(32));
    assert.equal(codeOf(check(before, 'expiring', {}, 0, allowed, [mutable])), 'bad_ticket');
  });
});

describe('client binding under strict', () => {
  const at = (T0 + DELAY + 1) * 1000;
  const bound = (client: string, bindPrefix = { ipv4: 32, ipv6: 64 }) =>
    issue('strict', { bindClientAddress: true, bindPrefix }, client).token;
  const from = (token: string, clientAddress: string) =>
    codeOf(check(token, 'strict', { nowMs: at, clientAddress }));

  test('IPv4 /32', () => {
    const t = bound('127.0.0.1');
    assert.equal(from(t, '127.0.0.1'), 'ok');
    assert.equal(from(t, '127.0.0.2'), 'wrong_client');
  });

  test('IPv4 /24', () => {
    const t = bound('198.51.100.23', { ipv4: 24, ipv6: 64 });
    assert.equal(from(t, '198.51.100.1'), 'ok');
    assert.equal(from(t, '198.51.100.255'), 'ok');
    assert.equal(from(t, '198.51.101.23'), 'wrong_client');
  });

  test('IPv6 /64', () => {
    const t = bound('2001:db8:0:7::1');
    assert.equal(from(t, '2001:db8:0:7:ffff::9'), 'ok');
    assert.equal(from(t, '2001:db8:0:8::1'), 'wrong_client');
  });

  test('IPv6 /128', () => {
    const t = bound('2001:db8::1', { ipv4: 32, ipv6: 128 });
    assert.equal(from(t, '2001:db8::1'), 'ok');
    assert.equal(from(t, '2001:DB8:0::1'), 'ok');
    assert.equal(from(t, '2001:db8::2'), 'wrong_client');
  });

  test('IPv4-mapped IPv6 and IPv4 are the same client, both ways', () => {
    assert.equal(from(bound('::ffff:127.0.0.1'), '127.0.0.1'), 'ok');
    assert.equal(from(bound('127.0.0.1'), '::ffff:127.0.0.1'), 'ok');
    assert.equal(from(bound('::ffff:127.0.0.1'), '::ffff:127.0.0.2'), 'wrong_client');
    assert.equal(from(bound('127.0.0.1'), '::1'), 'wrong_client');
  });

  test('an unparsable client address is wrong_client, not an exception', () => {
    assert.equal(from(bound('127.0.0.1'), 'unknown'), 'wrong_client');
    assert.equal(from(bound('127.0.0.1'), ''), 'wrong_client');
  });
});

describe('claims schema', () => {
  const base = { jti: 't', oid: 'o', aud: 'a', path: PATH, iat: T0, nbf: T0, exp: T0 + 600 };
  const seal = (v: unknown) => encryptCompact(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), k1);
  const bad: Array<[string, unknown]> = [
    ['not JSON', 'not json {'],
    ['JSON null', null],
    ['an array', [base]],
    ['a number', 42],
    ['missing jti', { ...base, jti: undefined }],
    ['empty aud', { ...base, aud: '' }],
    ['numeric oid', { ...base, oid: 7 }],
    ['path not absolute', { ...base, path: 'apps/x' }],
    ['path a number', { ...base, path: 1 }],
    ['iat a string', { ...base, iat: String(T0) }],
    ['exp fractional', { ...base, exp: T0 + 0.5 }],
    ['nbf negative', { ...base, nbf: -1 }],
    ['exp huge', { ...base, exp: 2 ** 60 }],
    ['cip null', { ...base, cip: null }],
    ['cip not a CIDR', { ...base, cip: '203.0.113.7' }],
    ['cip bad prefix', { ...base, cip: '203.0.113.7/33' }],
    ['cip garbage', { ...base, cip: 'anything/8' }],
  ];
  for (const [name, value] of bad) {
    test(`${name} → bad_ticket`, () => {
      assert.equal(codeOf(check(seal(value), 'expiring')), 'bad_ticket');
    });
  }

  test('unknown members are ignored and not passed on', () => {
    const res = check(seal({ ...base, extra: { deep: true } }), 'expiring');
    assert.deepEqual(res, { ok: true, claims: base });
  });

  test('a broken caller throws (fail closed), the token never does', () => {
    const { token } = issue('expiring');
    assert.throws(() => check(token, 'expiring', { nowMs: Number.NaN }), RangeError);
    assert.throws(() => check(token, 'expiring', {}, -1), RangeError);
  });
});
