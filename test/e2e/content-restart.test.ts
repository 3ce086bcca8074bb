/**
 * A content server killed in the middle of a transfer and started again (issue 8, "slots never
 * leak"): the ticket it was serving stays `downloading` in the store, and no transfer event will
 * ever end it — the old instance's outbox died with it. The restarted server reports a new
 * instance id in its load report; the reception ends every ticket the old instance held as
 * abandoned and frees its slot, so the server takes orders again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startRushgate } from '../helpers/proc.js';
import { holdSlot, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/big.bin';
const BODY = randomBytes(48 * 1024 * 1024);

let stack: Stack;

before(async () => {
  stack = await startStack({
    servers: 1,
    server: () => ({ capacity: 1 }),
    // Long claims: only the restart (not a silence past claimSeconds) may end the ticket here.
    reception: { tickets: { claimSeconds: 600 }, queue: { enabled: false } },
    items: { [ITEM]: { content: BODY } },
  });
});

after(async () => {
  await stack?.stop();
});

async function outstandingOnA(): Promise<number> {
  const res = await fetch(`${stack.internalUrl}/status`);
  const body = (await res.json()) as { servers: { id: string; outstanding: number; health: string }[] };
  return body.servers.find((s) => s.id === 'a')?.outstanding ?? -1;
}

async function order(): Promise<{ status: number; body: { orderId?: string; status?: string } }> {
  const res = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: ITEM }),
  });
  return { status: res.status, body: (await res.json()) as { orderId?: string; status?: string } };
}

test('SIGKILL mid-transfer, then a restart: the dead transfer’s slot is freed', {
  timeout: 120_000,
}, async () => {
  const held = await holdSlot(stack, ITEM, path.join(stack.dep.dir, 'holder'));
  try {
    await waitUntil(async () => (await outstandingOnA()) === 1, 30_000, 'the slot of a taken');
    assert.equal((await order()).status, 503, 'the only slot is taken');

    const old = stack.contents.get('a')!;
    old.child.kill('SIGKILL');
    await old.exited;
    const again = startRushgate([
      'content',
      '--config',
      stack.dep.configPath,
      '--id',
      'a',
      '--grace-seconds',
      '1',
    ]);
    stack.contents.set('a', again);

    await waitUntil(
      async () => (await outstandingOnA()) === 0,
      60_000,
      'the old ticket ended and its slot freed',
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${stack.logs()}`);
    });
    let got = { status: 0, body: {} as { status?: string } };
    await waitUntil(
      async () => {
        got = await order();
        return got.status === 201;
      },
      60_000,
      'a new order to get the freed slot',
    );
    assert.equal(got.body.status, 'ticketed');
  } finally {
    held.holder.child.kill('SIGKILL');
    held.holder.child.kill('SIGCONT');
    await held.holder.exited;
  }
});
