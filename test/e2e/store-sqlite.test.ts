/**
 * The `sqlite:` store against the shared store contract (test/store-contract.ts) on real files in
 * a temp folder, plus what only SQLite has: the folder is created, the file is owned by one
 * process, the schema version is recorded, and what `createOrder` acknowledged survives a
 * SIGKILL of the process (the reception's failure model).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { storeContract } from '../store-contract.js';

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'rushgate-store-'));
}

storeContract('sqlite:', async () => {
  const dir = tempDir();
  const url = `sqlite:${path.join(dir, 'nested', 'reception.db')}`;
  const s = {
    store: await openStore(url, { logger: silentLogger }),
    reopen: () => openStore(url, { logger: silentLogger }),
    async cleanup() {
      await s.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return s;
});

test('sqlite: creates its folder, records the schema version, and refuses a second owner', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'a', 'b', 'reception.db');
    const store = await openStore(`sqlite:${file}`, { logger: silentLogger });
    await assert.rejects(openStore(`sqlite:${file}`, { logger: silentLogger }), /in use by another process/);
    await store.createOrder({ id: 'o1', item: '/x', clientAddress: '127.0.0.1', createdAt: 1 }, 1000);
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), 3);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal((db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n, 1);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a version 2 file gains the line due times and keeps its waiters', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'reception.db');
    const store = await openStore(`sqlite:${file}`, { logger: silentLogger });
    await store.joinLine({ token: 'old', now: 10, firstEstimateSeconds: 4 }, 100);
    await store.close();
    // What version 2 wrote: the line without its due_at column.
    const db = new Database(file);
    db.exec('ALTER TABLE line DROP COLUMN due_at');
    db.pragma('user_version = 2');
    db.close();

    const reopened = await openStore(`sqlite:${file}`, { logger: silentLogger });
    try {
      assert.equal('dueAt' in ((await reopened.findInLine('old'))?.entry ?? {}), false);
      assert.equal((await reopened.touchLine('old', 20, 3020))?.entry.dueAt, 3020);
    } finally {
      await reopened.close();
    }
    const check = new Database(file, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 3);
      assert.deepEqual(check.prepare('SELECT token, due_at FROM line').all(), [
        { token: 'old', due_at: 3020 },
      ]);
    } finally {
      check.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a file from a newer rushgate is refused', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'reception.db');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    await assert.rejects(openStore(`sqlite:${file}`, { logger: silentLogger }), /schema version 99/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const STORE_MODULE = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'store', 'index.ts'),
).href;

test('sqlite: every order acknowledged before a SIGKILL is there after reopening', {
  timeout: 60_000,
}, async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'reception.db');
    const writer = path.join(dir, 'writer.mts');
    // Creates orders without end and reports each one only after createOrder resolved.
    writeFileSync(
      writer,
      `import { openStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openStore(${JSON.stringify(`sqlite:${file}`)}, { logger: { info() {}, debug() {} } });
await store.joinLine({ token: 'q-before-kill', now: 1, firstEstimateSeconds: 2 }, 1000);
for (let i = 0; ; i++) {
  await store.createOrder({ id: 'o' + i, item: '/x', clientAddress: '127.0.0.1', createdAt: i }, 60000);
  await store.reserveTicket(
    { id: 't' + i, orderId: 'o' + i, server: 'a', url: 'u', issuedAt: i, notBefore: i, expiresAt: i + 1e9, claimBy: i + 1e9 },
    { capacity: 1e9, untracked: 0, maxTicketsPerOrder: 5 },
  );
  process.stdout.write('o' + i + '\\n');
}
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', writer], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 200) resolve();
      });
      child.on('exit', () => reject(new Error(`writer exited early: ${err}`)));
    });
    child.kill('SIGKILL');
    await exited;
    const acknowledged = out.split('\n').filter((l) => /^o\d+$/.test(l));
    assert.ok(acknowledged.length >= 200);
    const store = await openStore(`sqlite:${file}`, { logger: silentLogger });
    try {
      for (const id of acknowledged) {
        const order = await store.getOrder(id);
        assert.equal(order?.status, 'ticketed', `order ${id} acknowledged before the kill`);
      }
      const onA = (await store.outstanding()).get('a');
      for (const id of acknowledged) assert.ok(onA?.has(`t${id.slice(1)}`));
      assert.deepEqual(
        (await store.lineFront(10)).map((e) => e.token),
        ['q-before-kill'],
      );
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: a new store file is created readable by its owner only (0600)', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'reception.db');
  const store = await openStore(`sqlite:${file}`, { logger: silentLogger });
  try {
    assert.equal(statSync(file).mode & 0o777, 0o600);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
