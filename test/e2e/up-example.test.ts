/**
 * `npm start` from a fresh folder (CONTRACT §1): `rushgate up` without `--config` prepares the
 * built-in example deployment (keys, sample items, SQLite store) under `RUSHGATE_DATA_DIR`, runs a
 * reception and three content servers, prints where they are and a ready-to-paste `rushgate get`
 * line that works, and stops cleanly on SIGTERM (exit 0, every child stopped). A second start
 * reuses the secrets; a taken port is named and exits 2 before anything is generated. Ports come
 * from `RUSHGATE_EXAMPLE_BASE_PORT`, chosen free by the test.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Proc, runRushgate, startRushgate } from '../helpers/proc.js';
import { alive, childrenOf, waitUntil } from './get-harness.js';

const OFFSETS = [0, 1, 2, 3, 1000, 1001, 1002, 1003];

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the OS hands out now (a candidate base; the example's ports are fixed offsets from it). */
function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A base port whose eight example ports (base…base+3, base+1000…base+1003) are all free now. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = await osPort();
    if (base + 1003 > 65535) continue;
    const free = await Promise.all(OFFSETS.map((o) => canBind(base + o)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free block of example ports');
}

let dir: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rushgate-up-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function startUp(base: number, detached = false): Promise<Proc> {
  const up = startRushgate(['up'], {
    cwd: dir,
    detached,
    env: { RUSHGATE_DATA_DIR: path.join(dir, 'data'), RUSHGATE_EXAMPLE_BASE_PORT: String(base) },
  });
  await waitUntil(
    () => {
      if (up.child.exitCode !== null) throw new Error(`up exited early:\n${up.output()}`);
      return /\[up\] ready: /.test(up.output());
    },
    120_000,
    'rushgate up to say it is ready',
  ).catch((err) => {
    up.child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${up.output()}`);
  });
  return up;
}

test('npm start: a fresh folder gets a working example deployment, and SIGTERM stops it', {
  timeout: 240_000,
}, async () => {
  let base = await freeBase();
  let children: number[] = [];
  let up = await startUp(base).catch(async () => {
    // Another process may have taken one of the ports between the check and the start: once more.
    base = await freeBase();
    return startUp(base);
  });
  try {
    const out = up.output();
    const reception = `http://127.0.0.1:${base}`;
    assert.ok(out.includes(`reception        ${reception}`), out);
    assert.ok(out.includes(`http://127.0.0.1:${base + 1000}/dashboard`));
    assert.ok(out.includes(`http://127.0.0.1:${base + 1000}/metrics`));
    const line = /npx rushgate get (http:\/\/\S+\/hello\.txt)/.exec(out);
    assert.ok(line, 'a ready-to-paste get line');

    const data = path.join(dir, 'data');
    assert.ok(existsSync(path.join(data, 'secrets.yaml')));
    assert.ok(existsSync(path.join(data, 'reception.db')));
    assert.equal(statSync(path.join(data, 'content', 'sample', 'big.bin')).size, 256 * 1024 * 1024);
    assert.equal(
      statSync(path.join(data, 'secrets.yaml')).mode & 0o077,
      0,
      'secrets readable by the owner only',
    );

    const got = await runRushgate(['get', line[1]!, '--json', '-o', path.join(dir, 'hello.txt')], {
      cwd: dir,
    });
    assert.equal(got.code, 0, `${got.stderr}\n${up.output()}`);
    assert.equal(
      readFileSync(path.join(dir, 'hello.txt'), 'utf8'),
      readFileSync(path.join(data, 'content', 'sample', 'hello.txt'), 'utf8'),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${base + 1000}/metrics`)).text();
    assert.match(metrics, /rushgate_reception_tickets_issued_total/);
    children = [...childrenOf(up.child.pid!).keys()];
    assert.equal(children.length, 4, 'a reception and three content servers');
  } finally {
    up.child.kill('SIGTERM');
  }
  assert.equal(await up.exited, 0, up.output());
  assert.match(up.output(), /\[up\] stopped/);
  assert.deepEqual(
    children.filter((pid) => alive(pid)),
    [],
    'every child has stopped',
  );

  // A restart reuses the data folder: same secrets, nothing generated again. This time it is
  // stopped the way a terminal's Ctrl-C does it: SIGINT to the whole process group, which must
  // still be ONE graceful stop for every child, not a "second signal" that cuts it short.
  const secrets = readFileSync(path.join(dir, 'data', 'secrets.yaml'), 'utf8');
  base = await freeBase();
  up = await startUp(base, true);
  process.kill(-up.child.pid!, 'SIGINT');
  assert.equal(await up.exited, 0, up.output());
  assert.doesNotMatch(up.output(), /second signal|cut short|did not stop/);
  assert.equal(readFileSync(path.join(dir, 'data', 'secrets.yaml'), 'utf8'), secrets);
  assert.doesNotMatch(up.output(), /\[up\] created /);
});

test('a taken port: named, exit 2, nothing started', { timeout: 60_000 }, async () => {
  const base = await freeBase();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: base + 2 }, resolve));
  try {
    const other = mkdtempSync(path.join(tmpdir(), 'rushgate-up-taken-'));
    const r = await runRushgate(['up'], {
      cwd: other,
      env: { RUSHGATE_DATA_DIR: path.join(other, 'data'), RUSHGATE_EXAMPLE_BASE_PORT: String(base) },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`port 127\\.0\\.0\\.1:${base + 2} \\(contentServers\\[1\\]\\.listen \\(b\\)\\) is in use`),
    );
    assert.ok(!existsSync(path.join(other, 'data')), 'nothing generated');
    rmSync(other, { recursive: true, force: true });
  } finally {
    blocker.close();
  }
});
