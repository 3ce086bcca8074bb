/**
 * The chaos rehearsal in small (issue 8; `npm run chaos` is the long one): `rushgate up` with three
 * content servers, 200 buyers running `rushgate get`'s flow, a content server SIGKILLed every
 * ~15 s and the reception once, for ~60 s. Every buyer ends with the right bytes, no server ever
 * served more clients than its capacity (its own `rushgate_content_serving_max`), and the
 * reception never answered a 5xx other than 503 busy / store_unavailable. The kills themselves
 * are asserted too, so a rehearsal in which nothing was killed cannot pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChaos } from '../../bench/chaos.js';
import { formatChaosTable } from '../../bench/chaos-figures.js';

test('200 buyers through content-server and reception kills: all verified, capacity held, no stray 5xx', {
  timeout: 400_000,
}, async () => {
  const { figures, verdict } = await runChaos({
    buyers: 200,
    seconds: 60,
    killEverySeconds: 15,
    itemBytes: 1024 * 1024,
    capacity: 2,
    limitRate: 1024 * 1024,
  });
  const table = formatChaosTable(figures, verdict);
  process.stderr.write(`${table}\n`);
  assert.equal(figures.buyers.total, 200);
  assert.equal(figures.receptionKills, 1, table);
  assert.ok(figures.servers.reduce((n, s) => n + s.kills, 0) >= 2, table);
  assert.ok(
    figures.servers.every((s) => s.scrapes > 0),
    table,
  );
  assert.ok(
    figures.servers.some((s) => s.maxServing > 0),
    table,
  );
  // The reception's answers were really counted: at least one per buyer.
  const answered = Object.values(figures.answers).reduce((n, c) => n + c, 0);
  assert.ok(answered >= 200, table);
  assert.equal(figures.buyers.verified, 200, table);
  assert.ok(verdict.capacityHeld, table);
  assert.ok(verdict.no5xxBeyond503, table);
  assert.ok(verdict.ok, table);
});
