import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { runRushgate } from '../helpers/proc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-cli-'));

test('keys new prints a fresh key entry as YAML', async () => {
  const a = await runRushgate(['keys', 'new', '--id', 'k2']);
  const b = await runRushgate(['keys', 'new', '--id', 'k2']);
  assert.equal(a.code, 0, a.stderr);
  const [entry] = parse(a.stdout) as { id: string; key: string }[];
  assert.equal(entry?.id, 'k2');
  assert.equal(Buffer.from(entry?.key ?? '', 'base64url').length, 32);
  assert.notEqual(a.stdout, b.stdout, 'keys must be random');
  assert.equal((await runRushgate(['keys', 'new', '--id', 'bad id!'])).code, 2);
});

test('config check: valid file → exit 0, resolved and masked', async () => {
  const key = (parse((await runRushgate(['keys', 'new'])).stdout) as { key: string }[])[0]!.key;
  const root = path.join(dir, 'content');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(root, { recursive: true });
  const file = path.join(dir, 'ok.yaml');
  writeFileSync(
    file,
    `secrets:
  ticketKeys: [{ id: k1, key: "${key}" }]
  internalToken: "\${RG_TEST_TOKEN}"
contentServers:
  - { id: a, publicUrl: "http://127.0.0.1:8081", internalUrl: "http://127.0.0.1:9081", listen: "127.0.0.1:8081", internalListen: "127.0.0.1:9081", root: ./content }
`,
  );
  const r = await runRushgate(['config', 'check', '--config', file], {
    env: { RG_TEST_TOKEN: 'a-secret-internal-token' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    !r.stdout.includes(key) && !r.stdout.includes('a-secret-internal-token'),
    'secrets must be masked',
  );
  const printed = parse(r.stdout) as {
    reception: { tickets: { ttlSeconds: number } };
    contentServers: { root: string }[];
  };
  assert.equal(printed.reception.tickets.ttlSeconds, 600);
  assert.equal(printed.contentServers[0]?.root, root);
});

test('config check: invalid file → exit 2, the key named on stderr, no stack trace', async () => {
  const file = path.join(dir, 'bad.yaml');
  writeFileSync(
    file,
    'secrets: { ticketKeys: [{ id: k1, key: nope }], internalToken: short }\ncontentServers: []\nbogus: 1\n',
  );
  const r = await runRushgate(['config', 'check', '--config', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /secrets\.ticketKeys\[0\]\.key: .*32 bytes/);
  assert.match(r.stderr, /secrets\.internalToken: /);
  assert.match(r.stderr, /contentServers: needs at least one/);
  assert.match(r.stderr, /bogus: unknown key/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '');
});

test('usage errors exit 2', async () => {
  assert.equal((await runRushgate(['config', 'check'])).code, 2);
  assert.equal((await runRushgate(['no-such-command'])).code, 2);
  assert.equal((await runRushgate(['--help'])).code, 0);
});
