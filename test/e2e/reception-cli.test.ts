/**
 * `rushgate reception` as a process: a taken listen port exits 2 with a message naming it, and
 * SIGTERM shuts it down cleanly (exit 0) while a content server keeps running.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { runRushgate, startRushgate, waitForHttp } from '../helpers/proc.js';

describe('rushgate reception (process)', { timeout: 180_000 }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function deployment(): Promise<TestDeployment> {
    const d = await makeDeployment({ servers: 1, reception: { monitor: { intervalMs: 100 } } });
    cleanups.push(() => d.cleanup());
    d.writeItem('/x.txt', 'x');
    return d;
  }

  it('exits 2 naming the port when its listen port is taken', async () => {
    const d = await deployment();
    const [host, port] = d.config.reception.listen.split(':') as [string, string];
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(port), host, resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const r = await runRushgate(['reception', '--config', d.configPath], { timeoutMs: 60_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `reception\\.listen: port ${d.config.reception.listen.replace(/\./g, '\\.')} is already in use`,
      ),
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('shuts down on SIGTERM with exit 0', async () => {
    const d = await deployment();
    const content = startRushgate(['content', '--config', d.configPath, '--id', 'a']);
    cleanups.push(async () => {
      await content.kill();
    });
    const reception = startRushgate(['reception', '--config', d.configPath]);
    cleanups.push(async () => {
      await reception.kill('SIGKILL');
    });
    await waitForHttp(`${d.config.reception.publicUrl}/healthz`, { proc: reception, timeoutMs: 60_000 });
    const order = await fetch(`${d.config.reception.publicUrl}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"item":"/x.txt"}',
    });
    assert.equal(order.status, 201);
    assert.equal(await reception.kill('SIGTERM'), 0, reception.output());
  });
});
