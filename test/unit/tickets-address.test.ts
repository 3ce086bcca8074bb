/**
 * Client-address handling for bound tickets (src/tickets/address.ts) and ticket URLs
 * (src/tickets/url.ts): one canonical spelling per client, prefixes masked the way `cip` carries
 * them, containment that treats IPv4-mapped IPv6 as IPv4, and URLs that keep the item path's real
 * name after the ticket segment.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addressInPrefix,
  isCidr,
  normalizeAddress,
  prefixOf,
  splitTicketPath,
  ticketUrl,
} from '../../src/tickets/index.js';

describe('normalizeAddress', () => {
  const cases: Array<[string, string]> = [
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['::1', '::1'],
    [' 10.0.0.1 ', '10.0.0.1'],
    ['not an address', 'not an address'],
    ['127.1', '127.1'],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(normalizeAddress(input), expected));
  }
});

describe('prefixOf', () => {
  const cases: Array<[string, { ipv4: number; ipv6: number }, string]> = [
    ['203.0.113.7', { ipv4: 32, ipv6: 64 }, '203.0.113.7/32'],
    ['203.0.113.7', { ipv4: 24, ipv6: 64 }, '203.0.113.0/24'],
    ['203.0.113.7', { ipv4: 20, ipv6: 64 }, '203.0.112.0/20'],
    ['203.0.113.7', { ipv4: 0, ipv6: 64 }, '0.0.0.0/0'],
    ['::ffff:203.0.113.7', { ipv4: 32, ipv6: 64 }, '203.0.113.7/32'],
    ['2001:db8::1', { ipv4: 32, ipv6: 64 }, '2001:db8::/64'],
    ['2001:db8:aaaa:bbbb:cccc::1', { ipv4: 32, ipv6: 64 }, '2001:db8:aaaa:bbbb::/64'],
    ['2001:db8:aaaa:bbbb:cccc::1', { ipv4: 32, ipv6: 56 }, '2001:db8:aaaa:bb00::/56'],
    ['2001:db8::1', { ipv4: 32, ipv6: 128 }, '2001:db8::1/128'],
    ['[fe80::abcd%eth0]', { ipv4: 32, ipv6: 128 }, 'fe80::abcd/128'],
  ];
  for (const [addr, bind, expected] of cases) {
    test(`${addr} with /${bind.ipv4},/${bind.ipv6} → ${expected}`, () => {
      assert.equal(prefixOf(addr, bind), expected);
      assert.ok(isCidr(expected));
      assert.ok(addressInPrefix(addr, expected));
    });
  }

  test('refuses non-addresses and impossible prefix lengths', () => {
    assert.throws(() => prefixOf('example.com', { ipv4: 32, ipv6: 64 }), TypeError);
    assert.throws(() => prefixOf('1.2.3.4', { ipv4: 33, ipv6: 64 }), RangeError);
    assert.throws(() => prefixOf('::1', { ipv4: 32, ipv6: 129 }), RangeError);
    assert.throws(() => prefixOf('::1', { ipv4: 32, ipv6: 6.5 }), RangeError);
  });
});

describe('addressInPrefix', () => {
  const cases: Array<[string, string, boolean]> = [
    ['127.0.0.1', '127.0.0.1/32', true],
    ['127.0.0.2', '127.0.0.1/32', false],
    ['::ffff:127.0.0.1', '127.0.0.1/32', true],
    ['127.0.0.1', '::ffff:127.0.0.1/128', true],
    ['127.0.0.2', '::ffff:127.0.0.0/120', true],
    ['10.1.2.3', '::ffff:0:0/96', true],
    ['198.51.100.200', '198.51.100.0/24', true],
    ['198.51.101.1', '198.51.100.0/24', false],
    ['198.51.100.9', '198.51.100.77/24', true],
    ['8.8.8.8', '0.0.0.0/0', true],
    ['::1', '0.0.0.0/0', false],
    ['2001:db8::1', '::/0', true],
    ['2001:db8:0:0:ffff::', '2001:db8::/64', true],
    ['2001:db8:0:1::', '2001:db8::/64', false],
    ['2001:db8::1', '2001:db8::1/128', true],
    ['2001:db8::2', '2001:db8::1/128', false],
    ['[2001:db8::1]', '2001:db8::/64', true],
    ['fe80::1%eth0', 'fe80::/64', true],
    ['2001:db8:80::', '2001:db8:0::/41', false],
    ['2001:db8:7f::', '2001:db8:0::/41', true],
    ['garbage', '127.0.0.1/32', false],
    ['127.0.0.1', 'garbage', false],
    ['127.0.0.1', '127.0.0.1', false],
    ['127.0.0.1', '127.0.0.1/33', false],
    ['127.0.0.1', '127.0.0.1/032', false],
    ['127.0.0.1', '127.0.0.1/', false],
    ['::1', '::1/129', false],
    ['fe80::1', 'fe80::1%eth0/128', false],
  ];
  for (const [addr, cidr, expected] of cases) {
    test(`${addr} in ${cidr}: ${expected}`, () => assert.equal(addressInPrefix(addr, cidr), expected));
  }
});

describe('ticketUrl', () => {
  const token = 'eyJhbGciOiJkaXIifQ..AAAAAAAAAAAAAAAA.abc.AAAAAAAAAAAAAAAAAAAAAA';

  test('ticketed policies put the ticket in its own segment before the item path', () => {
    for (const policy of ['expiring', 'window', 'strict'] as const) {
      assert.equal(
        ticketUrl('http://127.0.0.1:8081', token, '/apps/editor-2.1.dmg', policy),
        `http://127.0.0.1:8081/t/${token}/apps/editor-2.1.dmg`,
      );
    }
  });

  test('open has no ticket segment, even when given a token', () => {
    assert.equal(ticketUrl('http://h:1', null, '/a.bin', 'open'), 'http://h:1/a.bin');
    assert.equal(ticketUrl('http://h:1', token, '/a.bin', 'open'), 'http://h:1/a.bin');
  });

  test('each path segment is percent-encoded; slashes stay separators', () => {
    assert.equal(
      ticketUrl('http://h', token, '/docs/Annual report #3?.pdf', 'strict'),
      `http://h/t/${token}/docs/Annual%20report%20%233%3F.pdf`,
    );
    assert.equal(ticketUrl('http://h', null, '/ü/ß.txt', 'open'), 'http://h/%C3%BC/%C3%9F.txt');
  });

  test('a trailing slash on publicUrl does not double up', () => {
    assert.equal(ticketUrl('http://h/', token, '/a', 'strict'), `http://h/t/${token}/a`);
    assert.equal(ticketUrl('http://h/base/', null, '/a', 'open'), 'http://h/base/a');
  });

  test('a ticketed policy without a usable token is a programming error', () => {
    assert.throws(() => ticketUrl('http://h', null, '/a', 'strict'), TypeError);
    assert.throws(() => ticketUrl('http://h', 'a/b', '/a', 'window'), TypeError);
  });

  test('splitTicketPath inverts it', () => {
    const url = new URL(ticketUrl('http://h', token, '/docs/a b.pdf', 'strict'));
    assert.deepEqual(splitTicketPath(url.pathname), { token, itemRawPath: '/docs/a%20b.pdf' });
    assert.equal(splitTicketPath('/docs/a.pdf'), null);
    assert.equal(splitTicketPath(`/t/${token}`), null);
  });
});
