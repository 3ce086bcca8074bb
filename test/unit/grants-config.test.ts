/** The deployment file's `reception.grants` (CONTRACT §2, §7): shapes, defaults and refusals. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { maskSecrets } from '../../src/config/keys.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { compileGlob } from '../../src/grants/item-globs.js';

const base = (grants: unknown) => ({
  secrets: {
    ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
    internalToken: 'x'.repeat(16),
  },
  reception: { grants },
  contentServers: [
    {
      id: 'a',
      publicUrl: 'http://a.test',
      internalUrl: 'http://a.test:1',
      listen: '127.0.0.1:1',
      internalListen: '127.0.0.1:2',
    },
  ],
});

const problems = (grants: unknown): string => {
  try {
    parseConfig(base(grants), { baseDir: '/d' });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.join('\n');
  }
  assert.fail('expected a ConfigError');
};

test('grants: required defaults to /paid/**, jwks resolves against the file, secrets are masked', () => {
  const c = parseConfig(
    base({
      issuers: [
        { iss: 'https://s', jwks: 'keys/jwks.json' },
        { iss: 'https://h', secret: 's'.repeat(32) },
      ],
    }),
    { baseDir: '/d' },
  );
  assert.deepEqual(c.reception.grants?.required, ['/paid/**']);
  assert.equal(c.reception.grants?.issuers[0]?.jwks, '/d/keys/jwks.json');
  assert.equal(maskSecrets(c).reception.grants?.issuers[1]?.secret, '********');
  assert.equal(parseConfig(base(undefined), { baseDir: '/d' }).reception.grants, undefined);
});

test('grants: refused shapes name the key and the reason', () => {
  assert.match(problems({ issuers: [] }), /grants\.issuers.*at least one issuer/);
  assert.match(problems({ issuers: [{ iss: 'https://s' }] }), /exactly one of "jwks".*"secret"/);
  assert.match(
    problems({ issuers: [{ iss: 'https://s', jwks: 'a', secret: 's'.repeat(32) }] }),
    /exactly one/,
  );
  assert.match(problems({ issuers: [{ iss: 'https://s', secret: 'short' }] }), /at least 32 bytes/);
  assert.match(
    problems({ required: ['paid'], issuers: [{ iss: 'https://s', secret: 's'.repeat(32) }] }),
    /glob/,
  );
  assert.match(problems({ issuers: [{ iss: 'https://s', secret: 's'.repeat(32), extra: 1 }] }), /extra/);
});

test('item globs: ** across segments, * within one', () => {
  assert.ok(compileGlob('/paid/**')('/paid/a/b.bin'));
  assert.ok(!compileGlob('/paid/**')('/paidx/a.bin'));
  assert.ok(compileGlob('/paid/*.bin')('/paid/a.bin'));
  assert.ok(!compileGlob('/paid/*.bin')('/paid/x/a.bin'));
  assert.ok(compileGlob('**')('/anything'));
  assert.ok(compileGlob('/a.(b)+c')('/a.(b)+c'));
  assert.ok(!compileGlob('/a.b')('/aXb'));
});
