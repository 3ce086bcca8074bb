/**
 * The pure parts of `rushgate up`: the example deployment's ports and file (valid against the
 * deployment schema, capacities small enough for a demo rush), the deterministic sample file,
 * the supervisor's restart backoff, the port check, and the banner it prints.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { EXAMPLE_ITEMS, exampleDeployment, examplePorts, writeSampleFile } from '../../src/deploy/example.js';
import { unavailableListens } from '../../src/deploy/ports.js';
import { DEFAULT_BACKOFF, restartDelayMs } from '../../src/deploy/supervisor.js';
import { banner } from '../../src/deploy/up.js';
import { UsageError } from '../../src/errors.js';

const secrets = {
  ticketKeys: [{ id: 'k1', key: Buffer.alloc(32, 7).toString('base64url') }],
  internalToken: 'x'.repeat(24),
};

test('example ports: 8080/9080 for the reception, 8081–8083 and 9081–9083 for a, b, c', () => {
  assert.deepEqual(examplePorts(8080), {
    reception: { listen: 8080, internal: 9080 },
    servers: [
      { id: 'a', listen: 8081, internal: 9081 },
      { id: 'b', listen: 8082, internal: 9082 },
      { id: 'c', listen: 8083, internal: 9083 },
    ],
  });
  assert.throws(() => examplePorts(65000), UsageError);
  assert.throws(() => examplePorts(0), UsageError);
});

test('the example deployment is a valid deployment file with a SQLite store and small capacities', () => {
  const dataDir = '/srv/rushgate-data';
  const config = parseConfig(exampleDeployment(secrets, dataDir, 8080), { baseDir: dataDir });
  assert.equal(config.reception.listen, '127.0.0.1:8080');
  assert.equal(config.reception.internalListen, '127.0.0.1:9080');
  assert.equal(config.reception.publicUrl, 'http://127.0.0.1:8080');
  assert.equal(config.reception.store, `sqlite:${dataDir}/reception.db`);
  assert.deepEqual(
    config.contentServers.map((s) => [s.id, s.listen, s.capacity, s.root]),
    [
      ['a', '127.0.0.1:8081', 2, `${dataDir}/content`],
      ['b', '127.0.0.1:8082', 2, `${dataDir}/content`],
      ['c', '127.0.0.1:8083', 2, `${dataDir}/content`],
    ],
  );
  assert.equal(config.reception.rateLimit, null);
});

test('the sample file: exact size, deterministic, not a run of zeros', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-sample-'));
  try {
    const a = path.join(dir, 'a.bin');
    const b = path.join(dir, 'b.bin');
    const size = 3 * 1024 * 1024 + 12_345;
    writeSampleFile(a, size);
    writeSampleFile(b, size);
    assert.equal(statSync(a).size, size);
    const bytes = readFileSync(a);
    assert.ok(bytes.equals(readFileSync(b)), 'same bytes every time');
    assert.ok(
      !bytes.subarray(0, 1024 * 1024).equals(bytes.subarray(1024 * 1024, 2 * 1024 * 1024)),
      'no two MiB alike',
    );
    assert.ok(bytes.some((x) => x !== 0));
    assert.equal(createHash('sha256').update(bytes).digest('hex').length, 64);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restart backoff: doubles from the initial delay, capped', () => {
  assert.equal(restartDelayMs(1), DEFAULT_BACKOFF.initialMs);
  assert.equal(restartDelayMs(2), DEFAULT_BACKOFF.initialMs * 2);
  assert.equal(restartDelayMs(3), DEFAULT_BACKOFF.initialMs * 4);
  assert.equal(restartDelayMs(50), DEFAULT_BACKOFF.maxMs);
  assert.equal(restartDelayMs(1, { initialMs: 100, maxMs: 250, resetAfterMs: 1 }), 100);
  assert.equal(restartDelayMs(3, { initialMs: 100, maxMs: 250, resetAfterMs: 1 }), 250);
});

test('port check: names a taken port and a port used twice', async () => {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (srv.address() as { port: number }).port;
  try {
    const problems = await unavailableListens([
      { name: 'reception.listen', address: `127.0.0.1:${port}` },
      { name: 'x', address: '127.0.0.1:0' },
    ]);
    assert.deepEqual(problems, [
      { name: 'reception.listen', address: `127.0.0.1:${port}`, reason: 'in use' },
    ]);
  } finally {
    srv.close();
  }
  const twice = await unavailableListens([
    { name: 'one', address: '127.0.0.1:0' },
    { name: 'a', address: '127.0.0.1:1' },
    { name: 'b', address: '127.0.0.1:1' },
  ]);
  assert.ok(twice.some((p) => p.name === 'b' && /also used by a/.test(p.reason)));
});

test('the banner: reception, dashboard, metrics and a ready-to-paste get line', () => {
  const config = parseConfig(exampleDeployment(secrets, '/d', 8080), { baseDir: '/d' });
  const text = banner(config, { dataDir: '/d' }).join('\n');
  assert.match(text, /reception +http:\/\/127\.0\.0\.1:8080/);
  assert.match(text, /http:\/\/127\.0\.0\.1:9080\/dashboard/);
  assert.match(text, /http:\/\/127\.0\.0\.1:9080\/metrics/);
  assert.ok(text.includes(`npx rushgate get http://127.0.0.1:8080${EXAMPLE_ITEMS.small}`));
  assert.ok(text.includes(`npx rushgate rush http://127.0.0.1:8080${EXAMPLE_ITEMS.large}`));
});

test('the demo shop: /paid/** needs a grant, and the banner prints a get line with a grant that verifies', async () => {
  const { verifyGrant } = await import('../../src/grants/verify.js');
  const { secretKeys } = await import('../../src/grants/issuer-keys.js');
  const { DEMO_SHOP_ISS } = await import('../../src/deploy/example.js');
  const shopSecret = 's'.repeat(43);
  const config = parseConfig(exampleDeployment(secrets, '/d', 8080, shopSecret), { baseDir: '/d' });
  assert.deepEqual(config.reception.grants?.required, ['/paid/**']);
  const now = 1_700_000_000_000;
  const text = banner(config, { dataDir: '/d' }, now).join('\n');
  const m = new RegExp(
    `npx rushgate get http://127\\.0\\.0\\.1:8080${EXAMPLE_ITEMS.paid} --grant (\\S+)`,
  ).exec(text);
  assert.ok(m, text);
  const verdict = await verifyGrant(m[1]!, {
    issuers: new Map([[DEMO_SHOP_ISS, secretKeys(shopSecret)]]),
    nowMs: now,
    clockSkewSeconds: 0,
  });
  assert.ok(verdict.ok, JSON.stringify(verdict));
  assert.deepEqual(verdict.claims.items, [EXAMPLE_ITEMS.paid]);
  // Without the demo shop, no paid line.
  const plain = parseConfig(exampleDeployment(secrets, '/d', 8080), { baseDir: '/d' });
  assert.doesNotMatch(banner(plain, { dataDir: '/d' }).join('\n'), /--grant/);
});
