/**
 * A content server's life around its transfers, against real `rushgate content` processes:
 * transfer events reach a fake reception even when it was down for a few seconds (retried, each
 * event once), an idle unfinished ticket is reported `abandoned`, SIGTERM drains (load report
 * `draining`, new transfers 503, the transfer in flight completes, its events are flushed, exit
 * 0), a too-short grace period cuts a stalled transfer and still exits 0, and a taken listen
 * port exits 2 naming the address.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { LoadReport } from '../../src/protocol/internal.js';
import {
  eventually,
  type FakeReception,
  fakeReception,
  mint,
  request,
  serverOf,
  startContent,
  ticketPath,
} from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import { type Proc, runRushgate } from '../helpers/proc.js';

const ITEM = randomBytes(512 * 1024);
/** Larger than loopback socket buffers can absorb, so a client that stops reading stays in transfer. */
const BIG = Buffer.alloc(64 * 1024 * 1024, 3);

let dep: TestDeployment;
let reception: FakeReception;

before(async () => {
  dep = await makeDeployment({ servers: 1, reception: { tickets: { policy: 'expiring', claimSeconds: 1 } } });
  dep.writeItem('/item.bin', ITEM);
  dep.writeItem('/big.bin', BIG);
  reception = fakeReception(dep.config);
});

after(async () => {
  await reception?.stop();
  dep?.cleanup();
});

const urlOf = (path: string) => {
  const t = mint(dep.config, { path });
  return { ...t, url: `${serverOf(dep.config, 'a').publicUrl}${ticketPath(t.token, path)}` };
};

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${serverOf(dep.config, 'a').internalUrl}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Starts a GET that reads the response head and then stops reading. */
function stalledDownload(url: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.pause();
      resolve({ res, req });
    });
    req.on('error', reject);
  });
}

describe('events and abandonment', () => {
  let proc: Proc;
  before(async () => {
    proc = await startContent(dep.config, dep.configPath, 'a');
  });
  after(async () => {
    await proc?.kill('SIGKILL');
  });

  test('events reach the reception after it was down for a few seconds, each once', async () => {
    const t = urlOf('/item.bin');
    const r = await request(t.url);
    assert.equal(r.status, 200);
    // The reception is down: the reporter keeps failing and keeps the events.
    await eventually(
      async () => (await metric('rushgate_content_event_batch_failures_total')) >= 2,
      10_000,
      'retries',
    );
    assert.ok((await metric('rushgate_content_event_outbox')) >= 2);
    await new Promise((res) => setTimeout(res, 1500)); // the outage lasts a few seconds in all
    await reception.start();
    const fulfilled = await eventually(
      () => reception.events.find((e) => e.jti === t.claims.jti && e.type === 'fulfilled'),
      10_000,
      'fulfilled event after the outage',
    );
    assert.equal(fulfilled.delivered, ITEM.length);
    const mine = reception.events.filter((e) => e.jti === t.claims.jti);
    assert.deepEqual(
      mine.map((e) => e.type),
      ['started', 'fulfilled'],
    );
    assert.equal(new Set(reception.events.map((e) => e.id)).size, reception.events.length, 'ids unique');
    await eventually(async () => (await metric('rushgate_content_event_outbox')) === 0, 5000, 'outbox empty');
  });

  test('a ticket left idle with bytes missing is reported abandoned after claimSeconds', async () => {
    const t = urlOf('/item.bin');
    const half = await request(t.url, { headers: { range: 'bytes=0-1023' } });
    assert.equal(half.status, 206);
    const abandoned = await eventually(
      () => reception.events.find((e) => e.jti === t.claims.jti && e.type === 'abandoned'),
      10_000,
      'abandoned event',
    );
    assert.equal(abandoned.delivered, 1024);
    assert.equal(abandoned.size, ITEM.length);
    // The client comes back with the still-valid ticket: started again, and the bytes add up.
    const rest = await request(t.url, { headers: { range: 'bytes=1024-' } });
    assert.equal(rest.status, 206);
    await eventually(
      () => reception.events.find((e) => e.jti === t.claims.jti && e.type === 'fulfilled'),
      5000,
      'fulfilled after coming back',
    );
    assert.equal(reception.events.filter((e) => e.jti === t.claims.jti && e.type === 'started').length, 2);
  });
});

describe('shutdown', () => {
  test('SIGTERM drains: draining reported, newcomers 503, the transfer in flight completes, exit 0', async () => {
    const proc = await startContent(dep.config, dep.configPath, 'a');
    try {
      const t = urlOf('/big.bin');
      const { res } = await stalledDownload(t.url);
      proc.child.kill('SIGTERM');
      const internal = serverOf(dep.config, 'a').internalUrl;
      await eventually(
        async () => ((await (await fetch(`${internal}/load`)).json()) as LoadReport).draining,
        10_000,
        'draining',
      );
      const late = await request(urlOf('/item.bin').url, { closeWaitMs: 5000 });
      assert.equal(late.status, 503);
      assert.equal(JSON.parse(late.body.toString()).error.code, 'draining');
      assert.ok(Number(late.headers['retry-after']) >= 1);
      assert.equal(late.closed, true);
      // The client reads on: the transfer started before SIGTERM completes.
      const hash = createHash('sha256');
      let bytes = 0;
      await new Promise<void>((resolve, reject) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', resolve);
        res.on('error', reject);
        res.resume();
      });
      assert.equal(bytes, BIG.length);
      assert.equal(hash.digest('hex'), createHash('sha256').update(BIG).digest('hex'));
      assert.equal(await proc.exited, 0, proc.output());
      // The outbox was flushed before exit.
      assert.ok(reception.events.some((e) => e.jti === t.claims.jti && e.type === 'fulfilled'));
    } finally {
      await proc.kill('SIGKILL');
    }
  });

  test('a grace period that runs out cuts the stalled transfer and still exits 0', async () => {
    const proc = await startContent(dep.config, dep.configPath, 'a', ['--grace-seconds', '1']);
    try {
      const { res } = await stalledDownload(urlOf('/big.bin').url);
      proc.child.kill('SIGTERM');
      assert.equal(await proc.exited, 0, proc.output());
      // Reading on finds the body cut short.
      let bytes = 0;
      await new Promise<void>((resolve) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('close', resolve);
        res.on('error', () => resolve());
        res.resume();
      });
      assert.ok(bytes < BIG.length, `${bytes} bytes`);
    } finally {
      await proc.kill('SIGKILL');
    }
  });

  test('a taken listen port exits 2 and names the address', async () => {
    for (const key of ['listen', 'internalListen'] as const) {
      const address = serverOf(dep.config, 'a')[key];
      const [host, port] = address.split(':') as [string, string];
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(Number(port), host, resolve));
      try {
        const r = await runRushgate(['content', '--config', dep.configPath, '--id', 'a'], {
          timeoutMs: 30_000,
        });
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`${address.replaceAll('.', '\\.')} \\(contentServers\\[0\\]\\.${key}\\)`),
        );
        assert.match(r.stderr, /address already in use/);
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()));
      }
    }
  });

  test('usage errors exit 2', async () => {
    const r = await runRushgate(['content', '--config', dep.configPath, '--id', 'nope']);
    assert.equal(r.code, 2);
    const g = await runRushgate([
      'content',
      '--config',
      dep.configPath,
      '--id',
      'a',
      '--grace-seconds',
      'soon',
    ]);
    assert.equal(g.code, 2);
  });
});
