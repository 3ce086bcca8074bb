/**
 * `rushgate rush` as a crowd, not one machine: 48 buyers on loopback, each from its own 127.x.y.z
 * address, downloading at `--rate` so slots turn over like real downloads. The reception allows
 * one live ticket and one place in line per address (`limits`), and tickets are bound to the
 * client address (policy `strict`), so a shared address would end in `client_limit` refusals and
 * a wrong address in `wrong_client`. The JSON report must add up: every buyer admitted with its
 * file intact, tickets per server summing to the tickets and matching the reception's metrics,
 * calibration over exactly the buyers that waited, slot use sampled from `/status`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { RushReport } from '../../src/client/rush-report.js';
import { runRushgate } from '../helpers/proc.js';
import { metricValue, readJsonLine, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/launch/small.bin';
const CLIENTS = 48;
const SIZE = 96 * 1024;

let stack: Stack;

before(async () => {
  stack = await startStack({
    servers: 3,
    server: () => ({ capacity: 2 }),
    reception: {
      queue: { holdSeconds: 3, maxRetryAfterSeconds: 3, abandonSeconds: 30 },
      limits: { ticketsPerClient: 1, placesPerClient: 1 },
    },
    items: { [ITEM]: { content: randomBytes(SIZE) } },
  });
});

after(async () => {
  await stack?.stop();
});

test('48 buyers, each from its own address, at --rate: all admitted, files intact, a report that adds up', {
  timeout: 240_000,
}, async () => {
  const r = await runRushgate(
    [
      'rush',
      stack.url(ITEM),
      '--clients',
      String(CLIENTS),
      '--rate',
      '128K',
      '--status',
      `${stack.internalUrl}/status`,
      '--json',
      '--max-seconds',
      '200',
    ],
    { timeoutMs: 230_000 },
  );
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = readJsonLine(r.stdout) as unknown as RushReport;
  const all = JSON.stringify(report);
  assert.equal(report.sourceAddresses, 'per-buyer');
  assert.equal(report.rateBytesPerSecond, 128 * 1024);
  assert.deepEqual(
    report.outcomes,
    { done: CLIENTS, busy_timeout: 0, integrity: 0, failed: 0, unfinished: 0 },
    all,
  );
  assert.deepEqual(report.integrity, { intact: CLIENTS, mismatched: 0, unchecked: 0 });
  assert.deepEqual(report.errors, {});
  assert.equal(report.throughput.bytes, CLIENTS * SIZE);
  const perServer = Object.values(report.ticketsPerServer).reduce((a, b) => a + b, 0);
  assert.equal(perServer, report.tickets, 'tickets per server sum to the tickets');
  assert.ok(report.tickets >= CLIENTS);
  // Six slots for 48 buyers: most waited, and every waiter that got in is a calibration sample.
  assert.ok(report.waited > CLIENTS / 2, all);
  assert.equal(report.calibration.samples, report.waited);
  assert.ok(
    report.calibration.medianAbsErrorSeconds !== null && report.calibration.medianRelativeError !== null,
  );
  assert.ok(report.calibration.admittedBeforeEstimate !== null);
  assert.ok(report.waitSeconds.p50 !== null && report.waitSeconds.p99! >= report.waitSeconds.p50);
  assert.ok(report.fifo.pairs > 0, 'waiters that surely joined in order');
  assert.ok(report.fifo.inversions <= report.fifo.pairs);
  assert.ok(report.slotUse !== null && report.slotUse.samplesWhileWaiting > 0, 'slot use was sampled');
  assert.ok(report.slotUse.whileWaiting !== null && report.slotUse.whileWaiting <= 1);
  assert.ok(report.admissionSeconds.p99! >= report.admissionSeconds.p50!);
  assert.ok(report.completionSeconds.p99! >= report.completionSeconds.p50!);

  await waitUntil(
    async () =>
      metricValue(await stack.metrics(), 'rushgate_reception_transfer_events_total', { type: 'fulfilled' }) >=
      CLIENTS,
    15_000,
    'every fulfilment reported',
  );
  const m = await stack.metrics();
  for (const server of ['a', 'b', 'c']) {
    assert.equal(
      metricValue(m, 'rushgate_reception_tickets_issued_total', { server }),
      report.ticketsPerServer[server] ?? 0,
      `tickets issued for ${server}`,
    );
  }
  assert.equal(
    metricValue(m, 'rushgate_reception_orders_total'),
    report.attempts,
    'order and ticket requests',
  );
  assert.equal(metricValue(m, 'rushgate_reception_orders_total', { result: 'busy' }), report.busyAnswers);
  console.log(
    `# rush of ${CLIENTS}: waited ${report.waited}, held answers ${report.heldAnswers}, wait p50 ${report.waitSeconds.p50} s, ` +
      `calibration ${JSON.stringify(report.calibration)}, fifo ${JSON.stringify(report.fifo)}, slot use ${JSON.stringify(report.slotUse)}`,
  );
});
