/**
 * `rushgate get` when its content server dies mid-transfer (CONTRACT §3 fresh tickets, §5): the
 * server is killed with SIGKILL while the client is downloading; the client asks the reception
 * for a fresh ticket for the same order, which names the other server, resumes there with Range
 * from the first missing byte, and ends with the right SHA-256.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startRushgate } from '../helpers/proc.js';
import { readJsonLine, readSidecarOf, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/media/film.bin';
const BODY = randomBytes(40 * 1024 * 1024);
const SHA = createHash('sha256').update(BODY).digest('hex');

let stack: Stack;

before(async () => {
  stack = await startStack({ servers: 2, items: { [ITEM]: { content: BODY } } });
});

after(async () => {
  await stack?.stop();
});

test('the server dies mid-transfer: a fresh ticket, resumed on the other server', {
  timeout: 90_000,
}, async () => {
  const cwd = path.join(stack.dep.dir, 'failover');
  mkdirSync(cwd);
  const file = path.join(cwd, 'film.bin');
  const client = startRushgate(['get', stack.url(ITEM), '--json', '--limit-rate', '8M'], { cwd });
  await waitUntil(
    () => existsSync(`${file}.part`) && statSync(`${file}.part`).size >= 2 * 1024 * 1024,
    60_000,
    'the client to hold 2 MiB',
  ).catch((err) => {
    throw new Error(`${(err as Error).message}\n--- client\n${client.output()}\n${stack.logs()}`);
  });
  const first = readSidecarOf(file);
  const victim = first.ticket?.server;
  assert.ok(victim === 'a' || victim === 'b', `the sidecar names the server: ${JSON.stringify(first)}`);
  const proc = stack.contents.get(victim)!;
  proc.child.kill('SIGKILL');
  await proc.exited;

  assert.equal(await client.exited, 0, client.output());
  const out = client.output();
  const summary = readJsonLine(
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .join('\n'),
  );
  const survivor = victim === 'a' ? 'b' : 'a';
  assert.equal(summary.server, survivor, 'finished on the other server');
  assert.equal(summary.orderId, first.orderId, 'the same order');
  assert.equal(summary.sha256, SHA);
  // The order, then fresh-ticket requests: those the reception answers `409 ticket_live` (it
  // still believes the victim up) are waited out and counted too. One fresh ticket is checked
  // below, on the order itself.
  assert.ok(Number(summary.attempts) >= 2, `attempts: ${String(summary.attempts)}`);
  assert.match(out, new RegExp(`server ${victim} failed`));
  assert.match(out, new RegExp(`resuming ${ITEM} from server ${survivor} at`));
  assert.ok(readFileSync(file).equals(BODY));

  const order = (await (
    await fetch(`${stack.dep.config.reception.publicUrl}/api/orders/${first.orderId}`)
  ).json()) as {
    tickets: { server: string }[];
  };
  assert.deepEqual(
    order.tickets.map((t) => t.server),
    [victim, survivor],
  );
});
