/**
 * The supervisor of `rushgate up` with small stand-in children (`node -e` scripts): output lines
 * prefixed by role, a crashing child restarted with backoff, a child that ignores SIGTERM killed
 * after the grace period, and no restart once a shutdown has begun.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSupervisor, type RoleSpec } from '../../src/deploy/supervisor.js';
import { waitUntil } from './get-harness.js';

function harness(roles: RoleSpec[]) {
  const out: string[] = [];
  const said: string[] = [];
  const sup = createSupervisor({
    roles,
    command: [process.execPath],
    out: (l) => out.push(l),
    err: (l) => out.push(l),
    say: (l) => said.push(l),
    backoff: { initialMs: 50, maxMs: 200, resetAfterMs: 60_000 },
  });
  return { sup, out, said };
}

test('prefixes lines by role and restarts a crashing child', { timeout: 30_000 }, async () => {
  const { sup, out, said } = harness([
    { name: 'crasher', args: ['-e', 'console.log("hello"); setTimeout(() => process.exit(3), 50)'] },
    { name: 'steady', args: ['-e', 'console.error("up"); setInterval(() => {}, 1000)'] },
  ]);
  sup.start();
  try {
    await waitUntil(
      () => said.filter((l) => /crasher exited \(code 3\)/.test(l)).length >= 3,
      20_000,
      'three crashes',
    );
    assert.ok(out.includes('[crasher] hello'), out.join('\n'));
    assert.ok(out.includes('[steady ] up'), out.join('\n'));
    const crasher = sup.status().find((s) => s.name === 'crasher')!;
    assert.ok(crasher.restarts >= 2);
    assert.equal(sup.status().find((s) => s.name === 'steady')!.restarts, 0);
    assert.match(said.join('\n'), /restarting in 0\.1 s/, 'the delay grows');
  } finally {
    await sup.stop(5000);
  }
  assert.ok(
    sup.status().every((s) => s.pid === undefined),
    'every child is gone',
  );
});

test('a child that ignores SIGTERM is killed after the grace period; nothing restarts', {
  timeout: 30_000,
}, async () => {
  const { sup, said, out } = harness([
    {
      name: 'stubborn',
      args: [
        '-e',
        'process.on("SIGTERM", () => console.log("ignoring")); console.log("ready"); setInterval(() => {}, 1000)',
      ],
    },
  ]);
  sup.start();
  await waitUntil(() => out.includes('[stubborn] ready'), 10_000, 'the child to start');
  await sup.stop(300);
  assert.ok(
    said.some((l) => /stubborn did not stop within/.test(l)),
    said.join('\n'),
  );
  assert.ok(!said.some((l) => /restarting/.test(l)), 'no restart during shutdown');
  assert.equal(sup.status()[0]!.pid, undefined);
});
