/**
 * Hostile use of one ticket on a real `rushgate content` process (issue 10, CONTRACT §4): under
 * `expiring` a ticket URL posted in public is a key anyone can use, so 50 parallel connections on
 * one ticket must get at most `connectionsPerTicket` (8) transfers, the rest `429
 * too_many_connections` with `Retry-After` — even though an active ticket is otherwise exempt
 * from the capacity guard. A download manager's 4 parallel segments (aria2c -x4) are still all
 * served and assemble to the item's digest. A `Range` header with 1,000 ranges is answered
 * sanely (the whole item, bounded), and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { eventually, mint, request, serverOf, startContent, ticketPath } from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import type { Proc } from '../helpers/proc.js';

/** Larger than loopback socket buffers can absorb, so a client that stops reading stays in transfer. */
const BIG = Buffer.alloc(64 * 1024 * 1024, 7);
const SEGMENTED = randomBytes(3 * 1024 * 1024 + 17);
const SMALL = randomBytes(4096);

let dep: TestDeployment;
let proc: Proc;
let pub: string;

before(async () => {
  dep = await makeDeployment({
    servers: 1,
    reception: { tickets: { policy: 'expiring', claimSeconds: 30 } },
    // Capacity 2: before the cap, an active ticket skipped the capacity guard with every request.
    server: () => ({ capacity: 2 }),
  });
  dep.writeItem('/big.bin', BIG, 'a');
  dep.writeItem('/segmented.bin', SEGMENTED, 'a');
  dep.writeItem('/small.bin', SMALL, 'a');
  proc = await startContent(dep.config, dep.configPath, 'a');
  pub = serverOf(dep.config, 'a').publicUrl;
});

after(async () => {
  await proc?.kill('SIGKILL');
  dep?.cleanup();
});

function urlOf(path: string): string {
  const t = mint(dep.config, { path });
  return `${pub}${ticketPath(t.token, path)}`;
}

describe('connections per ticket', () => {
  test('50 parallel connections on one ticket: at most 8 served at once, the rest 429 too_many_connections', async () => {
    const url = urlOf('/big.bin');
    const held: http.ClientRequest[] = [];
    type Outcome = { status: number; code?: string; retryAfter?: string };
    try {
      // Every connection is opened at once; a served one stops reading, so its transfer stays in
      // flight for the rest of the test and every later request meets it.
      const outcomes = await Promise.all(
        Array.from(
          { length: 50 },
          () =>
            new Promise<Outcome>((resolve, reject) => {
              const req = http.get(url, { agent: false }, (res) => {
                if (res.statusCode === 200) {
                  res.pause();
                  resolve({ status: 200 });
                  return;
                }
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () => {
                  const retryAfter = res.headers['retry-after'];
                  resolve({
                    status: res.statusCode ?? 0,
                    code: JSON.parse(Buffer.concat(chunks).toString()).error?.code,
                    ...(retryAfter === undefined ? {} : { retryAfter }),
                  });
                });
              });
              req.on('error', reject);
              held.push(req);
            }),
        ),
      );
      const served = outcomes.filter((o) => o.status === 200).length;
      const refused = outcomes.filter((o) => o.status !== 200);
      assert.ok(served >= 1 && served <= 8, `served ${served} at once`);
      for (const o of refused) {
        assert.equal(o.status, 429);
        assert.equal(o.code, 'too_many_connections');
        assert.match(o.retryAfter ?? '', /^[1-9]\d*$/);
      }
      assert.equal(served + refused.length, 50);
    } finally {
      for (const r of held) r.destroy();
    }
    // The held transfers end when their sockets go; the ticket is served again.
    await eventually(async () => (await request(url, { headers: { range: 'bytes=0-9' } })).status === 206);
  });

  test('4 parallel ranges on one ticket (aria2c -x4) are all served and assemble the item', async () => {
    const url = urlOf('/segmented.bin');
    const size = SEGMENTED.length;
    const step = Math.ceil(size / 4);
    const parts = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const start = i * step;
        const end = Math.min(size, start + step) - 1;
        const r = await request(url, { headers: { range: `bytes=${start}-${end}` } });
        assert.equal(r.status, 206, `segment ${i}`);
        assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`);
        return r.body;
      }),
    );
    const whole = Buffer.concat(parts);
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(digest(whole), digest(SEGMENTED));
  });
});

describe('many ranges', () => {
  test('a Range header with 1,000 ranges is answered with a bounded body, and the server serves on', async () => {
    const url = urlOf('/small.bin');
    const ranges = Array.from({ length: 1000 }, (_, i) => `${i * 4}-${i * 4 + 1}`).join(',');
    const r = await request(url, { headers: { range: `bytes=${ranges}` } });
    // More than 100 ranges: the whole item (200), never 1,000 multipart frames.
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-range'], undefined);
    assert.equal(r.body.length, SMALL.length);
    assert.ok(r.body.equals(SMALL));
    // 1,000 overlapping ranges of the whole item: still one bounded answer, not 1,000 copies.
    const overlapping = Array.from({ length: 1000 }, () => '0-').join(',');
    const o = await request(url, { headers: { range: `bytes=${overlapping}` } });
    assert.ok(o.status === 200 || o.status === 206 || o.status === 416, `status ${o.status}`);
    assert.ok(o.body.length <= SMALL.length + 1024, `body of ${o.body.length} bytes`);
    const after = await request(url, { headers: { range: 'bytes=0-9' } });
    assert.equal(after.status, 206);
  });
});
