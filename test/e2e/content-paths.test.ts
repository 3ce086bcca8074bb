/**
 * Confinement and the catalog, against real `rushgate content` processes: every target of the
 * nasty-path list (test/fixtures/nasty-paths.ts), sent byte for byte over a raw socket under
 * policy `open` and behind a valid ticket under `strict`, is refused and never returns the secret
 * file beside the root; symlinks leaving the root and dotfiles are not items, a symlink inside
 * the root is; a new item becomes available without a restart and a removed one goes away, with
 * the load report's catalog version following.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LoadReport } from '../../src/protocol/internal.js';
import { eventually, mint, notify, request, serverOf, startContent } from '../fixtures/content-server.js';
import { NASTY_PATHS } from '../fixtures/nasty-paths.js';
import { makeDeployment, type TestDeployment } from '../helpers/deployment.js';
import type { Proc } from '../helpers/proc.js';

const SECRET = `TOP-SECRET-${randomBytes(16).toString('hex')}`;

interface Tree {
  dep: TestDeployment;
  proc: Proc;
  root: string;
  pub: string;
}

/** A deployment whose root is surrounded by things that must never be served. */
async function tree(policy: 'open' | 'strict'): Promise<Tree> {
  const dep = await makeDeployment({ servers: 1, reception: { tickets: { policy } } });
  const root = serverOf(dep.config, 'a').root;
  writeFileSync(path.join(dep.dir, 'secret.txt'), SECRET);
  writeFileSync(path.join(root, 'ok.txt'), 'ok');
  mkdirSync(path.join(root, 'sub'));
  writeFileSync(path.join(root, 'sub', 'inner.txt'), 'inner');
  writeFileSync(path.join(root, '.hidden-dot'), SECRET);
  mkdirSync(path.join(root, '.hidden'));
  writeFileSync(path.join(root, '.hidden', 'file.txt'), SECRET);
  symlinkSync(path.join(dep.dir, 'secret.txt'), path.join(root, 'link-out'));
  symlinkSync(dep.dir, path.join(root, 'outdir'));
  symlinkSync(path.join(root, 'sub', 'inner.txt'), path.join(root, 'link-in'));
  const proc = await startContent(dep.config, dep.configPath, 'a');
  return { dep, proc, root, pub: serverOf(dep.config, 'a').publicUrl };
}

/** Sends a request target exactly as given and returns the status and the whole answer. */
function rawGet(publicUrl: string, target: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(publicUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`timeout on ${JSON.stringify(target)}`)));
    socket.on('connect', () => {
      socket.write(
        Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`, 'latin1'),
      );
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}

function assertSafe(target: string, mayServe: boolean | undefined, r: { status: number; text: string }) {
  const label = JSON.stringify(target);
  assert.ok(!r.text.includes(SECRET), `${label} leaked the secret`);
  assert.ok(!/root:.*:0:0:/.test(r.text), `${label} leaked /etc/passwd`);
  if (mayServe) assert.equal(r.status, 200, label);
  else assert.ok([400, 403, 404].includes(r.status), `${label}: status ${r.status}`);
}

describe('policy open', () => {
  let t: Tree;
  before(async () => {
    t = await tree('open');
  });
  after(async () => {
    await t?.proc.kill('SIGKILL');
    t?.dep.cleanup();
  });

  test(`none of the ${NASTY_PATHS.length} nasty paths leaves the root`, async () => {
    assert.ok(NASTY_PATHS.length >= 30);
    for (const { target, mayServe } of NASTY_PATHS) assertSafe(target, mayServe, await rawGet(t.pub, target));
  });

  test('items inside the root are served, also through a symlink that stays inside', async () => {
    assert.equal((await rawGet(t.pub, '/ok.txt')).status, 200);
    const inner = await request(`${t.pub}/link-in`);
    assert.equal(inner.status, 200);
    assert.equal(inner.body.toString(), 'inner');
    assert.equal(inner.headers['cache-control'], undefined, 'no ticket, no private cache control');
  });

  test('a new item is served without a restart; a removed one goes away; the catalog version follows', async () => {
    const internal = serverOf(t.dep.config, 'a').internalUrl;
    const before = (await (await fetch(`${internal}/load`)).json()) as LoadReport;
    assert.equal((await request(`${t.pub}/new/arrival.bin`)).status, 404);
    mkdirSync(path.join(t.root, 'new'));
    writeFileSync(path.join(t.root, 'new', 'arrival.bin'), 'fresh');
    const r = await eventually(
      async () => {
        const x = await request(`${t.pub}/new/arrival.bin`);
        return x.status === 200 ? x : null;
      },
      15_000,
      'new item served',
    );
    assert.equal(r.body.toString(), 'fresh');
    const later = (await (
      await fetch(`${internal}/load?catalogSince=${before.catalogVersion}`)
    ).json()) as LoadReport;
    assert.notEqual(later.catalogVersion, before.catalogVersion);
    assert.ok(later.catalog?.some((e) => e.path === '/new/arrival.bin' && e.size === 5));

    rmSync(path.join(t.root, 'new'), { recursive: true });
    await eventually(
      async () => (await request(`${t.pub}/new/arrival.bin`)).status === 404,
      15_000,
      'item gone',
    );
  });
});

describe('policy strict, behind a valid ticket', () => {
  let t: Tree;
  before(async () => {
    t = await tree('strict');
  });
  after(async () => {
    await t?.proc.kill('SIGKILL');
    t?.dep.cleanup();
  });

  test('a valid ticket does not let any nasty path out either', async () => {
    const ticket = mint(t.dep.config, { path: '/ok.txt' });
    await notify(t.dep.config, 'a', ticket.claims);
    for (const { target } of NASTY_PATHS) {
      if (!target.startsWith('/')) continue;
      const r = await rawGet(t.pub, `/t/${ticket.token}${target}`);
      assert.ok(!r.text.includes(SECRET), `${JSON.stringify(target)} leaked the secret`);
      assert.ok(
        [400, 403, 404].includes(r.status) || target.startsWith('/ok.txt?'),
        `${target}: ${r.status}`,
      );
    }
    // A ticket minted for a path outside the tree (only a key holder could) is still confined.
    const evil = mint(t.dep.config, { path: '/../secret.txt' });
    await notify(t.dep.config, 'a', evil.claims);
    const r = await rawGet(t.pub, `/t/${evil.token}/../secret.txt`);
    assert.equal(r.status, 400);
    assert.ok(!r.text.includes(SECRET));
  });
});
