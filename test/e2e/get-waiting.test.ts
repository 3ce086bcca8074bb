/**
 * `rushgate get` in line (CONTRACT §3 busy answers, §5; the seed's FIG. 12C): one content server
 * with capacity 1, held by a slow first download. A second client waits, shows its position,
 * retries with its queue token and is admitted once the slot frees; with `--max-wait` it gives up
 * with exit 3 and leaves no file; on a terminal (a pseudo-terminal from `script`) it rings the bell
 * when admitted and draws a progress bar.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CLI, runRushgate, startRushgate } from '../helpers/proc.js';
import { holdSlot, readJsonLine, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/want.bin';
const BODY = randomBytes(1024 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');
/**
 * The holder's item is much larger than what loopback socket buffers hold: the server counts a byte
 * delivered once written to the connection, so a small item would free the slot while the slow
 * client is still reading it.
 */
const HOLD = '/hold.bin';
const HOLD_BODY = randomBytes(40 * 1024 * 1024);

let stack: Stack;

before(async () => {
  stack = await startStack({
    servers: 1,
    server: () => ({ capacity: 1 }),
    // Short holds and a short abandon time: a client that gave up (--max-wait) leaves the line quickly.
    reception: { queue: { holdSeconds: 2, maxRetryAfterSeconds: 2, abandonSeconds: 4 } },
    items: { [ITEM]: { content: BODY }, [HOLD]: { content: HOLD_BODY } },
  });
});

after(async () => {
  await stack?.stop();
});

function dir(name: string): string {
  const d = path.join(stack.dep.dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const holdTheSlot = (cwd: string) => holdSlot(stack, HOLD, path.join(cwd, 'holder'));

test('waits in line, then is admitted when the slot frees', { timeout: 90_000 }, async () => {
  const cwd = dir('wait');
  const hold = await holdTheSlot(cwd);
  const waiter = startRushgate(['get', stack.url(ITEM), '--json', '-o', 'waited.bin'], { cwd });
  try {
    await waitUntil(() => /position 1/.test(waiter.output()), 30_000, 'the waiter to be told its position');
    assert.ok(!existsSync(path.join(cwd, 'waited.bin.part')), 'nothing downloaded while in line');
  } finally {
    assert.equal(await hold.release(), 0, hold.holder.output());
  }
  assert.equal(await waiter.exited, 0, waiter.output());
  const out = waiter.output();
  const summary = readJsonLine(
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .join('\n'),
  );
  assert.equal(summary.sha256, SHA);
  assert.ok((summary.waitedSeconds as number) > 0, `it waited: ${out}`);
  assert.ok((summary.attempts as number) >= 2, 'it retried');
  // Held open (Prefer: wait) it waits for the slot; a retry the reception did not hold says when.
  assert.match(
    out,
    /in line for \/want\.bin: position 1, estimated wait \d+ s( \(likely \d+–\d+ s\))?, (next try in \d+ s|waiting for a free slot)/,
  );
  assert.match(out, /admitted: ticket for server a/);
  assert.ok(readFileSync(path.join(cwd, 'waited.bin')).equals(BODY));
});

test('--max-wait: still busy → exit 3, and no file', { timeout: 90_000 }, async () => {
  const cwd = dir('give-up');
  const hold = await holdTheSlot(cwd);
  try {
    const waiterDir = dir('give-up/waiter');
    const started = Date.now();
    const r = await runRushgate(['get', stack.url(ITEM), '--max-wait', '2', '--json'], { cwd: waiterDir });
    const elapsed = Date.now() - started;
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}\n${stack.logs()}`);
    assert.deepEqual(readdirSync(waiterDir), [], 'no file, no .part, no sidecar');
    assert.equal((readJsonLine(r.stdout).error as { code: string }).code, 'busy');
    assert.match(r.stderr, /still busy after --max-wait 2 s/);
    // Gives up at S seconds, not before; the upper bound is only a guard (process start included).
    assert.ok(elapsed >= 2000, `gave up after ${elapsed} ms`);
    assert.ok(elapsed < 10_000, `gave up after ${elapsed} ms`);
    console.log(`# --max-wait 2: exit 3 after ${elapsed} ms (process start included)`);
  } finally {
    assert.equal(await hold.release(), 0, hold.holder.output());
  }
});

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('on a terminal: the bell rings when admitted after waiting, and a progress bar is drawn', {
  timeout: 90_000,
  skip: hasScript ? false : 'util-linux `script` is not installed',
}, async () => {
  const cwd = dir('tty');
  const hold = await holdTheSlot(cwd);
  const log = path.join(cwd, 'typescript.log');
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} get ${stack.url(ITEM)} -o tty.bin`;
  // `script` gives the client a pseudo-terminal for stdout and stderr, as a user's terminal would.
  const p = startScript(['-qfec', command, log], cwd);
  const exited = new Promise<number>((resolve) => p.on('exit', (code) => resolve(code ?? -1)));
  try {
    await waitUntil(() => existsSync(log) && /position 1/.test(readFileSync(log, 'utf8')), 30_000, 'in line');
  } finally {
    assert.equal(await hold.release(), 0, hold.holder.output());
  }
  const r = await exited;
  assert.equal(r, 0, existsSync(log) ? readFileSync(log, 'utf8') : 'no log');
  const out = readFileSync(log, 'utf8');
  assert.ok(out.includes('\u0007'), 'the terminal bell');
  assert.ok(out.includes('\u001b[2K'), 'a live status line');
  assert.match(out, /100%/, 'a progress bar');
  assert.ok(readFileSync(path.join(cwd, 'tty.bin')).equals(BODY));
});

function startScript(args: string[], cwd: string) {
  return spawn('script', args, {
    cwd,
    stdio: 'ignore',
    env: { ...process.env, LOG_LEVEL: 'warn', TERM: 'xterm' },
  });
}
