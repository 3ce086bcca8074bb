/**
 * Constant memory while streaming (issue 3): a real `rushgate content` process serves a 4 GiB
 * sparse file to a client that reads it all, while the test samples the server's resident memory
 * through its load report. The growth over the idle baseline must stay under 64 MiB; the measured
 * numbers are printed. The catalog hashes the file at start (sparse reads are fast, the SHA-256
 * takes a few seconds), so the start is given time.
 */
import assert from 'node:assert/strict';
import { truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { LoadReport } from '../../src/protocol/internal.js';
import { serverOf, startContent } from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import type { Proc } from '../helpers/proc.js';

const SIZE = 4 * 1024 ** 3;
const MiB = 1024 * 1024;

let dep: TestDeployment;
let proc: Proc;

before(async () => {
  dep = await makeDeployment({ servers: 1, reception: { tickets: { policy: 'open' } } });
  const file = path.join(serverOf(dep.config, 'a').root, 'huge.bin');
  writeFileSync(file, '');
  truncateSync(file, SIZE);
  // Hashing 4 GiB takes seconds on an idle machine and much longer on a busy shared one.
  proc = await startContent(dep.config, dep.configPath, 'a', [], 150_000);
});

after(async () => {
  await proc?.kill('SIGKILL');
  dep?.cleanup();
});

async function rss(): Promise<number> {
  const r = (await (
    await fetch(`${serverOf(dep.config, 'a').internalUrl}/load?catalogSince=x`)
  ).json()) as LoadReport;
  return r.rssBytes;
}

test('streaming a 4 GiB sparse file keeps the server memory flat', { timeout: 120_000 }, async () => {
  const baseline = await rss();
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const started = Date.now();
  // A raw socket that only counts bytes: an HTTP client parsing 4 GiB would cost more CPU than
  // the server on this shared machine, and the test is about the server.
  const received = await new Promise<number>((resolve, reject) => {
    const { hostname, port } = new URL(serverOf(dep.config, 'a').publicUrl);
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`GET /huge.bin HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
    });
    let head = Buffer.alloc(0);
    let body = -1;
    socket.on('data', (c: Buffer) => {
      if (body >= 0) {
        body += c.length;
        return;
      }
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      assert.match(head.subarray(0, end).toString(), /^HTTP\/1\.1 200 /);
      body = head.length - end - 4;
    });
    socket.on('end', () => resolve(body));
    socket.on('error', reject);
  });
  const seconds = (Date.now() - started) / 1000;
  sampling = false;
  await sampler;
  peak = Math.max(peak, await rss());
  const growth = peak - baseline;
  console.log(
    `4 GiB streamed in ${seconds.toFixed(1)} s (${(SIZE / MiB / seconds).toFixed(0)} MiB/s); ` +
      `server RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, ` +
      `growth ${(growth / MiB).toFixed(1)} MiB (limit 64 MiB)`,
  );
  assert.equal(received, SIZE);
  assert.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
});
