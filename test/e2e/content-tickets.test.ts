/**
 * A real `rushgate content` process under policy `strict` (CONTRACT §4, §6), driven over loopback
 * with tickets minted here from the deployment's key ring: every refusal code and the connection
 * closed after it, a notice required before serving, revocations of a ticket and of an order,
 * HEAD, the headers (digest, ETag, Content-Disposition, ...), single and multiple ranges,
 * If-Range, 416, fulfilment across two ranges and across parallel ranges of which one is cut
 * short (then 410, and a `fulfilled` event at the reception), the capacity guard, the load
 * report, and the internal port's 401s.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { LoadReport } from '../../src/protocol/internal.js';
import {
  eventually,
  type FakeReception,
  fakeReception,
  internalPost,
  mint,
  notify,
  request,
  revoke,
  serverOf,
  startContent,
  ticketPath,
} from '../fixtures/content-server.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import type { Proc } from '../helpers/proc.js';

const SMALL = Buffer.from('hello from the content server\n');
const DATA = randomBytes(256 * 1024);
/**
 * Its middle part (64 MiB) is larger than all the buffering loopback TCP can do (receive buffer
 * up to 32 MiB, send buffer up to 4 MiB here), so a client that cuts it early cannot have been
 * sent all of it.
 */
const PARALLEL = Buffer.concat([randomBytes(4 << 20), Buffer.alloc(64 << 20, 1), randomBytes(4 << 20)]);
/** Larger than loopback socket buffers can absorb, so a client that stops reading stays in transfer. */
const BIG = Buffer.alloc(64 * 1024 * 1024, 7);
const UNICODE = '/dir/résumé and notes.txt';

let dep: TestDeployment;
let proc: Proc;
let reception: FakeReception;
let pub: string;
let internal: string;

before(async () => {
  dep = await makeDeployment({
    servers: 2,
    reception: { tickets: { policy: 'strict', claimSeconds: 30 } },
    server: () => ({ capacity: 2 }),
  });
  dep.writeItem('/small.txt', SMALL, 'a');
  dep.writeItem('/dir/data.bin', DATA, 'a');
  dep.writeItem('/big.bin', BIG, 'a');
  dep.writeItem(UNICODE, 'unicode', 'a');
  dep.writeItem('/fulfil/two.bin', DATA, 'a');
  dep.writeItem('/fulfil/parallel.bin', PARALLEL, 'a');
  reception = fakeReception(dep.config);
  await reception.start();
  proc = await startContent(dep.config, dep.configPath, 'a');
  pub = serverOf(dep.config, 'a').publicUrl;
  internal = serverOf(dep.config, 'a').internalUrl;
});

after(async () => {
  await proc?.kill('SIGKILL');
  await reception?.stop();
  dep?.cleanup();
});

/** A ticket for `path` on server a whose notice has arrived. */
async function ready(path: string, extra: { orderId?: string; client?: string } = {}) {
  const t = mint(dep.config, { path, ...extra });
  await notify(dep.config, 'a', t.claims);
  return { ...t, url: `${pub}${ticketPath(t.token, path)}` };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

describe('refusals', () => {
  async function expectRefusal(url: string, status: number, code: string, localAddress?: string) {
    const r = await request(url, { closeWaitMs: 5000, ...(localAddress ? { localAddress } : {}) });
    assert.equal(r.status, status, `${code}: ${r.body.toString()}`);
    assert.equal(JSON.parse(r.body.toString()).error.code, code);
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.closed, true, 'the server closes the connection after a refusal');
    assert.equal(r.headers['cache-control'], 'no-store');
  }

  test('every refusal code, in the contract order', async () => {
    const path = '/small.txt';
    const good = await ready(path);
    await expectRefusal(`${pub}/t/not-a-ticket${path}`, 403, 'bad_ticket');
    await expectRefusal(`${pub}${path}`, 403, 'bad_ticket');
    const tampered = `${good.token.slice(0, -3)}${good.token.endsWith('AAA') ? 'BBB' : 'AAA'}`;
    await expectRefusal(`${pub}${ticketPath(tampered, path)}`, 403, 'bad_ticket');
    const other = mint(dep.config, { path, serverId: 'b' });
    await expectRefusal(`${pub}${ticketPath(other.token, path)}`, 403, 'wrong_server');
    await expectRefusal(`${pub}${ticketPath(good.token, '/dir/data.bin')}`, 403, 'wrong_path');
    const old = mint(dep.config, { path, nowMs: Date.now() - 700_000 });
    await notify(dep.config, 'a', { ...old.claims, exp: Math.floor(Date.now() / 1000) + 60 });
    await expectRefusal(`${pub}${ticketPath(old.token, path)}`, 403, 'expired');
    const future = mint(dep.config, { path, nowMs: Date.now() + 120_000 });
    await notify(dep.config, 'a', future.claims);
    await expectRefusal(`${pub}${ticketPath(future.token, path)}`, 403, 'not_yet_valid');
    const noNotice = mint(dep.config, { path });
    await expectRefusal(`${pub}${ticketPath(noNotice.token, path)}`, 403, 'no_notice');
    const gone = await ready(path);
    await revoke(dep.config, 'a', { kind: 'ticket', ticketId: gone.claims.jti, until: gone.claims.exp });
    await expectRefusal(gone.url, 410, 'revoked');
  });

  test('a ticket bound to 127.0.0.1 is refused from 127.0.0.2, served from 127.0.0.1', async () => {
    const t = await ready('/small.txt', { client: '127.0.0.1' });
    assert.equal(t.claims.cip, '127.0.0.1/32');
    await expectRefusal(t.url, 403, 'wrong_client', '127.0.0.2');
    const ok = await request(t.url, { localAddress: '127.0.0.1', headers: { range: 'bytes=0-0' } });
    assert.equal(ok.status, 206);
  });

  test('an order revocation refuses every ticket of the order', async () => {
    const a = await ready('/small.txt', { orderId: 'order-revoked' });
    const b = await ready('/dir/data.bin', { orderId: 'order-revoked' });
    assert.equal((await request(a.url, { headers: { range: 'bytes=0-1' } })).status, 206);
    await revoke(dep.config, 'a', { kind: 'order', orderId: 'order-revoked', until: a.claims.exp });
    await expectRefusal(a.url, 410, 'revoked');
    await expectRefusal(b.url, 410, 'revoked');
  });

  test('malformed item paths are 400 and methods other than GET/HEAD 405', async () => {
    const t = await ready('/small.txt');
    const r = await request(`${pub}/t/${t.token}/%2e%2e/small.txt`);
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'invalid_item_path');
    const post = await request(t.url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('an unknown item under a valid ticket is 404', async () => {
    const t = await ready('/not/here.bin');
    const r = await request(t.url);
    assert.equal(r.status, 404);
  });
});

describe('serving', () => {
  test('strict: refused until the notice arrives, then served with every header', async () => {
    const path = '/dir/data.bin';
    const t = mint(dep.config, { path });
    const url = `${pub}${ticketPath(t.token, path)}`;
    assert.equal((await request(url)).status, 403);
    await notify(dep.config, 'a', t.claims);
    const r = await request(url, { closeWaitMs: 300 });
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(DATA));
    assert.equal(r.closed, false, 'a success keeps the connection');
    assert.equal(r.headers['content-length'], String(DATA.length));
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.headers['repr-digest'], `sha-256=:${sha256(DATA).toString('base64')}:`);
    assert.match(r.headers.etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified'] ?? '')));
    assert.equal(r.headers['content-disposition'], 'attachment; filename=data.bin');
    assert.equal(r.headers['cache-control'], 'private, no-store');
  });

  test('the digest header of every item matches its bytes; non-ASCII names are encoded', async () => {
    for (const [path, content] of [
      ['/small.txt', SMALL],
      [UNICODE, Buffer.from('unicode')],
    ] as const) {
      const t = await ready(path);
      const r = await request(t.url);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(content));
      assert.equal(r.headers['repr-digest'], `sha-256=:${sha256(content).toString('base64')}:`);
    }
    const t = await ready(UNICODE);
    const head = await request(t.url, { method: 'HEAD' });
    assert.match(
      head.headers['content-disposition'] ?? '',
      /filename\*=UTF-8''r%C3%A9sum%C3%A9%20and%20notes\.txt/,
    );
  });

  test('HEAD: the headers of GET, no body, nothing delivered', async () => {
    const t = await ready('/dir/data.bin');
    const r = await request(t.url, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-length'], String(DATA.length));
    assert.ok(r.headers['repr-digest']);
    const ranged = await request(t.url, { method: 'HEAD', headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], `bytes 10-19/${DATA.length}`);
    // HEAD delivers nothing, so the strict ticket still works for the real download.
    assert.equal((await request(t.url)).status, 200);
  });

  test('single range, multiple ranges (multipart/byteranges), 416', async () => {
    const t = await ready('/dir/data.bin');
    const one = await request(t.url, { headers: { range: 'bytes=100-199' } });
    assert.equal(one.status, 206);
    assert.equal(one.headers['content-range'], `bytes 100-199/${DATA.length}`);
    assert.ok(one.body.equals(DATA.subarray(100, 200)));

    const multi = await request(t.url, { headers: { range: 'bytes=0-9,1000-1099,-16' } });
    assert.equal(multi.status, 206);
    const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(multi.headers['content-type'] ?? '');
    assert.ok(m, multi.headers['content-type']);
    assert.equal(Number(multi.headers['content-length']), multi.body.length);
    const parts = parseMultipart(multi.body, m[1] as string);
    assert.deepEqual(
      parts.map((p) => p.range),
      ['bytes 0-9/262144', 'bytes 1000-1099/262144', 'bytes 262128-262143/262144'],
    );
    assert.ok(parts[0]?.body.equals(DATA.subarray(0, 10)));
    assert.ok(parts[1]?.body.equals(DATA.subarray(1000, 1100)));
    assert.ok(parts[2]?.body.equals(DATA.subarray(DATA.length - 16)));

    const bad = await request(t.url, { headers: { range: 'bytes=999999-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${DATA.length}`);
  });

  test('If-Range: a matching ETag or date keeps the range, anything else sends everything', async () => {
    const t = await ready('/dir/data.bin');
    const head = await request(t.url, { method: 'HEAD' });
    const etag = head.headers.etag as string;
    const lastModified = head.headers['last-modified'] as string;
    const withEtag = await request(t.url, { headers: { range: 'bytes=0-9', 'if-range': etag } });
    assert.equal(withEtag.status, 206);
    const withDate = await request(t.url, { headers: { range: 'bytes=0-9', 'if-range': lastModified } });
    assert.equal(withDate.status, 206);
    const stale = await request(t.url, { headers: { range: 'bytes=0-9', 'if-range': '"stale"' } });
    assert.equal(stale.status, 200);
    assert.ok(stale.body.equals(DATA));
  });
});

describe('fulfilment', () => {
  test('two ranges fulfil the order: a fulfilled event, then 410', async () => {
    const path = '/fulfil/two.bin';
    const t = await ready(path);
    const half = DATA.length / 2;
    const first = await request(t.url, { headers: { range: `bytes=0-${half - 1}` } });
    assert.equal(first.status, 206);
    const second = await request(t.url, { headers: { range: `bytes=${half}-` } });
    assert.equal(second.status, 206);
    assert.ok(Buffer.concat([first.body, second.body]).equals(DATA));
    await eventually(
      async () => (await request(t.url, { headers: { range: 'bytes=0-0' } })).status === 410,
      5000,
      '410',
    );
    const fulfilled = await eventually(
      () => reception.events.find((e) => e.jti === t.claims.jti && e.type === 'fulfilled'),
      5000,
      'fulfilled event',
    );
    assert.equal(fulfilled.delivered, DATA.length);
    assert.equal(fulfilled.size, DATA.length);
    assert.equal(fulfilled.oid, t.claims.oid);
    assert.equal(fulfilled.path, path);
    assert.equal(typeof fulfilled.durationMs, 'number');
    const started = reception.events.filter((e) => e.jti === t.claims.jti && e.type === 'started');
    assert.equal(started.length, 1, 'one started event per ticket');
    const batch = reception.batches.find((b) => b.batch.events.some((e) => e.id === fulfilled.id));
    assert.equal(batch?.auth, `Bearer ${dep.config.secrets.internalToken}`);
    assert.equal(batch?.batch.serverId, 'a');
  });

  test('parallel ranges, one cut short mid-body, then resumed: all bytes add up, then 410', async () => {
    const path = '/fulfil/parallel.bin';
    const content = PARALLEL;
    const t = await ready(path);
    const MiB = 1 << 20;
    // Ranges [0,4M) [4M,68M) [68M,70M) [70M,72M) in parallel; the second is read for 300,000
    // bytes and then its socket is destroyed.
    const cut = new Promise<number>((resolve, reject) => {
      const req = http.get(
        t.url,
        { headers: { range: `bytes=${4 * MiB}-${68 * MiB - 1}` }, agent: false },
        (res) => {
          let got = 0;
          res.on('data', (c: Buffer) => {
            got += c.length;
            if (got >= 300_000) {
              res.socket.destroy();
              resolve(got);
            }
          });
          res.on('error', () => {});
        },
      );
      req.on('error', reject);
    });
    const [a, got, c, d] = await Promise.all([
      request(t.url, { headers: { range: `bytes=0-${4 * MiB - 1}` } }),
      cut,
      request(t.url, { headers: { range: `bytes=${68 * MiB}-${70 * MiB - 1}` } }),
      request(t.url, { headers: { range: `bytes=${70 * MiB}-` } }),
    ]);
    for (const r of [a, c, d]) assert.equal(r.status, 206);
    assert.ok(a.body.equals(content.subarray(0, 4 * MiB)));
    // The client resumes exactly where its cut-short response stopped: the bytes it did get
    // before the cut are never asked for again.
    const rest = await request(t.url, { headers: { range: `bytes=${4 * MiB + got}-${68 * MiB - 1}` } });
    assert.equal(rest.status, 206);
    assert.ok(rest.body.equals(content.subarray(4 * MiB + got, 68 * MiB)));
    await eventually(
      async () => (await request(t.url, { headers: { range: 'bytes=0-0' } })).status === 410,
      5000,
      '410',
    );
    const fulfilled = await eventually(
      () => reception.events.find((e) => e.jti === t.claims.jti && e.type === 'fulfilled'),
      5000,
      'fulfilled event',
    );
    assert.equal(fulfilled.delivered, content.length);
  });
});

describe('capacity and load', () => {
  test('at capacity: 503 with Retry-After for a new client, a further range of an active ticket is served', async () => {
    // Two clients that stop reading a 64 MiB item keep two transfers in progress (capacity 2).
    const slow: http.ClientRequest[] = [];
    const active = await Promise.all(
      [0, 1].map(async () => {
        const t = await ready('/big.bin');
        await new Promise<void>((resolve, reject) => {
          const req = http.get(t.url, { agent: false }, (res) => {
            res.pause();
            resolve();
          });
          req.on('error', () => {});
          setTimeout(() => reject(new Error('no response')), 10_000).unref();
          slow.push(req);
        });
        return t;
      }),
    );
    try {
      const report = await eventually(async () => {
        const r = (await (await fetch(`${internal}/load`)).json()) as LoadReport;
        return r.activeTickets.length === 2 ? r : null;
      });
      assert.deepEqual(report.activeTickets.sort(), active.map((t) => t.claims.jti).sort());
      assert.equal(report.capacity, 2);
      assert.ok(report.active >= 2);

      const newcomer = await ready('/small.txt');
      const refused = await request(newcomer.url);
      assert.equal(refused.status, 503);
      assert.equal(JSON.parse(refused.body.toString()).error.code, 'at_capacity');
      assert.match(refused.headers['retry-after'] ?? '', /^\d+$/);
      assert.ok(Number(refused.headers['retry-after']) >= 1);
      assert.equal(refused.closed, true);

      const again = await request((active[0] as { url: string }).url, { headers: { range: 'bytes=0-99' } });
      assert.equal(again.status, 206, 'a further range of an active ticket is not refused');
    } finally {
      for (const r of slow) r.destroy();
    }
    const newcomer = await ready('/small.txt');
    await eventually(async () => (await request(newcomer.url)).status === 200, 10_000, 'slot freed');
  });

  test('the load report: catalog only when asked for a different version', async () => {
    const full = (await (await fetch(`${internal}/load`)).json()) as LoadReport;
    assert.equal(full.serverId, 'a');
    assert.equal(full.draining, false);
    assert.equal(full.memoryLimitBytes, null);
    assert.ok(full.rssBytes > 0);
    const entry = full.catalog?.find((e) => e.path === '/dir/data.bin');
    assert.deepEqual(entry, {
      path: '/dir/data.bin',
      size: DATA.length,
      sha256: sha256(DATA).toString('hex'),
    });
    const same = (await (
      await fetch(`${internal}/load?catalogSince=${full.catalogVersion}`)
    ).json()) as LoadReport;
    assert.equal(same.catalog, undefined);
    assert.ok(same.serviceTimesMs.length > 0, 'fulfilled orders left service times');
  });
});

describe('internal port', () => {
  test('every request other than GET/HEAD needs the bearer token, whatever the path', async () => {
    const token = dep.config.secrets.internalToken;
    for (const [method, path] of [
      ['POST', '/notices'],
      ['POST', '/revocations'],
      ['OPTIONS', '/load'],
      ['OPTIONS', '/anything'],
      ['POST', '/no/such/path'],
      ['DELETE', '/notices'],
      ['PUT', '/load'],
      ['PATCH', '/metrics'],
      ['PROPFIND', '/'],
    ] as const) {
      for (const auth of [undefined, 'Bearer wrong-token-wrong-token', `Basic ${token}`, token]) {
        const r = await request(`${internal}${path}`, {
          method,
          headers: auth === undefined ? {} : { authorization: auth },
        });
        assert.equal(r.status, 401, `${method} ${path} with ${auth ?? 'no header'}`);
        assert.equal(JSON.parse(r.body.toString()).error.code, 'unauthorized');
      }
    }
    const r = await internalPost(dep.config, 'a', '/notices', { notices: [] });
    assert.equal(r.status, 400, 'with the token, validation is next');
    const noToken = await internalPost(dep.config, 'a', '/notices', { notices: [] }, null);
    assert.equal(noToken.status, 401);
  });

  test('GET /metrics, /healthz and /load need no token', async () => {
    const metrics = await request(`${internal}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body.toString(), /rushgate_content_bytes_sent_total/);
    assert.match(metrics.body.toString(), /rushgate_content_answers_total\{status="403",code="bad_ticket"/);
    assert.equal((await request(`${internal}/healthz`)).status, 200);
    assert.equal((await request(`${internal}/load`)).status, 200);
  });
});

function parseMultipart(body: Buffer, boundary: string): { range: string; body: Buffer }[] {
  const parts: { range: string; body: Buffer }[] = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  while (pos !== -1) {
    const headerStart = pos + delimiter.length;
    if (body.subarray(headerStart, headerStart + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', headerStart);
    const headers = body.subarray(headerStart, headerEnd).toString();
    const next = body.indexOf(delimiter, headerEnd);
    const range = /Content-Range: (.+)/.exec(headers)?.[1]?.trim() ?? '';
    parts.push({ range, body: body.subarray(headerEnd + 4, next - 2) });
    pos = next;
  }
  return parts;
}
