/**
 * `--ready-file` (README, CLI): `rushgate content` and `rushgate reception` started on port 0
 * write the addresses they actually bound, and those addresses answer. This is how tests (and
 * supervisors) learn ports without guessing a free one that another process could take first.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { makeDeployment } from '../helpers/deployment.js';
import { readReadyFile } from '../helpers/ports.js';
import { startRushgate, waitForHttp } from '../helpers/proc.js';

test('content and reception on port 0 report the ports they bound', { timeout: 90_000 }, async () => {
  const d = await makeDeployment({ servers: 1 });
  const doc = parse(readFileSync(d.configPath, 'utf8')) as {
    reception: Record<string, unknown>;
    contentServers: Record<string, unknown>[];
  };
  doc.reception.listen = '127.0.0.1:0';
  doc.reception.internalListen = '127.0.0.1:0';
  doc.contentServers[0]!.listen = '127.0.0.1:0';
  doc.contentServers[0]!.internalListen = '127.0.0.1:0';
  const file = path.join(d.dir, 'port-zero.yaml');
  writeFileSync(file, stringify(doc));
  const contentReady = path.join(d.dir, 'content.ready.json');
  const receptionReady = path.join(d.dir, 'reception.ready.json');
  const content = startRushgate(['content', '--config', file, '--id', 'a', '--ready-file', contentReady]);
  const reception = startRushgate(['reception', '--config', file, '--ready-file', receptionReady]);
  try {
    const c = await readReadyFile(contentReady);
    const r = await readReadyFile(receptionReady);
    assert.equal(c.role, 'content');
    assert.equal(c.pid, content.child.pid);
    assert.equal(r.role, 'reception');
    assert.equal(r.pid, reception.child.pid);
    const a = c.contentServers?.a;
    assert.ok(a && r.reception);
    for (const url of [a.public, a.internal, r.reception.public, r.reception.internal]) {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(new URL(url).port, '0');
    }
    await waitForHttp(`${a.internal}/healthz`, { proc: content });
    await waitForHttp(`${r.reception.internal}/healthz`, { proc: reception, statuses: [200, 503] });
    await waitForHttp(`${r.reception.public}/healthz`, { proc: reception, statuses: [200, 503] });
  } finally {
    await Promise.all([content.kill(), reception.kill()]);
    d.cleanup();
  }
});
