/**
 * `rushgate get` end to end (CONTRACT §5) against a real reception and three real content
 * servers: a plain download with the `--json` summary, `-o` and `--quiet`, the exit codes for an
 * unknown item (1) and bad usage (2), a corrupted copy on a content server (exit 4, nothing left
 * behind), and a client killed with SIGKILL mid-transfer whose rerun continues the same order with
 * Range and ends with the right SHA-256.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runRushgate, startRushgate } from '../helpers/proc.js';
import {
  corruptInPlace,
  readJsonLine,
  readSidecarOf,
  type Stack,
  startStack,
  waitForItem,
  waitUntil,
} from './get-harness.js';

const SMALL = 'hello, buyer\n'.repeat(100);
const BIG = randomBytes(48 * 1024 * 1024);
const CORRUPT = randomBytes(1024 * 1024);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let stack: Stack;
let work: string;

before(async () => {
  stack = await startStack({
    servers: 3,
    items: {
      '/apps/small.txt': { content: SMALL },
      '/data/big.bin': { content: BIG },
      '/only-c/corrupt.bin': { content: CORRUPT, on: ['c'] },
    },
  });
  work = path.join(stack.dep.dir, 'work');
  mkdirSync(work);
});

after(async () => {
  await stack?.stop();
});

function freshDir(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

test('a plain download, with the --json summary as the last line of stdout', {
  timeout: 60_000,
}, async () => {
  const cwd = freshDir('plain');
  const r = await runRushgate(['get', stack.url('/apps/small.txt'), '--json'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  const summary = readJsonLine(r.stdout);
  assert.deepEqual(Object.keys(summary).sort(), [
    'attempts',
    'bytes',
    'item',
    'orderId',
    'server',
    'sha256',
    'waitedSeconds',
  ]);
  assert.equal(summary.item, '/apps/small.txt');
  assert.equal(summary.bytes, Buffer.byteLength(SMALL));
  assert.equal(summary.sha256, sha(SMALL));
  assert.equal(summary.attempts, 1);
  assert.equal(summary.waitedSeconds, 0);
  assert.ok(['a', 'b', 'c'].includes(summary.server as string));
  assert.equal(typeof summary.orderId, 'string');
  assert.equal(readFileSync(path.join(cwd, 'small.txt'), 'utf8'), SMALL);
  assert.deepEqual(readdirSync(cwd), ['small.txt'], 'no .part or sidecar left');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no escape codes or bell off a terminal
  assert.doesNotMatch(r.stdout + r.stderr, /[\u0007\u001b]/);

  const order = (await (
    await fetch(`${stack.dep.config.reception.publicUrl}/api/orders/${summary.orderId}`)
  ).json()) as {
    item: string;
  };
  assert.equal(order.item, '/apps/small.txt');
});

test('-o into a folder, --quiet prints nothing', { timeout: 60_000 }, async () => {
  const cwd = freshDir('quiet');
  const r = await runRushgate(['get', stack.url('/apps/small.txt'), '-o', 'sub/', '--quiet'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  assert.equal(readFileSync(path.join(cwd, 'sub', 'small.txt'), 'utf8'), SMALL);
});

test('an unknown item: exit 1, no file', { timeout: 60_000 }, async () => {
  const cwd = freshDir('unknown');
  const r = await runRushgate(['get', stack.url('/apps/nope.bin'), '--json'], { cwd });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /No content server holds this item|unknown/i);
  assert.deepEqual(readdirSync(cwd), []);
  assert.deepEqual((readJsonLine(r.stdout).error as { code: string }).code, 'unknown_item');
});

test('bad usage: exit 2', { timeout: 60_000 }, async () => {
  const cwd = freshDir('usage');
  for (const args of [
    ['get'],
    ['get', 'not-a-url'],
    ['get', stack.url('/apps/small.txt'), '--max-wait', 'soon'],
    ['get', stack.url('/apps/small.txt'), '--limit-rate', 'fast'],
  ]) {
    const r = await runRushgate(args, { cwd });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.deepEqual(readdirSync(cwd), []);
});

test('a corrupted copy on a content server: exit 4 and no file left', { timeout: 60_000 }, async () => {
  corruptInPlace(stack.fileOf('/only-c/corrupt.bin', 'c'));
  // The catalog may drop the item for a moment while the file looks freshly changed.
  await new Promise((r) => setTimeout(r, 1500));
  await waitForItem(stack.url('/only-c/corrupt.bin'));
  const cwd = freshDir('corrupt');
  const r = await runRushgate(['get', stack.url('/only-c/corrupt.bin'), '--json'], { cwd });
  assert.equal(r.code, 4, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /integrity/);
  assert.deepEqual(readdirSync(cwd), [], 'neither the file nor its .part nor the sidecar');
  const summary = readJsonLine(r.stdout);
  assert.equal((summary.error as { code: string }).code, 'integrity');
  assert.equal(summary.server, 'c');
});

test('killed mid-transfer (SIGKILL), the rerun continues the same order with Range', {
  timeout: 90_000,
}, async () => {
  const cwd = freshDir('resume');
  const file = path.join(cwd, 'big.bin');
  const first = startRushgate(['get', stack.url('/data/big.bin'), '--limit-rate', '6M'], { cwd });
  await waitUntil(
    () => existsSync(`${file}.part`) && statSync(`${file}.part`).size >= 4 * 1024 * 1024,
    60_000,
    'the first run to hold 4 MiB',
  );
  first.child.kill('SIGKILL');
  await first.exited;
  const held = statSync(`${file}.part`).size;
  assert.ok(held < BIG.length, 'killed before the end');
  const { orderId } = readSidecarOf(file);

  const second = await runRushgate(['get', stack.url('/data/big.bin'), '--json'], { cwd, timeoutMs: 60_000 });
  assert.equal(second.code, 0, second.stderr);
  const summary = readJsonLine(second.stdout);
  assert.equal(summary.orderId, orderId, 'the same order');
  assert.equal(summary.sha256, sha(BIG));
  assert.equal(summary.bytes, BIG.length);
  assert.match(second.stderr, /continuing order|resuming/);
  assert.ok(readFileSync(file).equals(BIG));
  assert.deepEqual(readdirSync(cwd), ['big.bin']);

  const order = (await (
    await fetch(`${stack.dep.config.reception.publicUrl}/api/orders/${orderId}`)
  ).json()) as {
    tickets: { delivered: number }[];
  };
  const delivered = order.tickets.reduce((n, t) => n + t.delivered, 0);
  assert.ok(delivered >= BIG.length, 'the content servers count every byte once');
});

test('Ctrl-C (SIGINT) mid-transfer leaves a resumable .part; the rerun finishes it', {
  timeout: 90_000,
}, async () => {
  const cwd = freshDir('ctrl-c');
  const file = path.join(cwd, 'big.bin');
  const first = startRushgate(['get', stack.url('/data/big.bin'), '--limit-rate', '6M'], { cwd });
  await waitUntil(
    () => existsSync(`${file}.part`) && statSync(`${file}.part`).size >= 2 * 1024 * 1024,
    60_000,
    'the first run to hold 2 MiB',
  );
  first.child.kill('SIGINT');
  assert.equal(await first.exited, 130, first.output());
  assert.match(first.output(), /run the same command again to continue/);
  assert.ok(existsSync(`${file}.part`) && existsSync(`${file}.part.json`), 'the .part and its sidecar stay');
  const { orderId } = readSidecarOf(file);

  const second = await runRushgate(['get', stack.url('/data/big.bin'), '--json'], { cwd, timeoutMs: 60_000 });
  assert.equal(second.code, 0, second.stderr);
  const summary = readJsonLine(second.stdout);
  assert.equal(summary.orderId, orderId);
  assert.equal(summary.sha256, sha(BIG));
  assert.deepEqual(readdirSync(cwd), ['big.bin']);
});
