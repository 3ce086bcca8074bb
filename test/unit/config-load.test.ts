import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { maskSecrets } from '../../src/config/keys.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { parseListen, urlOfListen } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

const KEY = Buffer.alloc(32, 7).toString('base64url');
const TOKEN = 'internal-token-0123456789';

function minimal(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    secrets: { ticketKeys: [{ id: 'k1', key: KEY }], internalToken: TOKEN },
    contentServers: [
      {
        id: 'a',
        publicUrl: 'http://127.0.0.1:8081',
        internalUrl: 'http://127.0.0.1:9081',
        listen: '127.0.0.1:8081',
        internalListen: '127.0.0.1:9081',
      },
    ],
    ...overrides,
  };
}

/** Asserts that parsing fails and that one problem line names `key` and matches `reason`. */
function rejects(input: unknown, key: string, reason: RegExp, options = {}): void {
  try {
    parseConfig(input, { baseDir: '/', ...options });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    const line = err.problems.find((p) => p.startsWith(`${key}:`));
    assert.ok(line, `no problem names ${key}; got:\n${err.problems.join('\n')}`);
    assert.match(line, reason);
    return;
  }
  assert.fail(`expected ${key} to be rejected`);
}

describe('defaults', () => {
  test('every default of CONTRACT §2 is filled in', () => {
    const c = parseConfig(minimal(), { baseDir: '/srv' });
    assert.deepEqual(
      { ...c.reception, mail: undefined },
      {
        listen: '127.0.0.1:8080',
        internalListen: '127.0.0.1:9080',
        publicUrl: 'http://127.0.0.1:8080',
        internalUrl: 'http://127.0.0.1:9080',
        store: 'sqlite:/srv/data/reception.db',
        trustProxy: [],
        tls: null,
        rateLimit: { perSecond: 20, burst: 60 },
        monitor: { intervalMs: 500, timeoutMs: 1000, failuresBeforeDown: 3 },
        allocation: { tieTolerance: 0.05 },
        tickets: {
          policy: 'strict',
          ttlSeconds: 600,
          startDelaySeconds: 0,
          bindClientAddress: true,
          bindPrefix: { ipv4: 32, ipv6: 64 },
          claimSeconds: 30,
          claimSecondsWhileWaiting: 2,
          maxTicketsPerOrder: 5,
          clockSkewSeconds: 30,
        },
        queue: {
          enabled: true,
          holdSeconds: 15,
          maxRetryAfterSeconds: 30,
          abandonSeconds: 120,
          maxLength: 1_000_000,
        },
        limits: { ticketsPerClient: 8, placesPerClient: 8 },
        retention: 7 * 24 * 60 * 60 * 1000,
        mail: undefined,
      },
    );
    assert.equal(c.reception.mail, undefined);
    const [a] = c.contentServers;
    assert.equal(a?.root, '/srv/data/content');
    assert.equal(a?.capacity, 50);
    assert.equal(a?.memoryLimitMb, null);
    assert.equal(a?.distance, null);
    assert.equal(a?.tls, null);
    assert.deepEqual(a?.trustProxy, []);
  });

  test('tls paths resolve against the file folder; trustProxy takes addresses and CIDRs', () => {
    const input = minimal({ reception: { tls: { cert: 'tls/c.pem', key: '/etc/k.pem' } } });
    const server = (input.contentServers as Record<string, unknown>[])[0] as Record<string, unknown>;
    server.tls = { cert: 'c.pem', key: 'k.pem' };
    server.trustProxy = ['10.0.0.0/8', '::1'];
    const c = parseConfig(input, { baseDir: '/srv' });
    assert.deepEqual(c.reception.tls, { cert: '/srv/tls/c.pem', key: '/etc/k.pem' });
    assert.deepEqual(c.contentServers[0]?.tls, { cert: '/srv/c.pem', key: '/srv/k.pem' });
    assert.deepEqual(c.contentServers[0]?.trustProxy, ['10.0.0.0/8', '::1']);
    server.trustProxy = ['not-an-address'];
    assert.throws(() => parseConfig(input), /contentServers\.0\.trustProxy|contentServers\[0\]\.trustProxy/);
  });

  test('bindClientAddress defaults to true only under strict', () => {
    for (const policy of ['open', 'expiring', 'window'] as const) {
      const c = parseConfig(minimal({ reception: { tickets: { policy } } }), { baseDir: '/' });
      assert.equal(c.reception.tickets.bindClientAddress, false, policy);
    }
    const c = parseConfig(minimal({ reception: { tickets: { policy: 'window', bindClientAddress: true } } }));
    assert.equal(c.reception.tickets.bindClientAddress, true);
  });

  test('rateLimit null turns it off; other stores pass through', () => {
    const c = parseConfig(minimal({ reception: { rateLimit: null, store: 'redis://127.0.0.1:6379/0' } }));
    assert.equal(c.reception.rateLimit, null);
    assert.equal(c.reception.store, 'redis://127.0.0.1:6379/0');
  });

  test('a trailing slash on URLs is dropped; IPv6 listen addresses work', () => {
    const c = parseConfig(
      minimal({ reception: { publicUrl: 'http://shop.example/', internalListen: '[::1]:9999' } }),
    );
    assert.equal(c.reception.publicUrl, 'http://shop.example');
    assert.equal(c.reception.internalUrl, 'http://[::1]:9999');
  });
});

describe('${NAME} expansion', () => {
  test('replaces variables from the environment, whole values and inside strings', () => {
    const input = minimal();
    (input.secrets as Record<string, unknown>).internalToken = '${RG_TOKEN}';
    input.reception = { publicUrl: 'http://${RG_HOST}:8080' };
    const c = parseConfig(input, { env: { RG_TOKEN: 'from-the-environment-123', RG_HOST: 'shop.example' } });
    assert.equal(c.secrets.internalToken, 'from-the-environment-123');
    assert.equal(c.reception.publicUrl, 'http://shop.example:8080');
  });

  test('an unset variable is an error naming the key', () => {
    const input = minimal();
    (input.secrets as Record<string, unknown>).internalToken = '${RG_UNSET_TOKEN}';
    rejects(input, 'secrets.internalToken', /RG_UNSET_TOKEN is not set/, { env: {} });
  });
});

describe('bad values name the key and the reason', () => {
  test('unknown keys, at the top and deep', () => {
    rejects(minimal({ extra: 1 }), 'extra', /unknown key/);
    rejects(minimal({ reception: { tickets: { polcy: 'open' } } }), 'reception.tickets.polcy', /unknown key/);
    const input = minimal();
    (input.contentServers as Record<string, unknown>[])[0]!.weight = 3;
    rejects(input, 'contentServers[0].weight', /unknown key/);
  });

  test('wrong types', () => {
    rejects(
      minimal({ reception: { monitor: { intervalMs: '500' } } }),
      'reception.monitor.intervalMs',
      /must be number/,
    );
    rejects(
      minimal({ reception: { queue: { enabled: 'yes' } } }),
      'reception.queue.enabled',
      /must be boolean/,
    );
    rejects(minimal({ contentServers: 'a' }), 'contentServers', /must be array/);
  });

  test('out of range, at each smallest value of CONTRACT §2', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ reception: { tickets: { ttlSeconds: 0 } } }, 'reception.tickets.ttlSeconds', /≥ 1/],
      [{ reception: { tickets: { claimSeconds: 0 } } }, 'reception.tickets.claimSeconds', /≥ 1/],
      [{ reception: { queue: { holdSeconds: 0 } } }, 'reception.queue.holdSeconds', /≥ 1/],
      [{ reception: { queue: { maxRetryAfterSeconds: 0 } } }, 'reception.queue.maxRetryAfterSeconds', /≥ 1/],
      [{ reception: { queue: { abandonSeconds: 0 } } }, 'reception.queue.abandonSeconds', /≥ 1/],
      [{ reception: { monitor: { intervalMs: 49 } } }, 'reception.monitor.intervalMs', /≥ 50/],
      [{ reception: { monitor: { timeoutMs: 49 } } }, 'reception.monitor.timeoutMs', /≥ 50/],
      [{ reception: { tickets: { bindPrefix: { ipv4: 33 } } } }, 'reception.tickets.bindPrefix.ipv4', /≤ 32/],
      [{ reception: { tickets: { policy: 'lax' } } }, 'reception.tickets.policy', /one of/],
    ];
    for (const [over, key, reason] of cases) rejects(minimal(over), key, reason);
    const input = minimal();
    (input.contentServers as Record<string, unknown>[])[0]!.capacity = 0;
    rejects(input, 'contentServers[0].capacity', /≥ 1/);
    // The smallest accepted values pass.
    parseConfig(
      minimal({
        reception: {
          tickets: { ttlSeconds: 1, claimSeconds: 1 },
          queue: { holdSeconds: 1, maxRetryAfterSeconds: 1, abandonSeconds: 1 },
          monitor: { intervalMs: 50, timeoutMs: 50 },
        },
      }),
    );
  });

  test('malformed addresses and URLs', () => {
    rejects(minimal({ reception: { listen: '127.0.0.1' } }), 'reception.listen', /host:port/);
    rejects(minimal({ reception: { listen: '127.0.0.1:99999' } }), 'reception.listen', /host:port/);
    rejects(minimal({ reception: { internalListen: '[::g]:80' } }), 'reception.internalListen', /host:port/);
    rejects(minimal({ reception: { publicUrl: 'ftp://x' } }), 'reception.publicUrl', /http/);
    rejects(minimal({ reception: { trustProxy: ['10.0.0.0/33'] } }), 'reception.trustProxy[0]', /CIDR/);
    rejects(minimal({ reception: { store: 'postgres://x' } }), 'reception.store', /memory:/);
    rejects(
      minimal({ reception: { mail: { smtp: 'http://x', from: 'a@b.c' } } }),
      'reception.mail.smtp',
      /smtp/,
    );
  });

  test('a ticket key that is not 32 bytes of base64url', () => {
    for (const key of [
      'short',
      Buffer.alloc(31).toString('base64url'),
      `${Buffer.alloc(32).toString('base64')}`,
      `${KEY}=`,
    ]) {
      rejects(
        minimal({ secrets: { ticketKeys: [{ id: 'k1', key }], internalToken: TOKEN } }),
        'secrets.ticketKeys[0].key',
        /32 bytes/,
      );
    }
  });

  test('duplicate server ids and key ids', () => {
    const input = minimal();
    const servers = input.contentServers as Record<string, unknown>[];
    servers.push({ ...servers[0]! });
    rejects(input, 'contentServers[1].id', /duplicate/);
    rejects(
      minimal({
        secrets: {
          ticketKeys: [
            { id: 'k', key: KEY },
            { id: 'k', key: KEY },
          ],
          internalToken: TOKEN,
        },
      }),
      'secrets.ticketKeys[1].id',
      /duplicate/,
    );
  });

  test('an item root that does not exist', () => {
    const input = minimal();
    (input.contentServers as Record<string, unknown>[])[0]!.root = '/nonexistent/rushgate/root';
    rejects(input, 'contentServers[0].root', /does not exist/, { checkRoots: 'all' });
    // A reception alone does not check the content servers' disks.
    parseConfig(input, { checkRoots: 'none' });
  });

  test('YAML syntax errors and unreadable files', () => {
    assert.throws(
      () => parseConfig('a: [1, 2'),
      (e: unknown) => e instanceof ConfigError && /YAML/.test(e.message),
    );
    assert.throws(
      () => loadConfigFile('/nonexistent/deploy.yaml'),
      (e: unknown) => e instanceof ConfigError && /cannot read/.test(e.message),
    );
  });
});

test('relative paths resolve against the file’s folder; JSON is YAML', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-cfg-'));
  const file = path.join(dir, 'deploy.json');
  writeFileSync(file, JSON.stringify(minimal({ reception: { store: 'sqlite:./state/r.db' } })));
  const c = loadConfigFile(file);
  assert.equal(c.reception.store, `sqlite:${path.join(dir, 'state/r.db')}`);
  assert.equal(c.contentServers[0]?.root, path.join(dir, 'data/content'));
});

test('masking hides every secret and keeps key ids', () => {
  const c = parseConfig(minimal({ reception: { store: 'redis://user:pw@127.0.0.1:6379/0' } }));
  const text = JSON.stringify(maskSecrets(c));
  assert.ok(!text.includes(KEY) && !text.includes(TOKEN) && !text.includes(':pw@'));
  assert.match(text, /"id":"k1"/);
});

test('listen parsing', () => {
  assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  assert.deepEqual(parseListen('[::]:80'), { host: '::', port: 80 });
  assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  assert.equal(parseListen(':80'), undefined);
  assert.equal(urlOfListen('0.0.0.0:9080'), 'http://127.0.0.1:9080');
  assert.equal(urlOfListen('[::]:9080'), 'http://[::1]:9080');
});

test('passwords in URL query strings and user-info are masked', () => {
  const c = parseConfig(
    minimal({
      reception: {
        store: 'redis://127.0.0.1:6379/0?password=hunter2&prefix=x:',
        mail: { smtp: 'smtp://u:pw@127.0.0.1:25?token=t0ken', from: 'a@example.com' },
      },
    }),
  );
  const text = JSON.stringify(maskSecrets(c));
  assert.ok(!text.includes('hunter2') && !text.includes('t0ken') && !text.includes(':pw@'), text);
  assert.match(text, /prefix=x:/);
});
