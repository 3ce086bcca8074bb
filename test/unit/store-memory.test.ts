/**
 * The `memory:` store against the shared store contract (test/store-contract.ts), plus the
 * `openStore` URL dispatch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryStore, openStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/util/log.js';
import { storeContract } from '../store-contract.js';

storeContract('memory:', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

test('openStore("memory:") opens a working store; unknown schemes are refused', async () => {
  const store = await openStore('memory:', { logger: silentLogger });
  assert.deepEqual(await store.lineFront(10), []);
  await store.close();
  await assert.rejects(openStore('postgres://x', { logger: silentLogger }), /unknown store/);
  await assert.rejects(openStore('sqlite:', { logger: silentLogger }), /needs a file path/);
});
