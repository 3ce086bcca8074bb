/**
 * HTTPS on the public listeners (CONTRACT §2 `tls`), end to end with a self-signed certificate
 * made here by `openssl`: an order over HTTPS, the download and a Range resume from an HTTPS
 * content server, fulfilment; `rushgate get` against the https:// reception with `--insecure`
 * and with `--cacert`, and refused without either; certificate rotation with no restart (and a
 * bad renewal keeping the old certificate); a bad key file at start is exit 2 naming the key.
 *
 * Reception and content server run in this process on port 0 (nothing picks a port for another
 * process to bind later). The one cycle — content servers need the reception's internal URL, the
 * reception needs theirs — is broken by a TCP relay bound here first on port 0.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildContentServer, type ContentServer } from '../../src/content/index.js';
import { buildReception, type Reception } from '../../src/reception/app.js';
import { createMailer } from '../../src/reception/mailer.js';
import { openStore, type Store } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { runRushgate } from '../helpers/proc.js';
import { type CertFiles, fingerprintOf, makeCert } from '../helpers/tls.js';
import { waitUntil } from '../helpers/wait.js';

const ITEM = '/apps/tls-item.bin';
const CONTENT = randomBytes(3 * 1024 * 1024 + 17);

let dir: string;
let certs: CertFiles;
let config: Config;
let store: Store;
let reception: Reception;
let content: ContentServer;
let relay: net.Server;
let receptionUrl: string;
let agent: Agent;

function baseDeployment(root: string, tlsFiles: CertFiles) {
  return {
    secrets: {
      ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
      internalToken: randomBytes(24).toString('base64url'),
    },
    reception: {
      listen: '127.0.0.1:0',
      internalListen: '127.0.0.1:0',
      store: 'memory:',
      tls: tlsFiles,
      rateLimit: null,
      monitor: { intervalMs: 100, timeoutMs: 3000, failuresBeforeDown: 5 },
    },
    contentServers: [
      {
        id: 'a',
        // Placeholders: the real ports are known after start (port 0) and written back below.
        publicUrl: 'https://127.0.0.1:1',
        internalUrl: 'http://127.0.0.1:1',
        listen: '127.0.0.1:0',
        internalListen: '127.0.0.1:0',
        root,
        tls: tlsFiles,
      },
    ],
  };
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rushgate-tls-'));
  certs = makeCert(dir, 'one');
  const root = path.join(dir, 'content');
  mkdirSync(path.join(root, 'apps'), { recursive: true });
  const file = path.join(root, ...ITEM.split('/').filter(Boolean));
  writeFileSync(file, CONTENT);
  const past = new Date(Date.now() - 3600_000);
  utimesSync(file, past, past);

  // The relay to the reception's internal port, bound first so its address can go in the config.
  let target = 0;
  relay = net.createServer((sock) => {
    const up = net.connect(target, '127.0.0.1');
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as AddressInfo).port;

  const input = baseDeployment(root, certs);
  config = parseConfig({
    ...input,
    reception: { ...input.reception, internalUrl: `http://127.0.0.1:${relayPort}` },
  });
  content = buildContentServer({
    config,
    serverId: 'a',
    logger: silentLogger,
    rescanIntervalMs: 0,
    eventFlushDelayMs: 20,
    tlsWatchIntervalMs: 100,
  });
  await content.start();
  const server = config.contentServers[0] as Config['contentServers'][number];
  server.publicUrl = `https://127.0.0.1:${content.publicAddress()?.port}`;
  server.internalUrl = `http://127.0.0.1:${content.internalAddress()?.port}`;

  store = await openStore('memory:', { logger: silentLogger });
  reception = buildReception({
    config,
    store,
    logger: silentLogger,
    mailer: createMailer(undefined, silentLogger),
  });
  const urls = await reception.start();
  target = Number(new URL(urls.internalUrl).port);
  receptionUrl = `https://127.0.0.1:${new URL(urls.publicUrl).port}`;
  config.reception.publicUrl = receptionUrl;
  agent = new Agent({ connect: { ca: readFileSync(certs.cert) } });
  await waitUntil(
    async () => {
      const r = await request(`${urls.internalUrl}/healthz`);
      await r.body.dump();
      return r.statusCode === 200;
    },
    30_000,
    'the reception to see the content server',
  );
});

after(async () => {
  await agent?.close();
  await reception?.stop();
  await content?.stop(0);
  await store?.close();
  relay?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function order(): Promise<{ orderId: string; url: string }> {
  const res = await request(`${receptionUrl}/api/orders`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: ITEM }),
  });
  const body = (await res.body.json()) as { orderId: string; ticket: { url: string } };
  assert.equal(res.statusCode, 201, JSON.stringify(body));
  return { orderId: body.orderId, url: body.ticket.url };
}

test('an order over HTTPS, then the download and a Range resume from an HTTPS content server', async () => {
  const { orderId, url } = await order();
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/t\//);
  const first = await request(url, { dispatcher: agent, headers: { range: 'bytes=0-99999' } });
  assert.equal(first.statusCode, 206);
  const head = Buffer.from(await first.body.arrayBuffer());
  assert.equal(head.length, 100_000);
  const rest = await request(url, { dispatcher: agent, headers: { range: 'bytes=100000-' } });
  assert.equal(rest.statusCode, 206);
  assert.equal(rest.headers['content-range'], `bytes 100000-${CONTENT.length - 1}/${CONTENT.length}`);
  const tail = Buffer.from(await rest.body.arrayBuffer());
  assert.ok(Buffer.concat([head, tail]).equals(CONTENT), 'the two ranges make the item');
  // Byte counting across ranges works as over HTTP: the order is fulfilled.
  await waitUntil(
    async () => {
      const r = await request(`${receptionUrl}/api/orders/${orderId}`, { dispatcher: agent });
      const b = (await r.body.json()) as { status: string };
      return b.status === 'fulfilled';
    },
    15_000,
    'the order to be fulfilled',
  );
});

test('rushgate get: https with --insecure, with --cacert, and refused without either', async () => {
  const out = (n: string) => path.join(dir, `get-${n}.bin`);
  const withCa = await runRushgate([
    'get',
    `${receptionUrl}${ITEM}`,
    '-q',
    '--cacert',
    certs.cert,
    '-o',
    out('ca'),
  ]);
  assert.equal(withCa.code, 0, withCa.stderr);
  assert.ok(readFileSync(out('ca')).equals(CONTENT));
  const insecure = await runRushgate(['get', `${receptionUrl}${ITEM}`, '-q', '--insecure', '-o', out('k')]);
  assert.equal(insecure.code, 0, insecure.stderr);
  assert.ok(readFileSync(out('k')).equals(CONTENT));
  // Without either, the self-signed certificate is not trusted: verification is really on.
  const plain = await runRushgate([
    'get',
    `${receptionUrl}${ITEM}`,
    '-q',
    '--max-wait',
    '5',
    '-o',
    out('none'),
  ]);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /certificate/i);
  const badCa = await runRushgate(['get', `${receptionUrl}${ITEM}`, '--cacert', path.join(dir, 'nope.pem')]);
  assert.equal(badCa.code, 2);
  assert.match(badCa.stderr, /--cacert/);
});

function peerFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

test('certificate rotation: new files are served on the next connection, a bad renewal keeps the old', async () => {
  const port = content.publicAddress()?.port ?? 0;
  const recPort = Number(new URL(receptionUrl).port);
  const oldFp = fingerprintOf(certs.cert);
  assert.equal(await peerFingerprint(port), oldFp);
  const next = makeCert(dir, 'two', 'rushgate-rotated');
  const newFp = fingerprintOf(next.cert);
  assert.notEqual(newFp, oldFp);
  // Written the way renewals are: the key, then the certificate, each replaced by rename.
  renameSync(next.key, certs.key);
  renameSync(next.cert, certs.cert);
  await waitUntil(async () => (await peerFingerprint(port)) === newFp, 20_000, 'content server: new cert');
  await waitUntil(async () => (await peerFingerprint(recPort)) === newFp, 20_000, 'reception: new cert');

  // A botched renewal: garbage in the certificate file. Logged; the rotated certificate stays.
  writeFileSync(certs.cert, 'not a certificate\n');
  await new Promise((r) => setTimeout(r, 1500)); // several watch intervals: give a reload its chance
  assert.equal(await peerFingerprint(port), newFp);
  assert.equal(await peerFingerprint(recPort), newFp);
});

test('a missing or bad key file at start is exit code 2 naming the key', async () => {
  const sub = mkdtempSync(path.join(dir, 'bad-'));
  const root = path.join(sub, 'content');
  mkdirSync(root);
  const good = makeCert(sub, 'good');
  const keyFile = path.join(sub, 'broken.key');
  writeFileSync(keyFile, 'garbage');
  const write = (tlsFiles: CertFiles) => {
    const file = path.join(sub, 'deploy.yaml');
    writeFileSync(file, stringify(baseDeployment(root, tlsFiles)));
    return file;
  };
  const missing = await runRushgate([
    'content',
    '--config',
    write({ cert: good.cert, key: path.join(sub, 'absent.key') }),
    '--id',
    'a',
  ]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /contentServers\[0\]\.tls\.key/);
  const bad = await runRushgate(['reception', '--config', write({ cert: good.cert, key: keyFile })]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /reception\.tls/);
  assert.match(bad.stderr, /broken\.key/);
});
