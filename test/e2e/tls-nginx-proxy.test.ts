/**
 * `contentServers[].trustProxy` through a real nginx (CONTRACT §2): a strict ticket bound to the
 * client's address is served when the content server trusts nginx's address (the address `cip` is
 * checked against is then the forwarded one, read from the right), `wrong_client` when it does
 * not, and `wrong_client` for a client that sends its own forged `X-Forwarded-For` — straight to
 * the content server, or through nginx (which appends the real address on the right).
 *
 * The client speaks from 127.0.0.2 and nginx from 127.0.0.1, so "the peer" and "the client" are
 * different addresses. nginx runs as this test's child, daemon off, with its own prefix folder;
 * it must be told a port, so a random one is tried and another chosen if the bind fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { buildContentServer, type ContentServer } from '../../src/content/index.js';
import { silentLogger } from '../../src/util/log.js';
import { mint, notify, request, ticketPath } from '../fixtures/content-server.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const ITEM = '/apps/proxied.bin';
const CONTENT = randomBytes(256 * 1024);
const CLIENT = '127.0.0.2';
const FORGER = '127.0.0.3';

let dir: string;
let config: Config;
let trusting: ContentServer;
let distrusting: ContentServer;
let events: http.Server;
let nginx: ChildProcess | null = null;
let nginxPort = 0;

async function startNginx(upstreams: { trusting: number; distrusting: number }): Promise<void> {
  const prefix = path.join(dir, 'nginx');
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const conf = path.join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /trusting/ {
      proxy_pass http://127.0.0.1:${upstreams.trusting}/;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
    location /distrusting/ {
      proxy_pass http://127.0.0.1:${upstreams.distrusting}/;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
    );
    const child = spawn(NGINX as string, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const up = await Promise.race([
      exited.then(() => false),
      (async () => {
        for (let i = 0; i < 200; i++) {
          if (await answers(port)) return true;
          await new Promise((r) => setTimeout(r, 50));
        }
        return false;
      })(),
    ]);
    if (up) {
      nginx = child;
      nginxPort = port;
      return;
    }
    child.kill('SIGKILL');
    if (!/Address already in use|bind\(\)/.test(stderr)) throw new Error(`nginx did not start: ${stderr}`);
  }
  throw new Error('nginx: no free port after 20 tries');
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
  });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rushgate-nginx-'));
  const root = path.join(dir, 'content');
  mkdirSync(path.join(root, 'apps'), { recursive: true });
  const file = path.join(root, 'apps', 'proxied.bin');
  writeFileSync(file, CONTENT);
  const past = new Date(Date.now() - 3600_000);
  utimesSync(file, past, past);
  // A sink for the transfer events (the reception's internal port), bound on port 0 here.
  events = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => events.listen(0, '127.0.0.1', r));
  const eventsPort = (events.address() as { port: number }).port;
  const server = (id: string, trustProxy: string[]) => ({
    id,
    publicUrl: 'http://127.0.0.1:1',
    internalUrl: 'http://127.0.0.1:1',
    listen: '127.0.0.1:0',
    internalListen: '127.0.0.1:0',
    root,
    trustProxy,
  });
  config = parseConfig({
    secrets: {
      ticketKeys: [{ id: 'k1', key: randomBytes(32).toString('base64url') }],
      internalToken: randomBytes(24).toString('base64url'),
    },
    reception: {
      internalUrl: `http://127.0.0.1:${eventsPort}`,
      tickets: { policy: 'strict' },
    },
    // "a" believes nginx (127.0.0.1); "b" believes nobody.
    contentServers: [server('a', ['127.0.0.1']), server('b', [])],
  });
  const build = (id: string) =>
    buildContentServer({ config, serverId: id, logger: silentLogger, rescanIntervalMs: 0 });
  trusting = build('a');
  distrusting = build('b');
  for (const [i, s] of [trusting, distrusting].entries()) {
    await s.start();
    const entry = config.contentServers[i] as Config['contentServers'][number];
    entry.publicUrl = `http://127.0.0.1:${s.publicAddress()?.port}`;
    entry.internalUrl = `http://127.0.0.1:${s.internalAddress()?.port}`;
  }
  if (NGINX) {
    await startNginx({
      trusting: trusting.publicAddress()?.port ?? 0,
      distrusting: distrusting.publicAddress()?.port ?? 0,
    });
  }
});

after(async () => {
  nginx?.kill('SIGQUIT');
  await trusting?.stop(0);
  await distrusting?.stop(0);
  events?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A strict ticket for CLIENT on server `id`, its notice delivered. */
async function ticketFor(id: string): Promise<string> {
  const { token, claims } = mint(config, { serverId: id, path: ITEM, client: CLIENT, policy: 'strict' });
  await notify(config, id, claims);
  return ticketPath(token, ITEM);
}

const skip = NGINX ? false : 'nginx is not installed';

test('through nginx, trusted: the forwarded client address matches the ticket', { skip }, async () => {
  const p = await ticketFor('a');
  const res = await request(`http://127.0.0.1:${nginxPort}/trusting${p}`, { localAddress: CLIENT });
  assert.equal(res.status, 200, res.body.toString());
  assert.ok(res.body.equals(CONTENT));
});

test('through nginx, not trusted: the peer is nginx, so wrong_client', { skip }, async () => {
  const p = await ticketFor('b');
  const res = await request(`http://127.0.0.1:${nginxPort}/distrusting${p}`, { localAddress: CLIENT });
  assert.equal(res.status, 403);
  assert.equal(JSON.parse(res.body.toString()).error.code, 'wrong_client');
});

test('a forged X-Forwarded-For is wrong_client, straight or through nginx', { skip }, async () => {
  const p = await ticketFor('a');
  // Straight to the content server: the peer (127.0.0.3) is not trusted, the header is ignored.
  const direct = await request(`http://127.0.0.1:${trusting.publicAddress()?.port}${p}`, {
    localAddress: FORGER,
    headers: { 'x-forwarded-for': CLIENT },
  });
  assert.equal(direct.status, 403);
  assert.equal(JSON.parse(direct.body.toString()).error.code, 'wrong_client');
  // Through nginx: nginx appends the real address, and the header is read from the right.
  const proxied = await request(`http://127.0.0.1:${nginxPort}/trusting${p}`, {
    localAddress: FORGER,
    headers: { 'x-forwarded-for': CLIENT },
  });
  assert.equal(proxied.status, 403);
  assert.equal(JSON.parse(proxied.body.toString()).error.code, 'wrong_client');
  // And the ticket's own client, straight from its own address, is still served.
  const own = await request(`http://127.0.0.1:${trusting.publicAddress()?.port}${p}`, {
    localAddress: CLIENT,
  });
  assert.equal(own.status, 200);
});
