/**
 * What a content server knows only in memory survives its restart (issue 8): the reception sends a
 * server with a new instance id every revocation still in force and, under `strict`, the notices
 * of tickets that may still be used, before using it again. Without that, a revoked ticket would
 * be served again after a restart (`expiring`), and a client holding a valid ticket would get
 * `no_notice` (`strict`).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { startRushgate } from '../helpers/proc.js';
import { type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/small.bin';
const BODY = randomBytes(64 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');

async function order(stack: Stack): Promise<{ orderId: string; ticket: { url: string } }> {
  const res = await fetch(stack.url('/api/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: ITEM }),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as { orderId: string; ticket: { url: string } };
}

/** SIGKILL content server a and start it again (a new instance id). */
async function restartA(stack: Stack): Promise<void> {
  const old = stack.contents.get('a')!;
  old.child.kill('SIGKILL');
  await old.exited;
  stack.contents.set(
    'a',
    startRushgate(['content', '--config', stack.dep.configPath, '--id', 'a', '--grace-seconds', '1']),
  );
}

async function withStack(policy: string, body: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack({
    servers: 1,
    reception: { tickets: { policy, claimSeconds: 600 } },
    items: { [ITEM]: { content: BODY } },
  });
  try {
    await body(stack);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stack.logs()}`);
  } finally {
    await stack.stop();
  }
}

describe('a content server restart', { timeout: 180_000 }, () => {
  it('expiring: a revoked ticket still gets 410 after the restart', async () => {
    await withStack('expiring', async (stack) => {
      const o = await order(stack);
      const revoke = await fetch(`${stack.internalUrl}/orders/${o.orderId}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.dep.config.secrets.internalToken}` },
      });
      assert.equal(revoke.status, 200);
      assert.equal((await fetch(o.ticket.url, { method: 'HEAD' })).status, 410, 'revoked before');
      await restartA(stack);
      // The new instance first knows nothing (200); the reception tells it again (410 for good).
      await waitUntil(
        async () => (await fetch(o.ticket.url, { method: 'HEAD' })).status === 410,
        60_000,
        'the restarted server to refuse the revoked ticket',
      );
      const dl = await fetch(o.ticket.url);
      await dl.arrayBuffer();
      assert.equal(dl.status, 410);
    });
  });

  it('strict: a ticket issued before the restart is served after it', async () => {
    await withStack('strict', async (stack) => {
      const o = await order(stack);
      await restartA(stack);
      let status = 0;
      await waitUntil(
        async () => {
          status = (await fetch(o.ticket.url, { method: 'HEAD' })).status;
          return status === 200;
        },
        60_000,
        'the restarted server to know the notice again',
      ).catch((err) => {
        throw new Error(`${(err as Error).message} (last status ${status})`);
      });
      const dl = await fetch(o.ticket.url);
      assert.equal(dl.status, 200);
      assert.equal(
        createHash('sha256')
          .update(Buffer.from(await dl.arrayBuffer()))
          .digest('hex'),
        SHA,
      );
    });
  });
});
