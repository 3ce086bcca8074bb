/**
 * `rushgate up --config FILE` (CONTRACT §1): the reception and every content server of a
 * deployment file as child processes, their log lines prefixed by role; a content server killed
 * with SIGKILL is restarted and serves again; SIGTERM shuts everything down gracefully (exit 0).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { utimesSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { readReadyFile } from '../helpers/ports.js';
import { runRushgate, startRushgate, waitForHttp } from '../helpers/proc.js';
import { alive, childrenOf, readJsonLine, waitForItem, waitUntil } from './get-harness.js';

const ITEM = '/pkg/tool.tar';
const BODY = randomBytes(256 * 1024);

let dep: TestDeployment;

before(async () => {
  dep = await makeDeployment({
    servers: 2,
    reception: { monitor: { intervalMs: 200, timeoutMs: 3000, failuresBeforeDown: 5 }, rateLimit: null },
  });
  dep.writeItem(ITEM, BODY);
  const past = new Date(Date.now() - 3600_000);
  for (const s of dep.config.contentServers) utimesSync(path.join(s.root, 'pkg', 'tool.tar'), past, past);
});

after(() => {
  dep?.cleanup();
});

function canBind(address: string): Promise<boolean> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port: Number(port), exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

test('runs every role, restarts a crashed one, and stops gracefully', { timeout: 120_000 }, async () => {
  const readyFile = path.join(dep.dir, 'up.ready.json');
  const up = startRushgate(
    ['up', '--config', dep.configPath, '--grace-seconds', '2', '--ready-file', readyFile],
    { env: { LOG_LEVEL: 'info' } },
  );
  const reception = dep.config.reception;
  let children: number[] = [];
  try {
    await waitForHttp(`${reception.publicUrl}/healthz`, { proc: up, timeoutMs: 60_000 });
    // The ready file names every role's bound addresses: the deployment's own ports here.
    const ready = await readReadyFile(readyFile, 60_000);
    assert.equal(ready.role, 'up');
    assert.equal(ready.pid, up.child.pid);
    assert.deepEqual(ready.reception, { public: reception.publicUrl, internal: reception.internalUrl });
    for (const s of dep.config.contentServers) {
      assert.deepEqual(ready.contentServers?.[s.id], { public: s.publicUrl, internal: s.internalUrl });
    }
    await waitForItem(`${reception.publicUrl}${ITEM}`);
    // Each role's log lines arrive prefixed with its name (the reception may be ready before b logs).
    for (const role of ['reception', 'content a', 'content b']) {
      await waitUntil(
        () => new RegExp(`^\\[${role}\\] \\{`, 'm').test(up.output()),
        30_000,
        `${role} log lines`,
      );
    }
    assert.match(up.output(), new RegExp(`npx rushgate get ${reception.publicUrl}/<item path>`));

    const before = childrenOf(up.child.pid!);
    assert.equal(before.size, 3, [...before.values()].join('\n'));
    const [victimPid] = [...before].find(([, args]) => /content .* --id a( |$)/.test(args)) ?? [];
    assert.ok(victimPid, 'content a runs as a child');
    process.kill(victimPid, 'SIGKILL');
    await waitUntil(
      () => /\[up\] content a exited \(SIGKILL\); restarting in/.test(up.output()),
      30_000,
      'restart',
    );
    await waitUntil(
      () =>
        [...childrenOf(up.child.pid!)].some(([pid, args]) => pid !== victimPid && /--id a( |$)/.test(args)),
      30_000,
      'a new content a',
    );
    const a = dep.config.contentServers.find((s) => s.id === 'a')!;
    await waitForHttp(`${a.internalUrl}/healthz`, { timeoutMs: 30_000 });

    const got = await runRushgate([
      'get',
      `${reception.publicUrl}${ITEM}`,
      '--json',
      '-o',
      path.join(dep.dir, 'tool.tar'),
    ]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(readJsonLine(got.stdout).sha256, createHash('sha256').update(BODY).digest('hex'));
    children = [...childrenOf(up.child.pid!).keys()];
    assert.equal(children.length, 3);
  } finally {
    up.child.kill('SIGTERM');
  }
  assert.equal(await up.exited, 0, up.output());
  assert.deepEqual(
    children.filter((pid) => alive(pid)),
    [],
    'every child has stopped',
  );
  const addresses = [
    reception.listen,
    reception.internalListen,
    ...dep.config.contentServers.flatMap((s) => [s.listen, s.internalListen]),
  ];
  // Ports come from the OS's ephemeral range, so another process may use one as soon as it is
  // free; a port we can bind proves the child let go, one we cannot bind proves nothing.
  const free = await Promise.all(addresses.map(canBind));
  console.log(`# ports free after shutdown: ${free.filter(Boolean).length}/${addresses.length}`);
});
