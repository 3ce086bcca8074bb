import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientAddressOf, isTrusted, trustedProxies } from '../../src/util/client-address.js';

describe('client address', () => {
  const none = trustedProxies([]);
  const proxies = trustedProxies(['10.0.0.0/8', '127.0.0.1', '::1']);

  it('is the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddressOf('203.0.113.9', '1.2.3.4', none), '203.0.113.9');
    assert.equal(clientAddressOf('::ffff:203.0.113.9', undefined, none), '203.0.113.9');
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', () => {
    assert.equal(clientAddressOf('198.51.100.1', '1.2.3.4', proxies), '198.51.100.1');
  });

  it('reads X-Forwarded-For from the right, skipping trusted hops', () => {
    assert.equal(clientAddressOf('127.0.0.1', '1.2.3.4', proxies), '1.2.3.4');
    assert.equal(clientAddressOf('127.0.0.1', '6.6.6.6, 1.2.3.4, 10.1.2.3', proxies), '1.2.3.4');
    assert.equal(clientAddressOf('::ffff:10.0.0.5', ['9.9.9.9', '10.0.0.7'], proxies), '9.9.9.9');
    assert.equal(clientAddressOf('::1', '2001:DB8::1', proxies), '2001:db8::1');
  });

  it('stops at garbage instead of believing it, and strips ports and brackets', () => {
    assert.equal(clientAddressOf('127.0.0.1', 'not-an-ip', proxies), '127.0.0.1');
    assert.equal(clientAddressOf('127.0.0.1', '1.2.3.4, bogus', proxies), '127.0.0.1');
    assert.equal(clientAddressOf('127.0.0.1', '1.2.3.4:5678', proxies), '1.2.3.4');
    assert.equal(clientAddressOf('127.0.0.1', '[2001:db8::2]:443', proxies), '2001:db8::2');
    assert.equal(clientAddressOf('127.0.0.1', '127.1', proxies), '127.0.0.1');
  });

  it('when every hop is trusted, the leftmost is the client', () => {
    assert.equal(clientAddressOf('127.0.0.1', '10.9.9.9, 10.0.0.1', proxies), '10.9.9.9');
  });

  it('matches IPv4-mapped IPv6 peers against IPv4 ranges', () => {
    assert.equal(isTrusted('::ffff:10.2.3.4', proxies), true);
    assert.equal(isTrusted('11.2.3.4', proxies), false);
    assert.equal(isTrusted('::ffff:127.0.0.1', trustedProxies(['::ffff:127.0.0.1'])), true);
  });
});
