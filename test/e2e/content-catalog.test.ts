/**
 * The catalog (src/content/catalog.ts) in-process on real files: hashes and headers, the version
 * as a fingerprint of the content (same files, same version), hashes cached across rescans,
 * small items held in memory within the budget, what is not an item (dotfiles, FIFOs, symlinks
 * leaving the root, names the item-path rules refuse), and a changed file left for a later scan
 * while it settles.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { buildCatalog, type Catalog } from '../../src/content/catalog.js';
import { silentLogger } from '../../src/util/log.js';

const dirs: string[] = [];
const catalogs: Catalog[] = [];
after(() => {
  for (const c of catalogs) c.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tree(): { dir: string; root: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rushgate-catalog-'));
  dirs.push(dir);
  const root = path.join(dir, 'root');
  mkdirSync(root);
  return { dir, root };
}

function catalogOf(
  root: string,
  now = () => Date.now(),
  extra: Partial<Parameters<typeof buildCatalog>[0]> = {},
) {
  const scans: { hashedBytes: number }[] = [];
  const c = buildCatalog({
    root,
    logger: silentLogger,
    clock: { now },
    watch: false,
    rescanIntervalMs: 0,
    onScan: (s) => scans.push(s),
    ...extra,
  });
  catalogs.push(c);
  return { c, scans };
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest();

test('items, hashes and precomputed headers', async () => {
  const { root } = tree();
  mkdirSync(path.join(root, 'apps'));
  writeFileSync(path.join(root, 'apps', 'editor 2.1.dmg'), 'editor');
  const { c } = catalogOf(root);
  assert.equal(c.ready, false);
  await c.start();
  assert.equal(c.ready, true);
  const item = c.lookup('/apps/editor 2.1.dmg');
  assert.ok(item);
  assert.equal(item.size, 6);
  assert.equal(item.sha256, sha('editor').toString('hex'));
  assert.equal(item.reprDigest, `sha-256=:${sha('editor').toString('base64')}:`);
  assert.equal(item.etag, `"${sha('editor').toString('base64url')}"`);
  assert.equal(item.contentDisposition, 'attachment; filename="editor 2.1.dmg"');
  assert.ok(item.body?.equals(Buffer.from('editor')), 'small items are held in memory');
  assert.deepEqual(c.entries(), [{ path: '/apps/editor 2.1.dmg', size: 6, sha256: item.sha256 }]);
});

test('the version is a fingerprint of the content, the same for the same files', async () => {
  const a = tree();
  const b = tree();
  for (const { root } of [a, b]) writeFileSync(path.join(root, 'x.bin'), 'same');
  const ca = catalogOf(a.root).c;
  const cb = catalogOf(b.root).c;
  await ca.start();
  await cb.start();
  assert.equal(ca.version(), cb.version());
  writeFileSync(path.join(b.root, 'x.bin'), 'diff');
  await cb.rescan();
  assert.notEqual(ca.version(), cb.version());
});

test('unchanged files are not hashed again; changed ones wait to settle', async () => {
  const { root } = tree();
  writeFileSync(path.join(root, 'a.bin'), 'one');
  let now = Date.now();
  const { c, scans } = catalogOf(root, () => now, { settleMs: 1000 });
  await c.start();
  assert.equal(scans.at(-1)?.hashedBytes, 3);
  await c.rescan();
  assert.equal(scans.at(-1)?.hashedBytes, 0, 'cache hit');

  const file = path.join(root, 'a.bin');
  writeFileSync(file, 'two!');
  const mtime = new Date(now);
  utimesSync(file, mtime, mtime);
  await c.rescan();
  assert.equal(c.lookup('/a.bin'), undefined, 'still settling: not served');
  now += 1000;
  await c.rescan();
  assert.equal(c.lookup('/a.bin')?.size, 4);
});

test('what is not an item', async () => {
  const { dir, root } = tree();
  writeFileSync(path.join(dir, 'outside.txt'), 'outside');
  writeFileSync(path.join(root, 'ok.txt'), 'ok');
  writeFileSync(path.join(root, '.dotfile'), 'hidden');
  mkdirSync(path.join(root, '.git'));
  writeFileSync(path.join(root, '.git', 'config'), 'hidden');
  writeFileSync(path.join(root, 'back\\slash.txt'), 'refused name');
  symlinkSync(path.join(dir, 'outside.txt'), path.join(root, 'out-link'));
  symlinkSync(dir, path.join(root, 'out-dir'));
  symlinkSync(path.join(root, 'ok.txt'), path.join(root, 'in-link'));
  symlinkSync(root, path.join(root, 'loop'));
  symlinkSync(path.join(root, 'missing'), path.join(root, 'dangling'));
  execFileSync('mkfifo', [path.join(root, 'pipe')]);
  const { c } = catalogOf(root);
  await c.start();
  assert.deepEqual(
    c.entries().map((e) => e.path),
    ['/in-link', '/ok.txt'],
  );
  assert.equal(c.lookup('/in-link')?.file, path.join(root, 'ok.txt'), 'served by its real path');
});

test('the memory budget bounds what is held in memory', async () => {
  const { root } = tree();
  for (const n of ['a', 'b', 'c']) writeFileSync(path.join(root, `${n}.bin`), Buffer.alloc(1000, n));
  writeFileSync(path.join(root, 'large.bin'), Buffer.alloc(5000, 1));
  const { c } = catalogOf(root, undefined, { memoryItemBytes: 2000, memoryBudgetBytes: 2500 });
  await c.start();
  const held = ['/a.bin', '/b.bin', '/c.bin', '/large.bin'].filter((p) => c.lookup(p)?.body);
  assert.deepEqual(held, ['/a.bin', '/b.bin']);
  assert.equal(c.size(), 4);
});

test('a large item is hashed from disk in chunks', async () => {
  const { root } = tree();
  const big = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
  writeFileSync(path.join(root, 'big.bin'), big);
  const { c } = catalogOf(root);
  await c.start();
  const item = c.lookup('/big.bin');
  assert.equal(item?.sha256, sha(big).toString('hex'));
  assert.equal(item?.body, null);
});
