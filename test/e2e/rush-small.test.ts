/**
 * `rushgate rush` against a small real deployment (three content servers of capacity 2): twelve
 * simulated buyers rush one item at once, some wait in line, all get it; the report has no errors
 * and its totals match the reception's own metrics (`GET {internal}/metrics`): tickets per server,
 * busy answers, order and ticket requests, admissions from the line, fulfilled transfers; and
 * `--buyers FILE` holds the per-buyer records those totals are made of.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { BuyerRecord, RushReport } from '../../src/client/rush-report.js';
import { runRushgate } from '../helpers/proc.js';
import { metricValue, readJsonLine, type Stack, startStack, waitUntil } from './get-harness.js';

const ITEM = '/launch/day-one.bin';
const CLIENTS = 12;

let stack: Stack;

before(async () => {
  stack = await startStack({
    servers: 3,
    server: () => ({ capacity: 2 }),
    reception: { queue: { holdSeconds: 3, maxRetryAfterSeconds: 2, abandonSeconds: 20 } },
    items: { [ITEM]: { content: randomBytes(16 * 1024 * 1024) } },
  });
});

after(async () => {
  await stack?.stop();
});

test('a rush of 12 buyers: no errors, and totals that match the reception metrics', {
  timeout: 180_000,
}, async () => {
  const buyersFile = path.join(mkdtempSync(path.join(tmpdir(), 'rushgate-buyers-')), 'buyers.jsonl');
  const r = await runRushgate(
    [
      'rush',
      stack.url(ITEM),
      '--clients',
      String(CLIENTS),
      '--json',
      '--max-seconds',
      '150',
      '--buyers',
      buyersFile,
    ],
    {
      timeoutMs: 170_000,
    },
  );
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = readJsonLine(r.stdout) as unknown as RushReport;
  assert.equal(report.outcomes.done, CLIENTS, JSON.stringify(report));
  assert.deepEqual(report.errors, {});
  assert.equal(report.clients, CLIENTS);
  assert.ok(report.tickets >= CLIENTS);
  assert.ok(report.busyAnswers > 0, 'capacity 6 for 12 buyers at once: some waited');
  assert.ok(report.waited > 0);
  assert.ok(report.admissionSeconds.p50 !== null && report.admissionSeconds.p99 !== null);
  assert.ok(report.completionSeconds.p99! >= report.completionSeconds.p50!);
  assert.equal(report.throughput.bytes, CLIENTS * 16 * 1024 * 1024);
  assert.ok(report.calibration.samples > 0);
  const buyers = readFileSync(buyersFile, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as BuyerRecord);
  assert.equal(buyers.length, CLIENTS, 'one record per buyer');
  assert.ok(buyers.every((b) => b.outcome === 'done' && b.admittedAtMs !== undefined));
  assert.equal(
    buyers.reduce((n, b) => n + b.bytes, 0),
    report.throughput.bytes,
  );
  assert.equal(
    buyers.filter((b) => b.firstEstimateSeconds !== undefined).length,
    report.waited,
    'the waiters are the buyers with a first estimate',
  );
  // Each buyer's timeline of tries adds up to its counts, in order, ending with its ticket.
  for (const b of buyers) {
    const tries = b.tries ?? [];
    assert.equal(tries.length, b.attempts, 'one entry per try');
    assert.equal(tries.filter(([, , k]) => k === 'b' || k === 'h').length, b.busyAnswers);
    assert.equal(tries.at(-1)?.[2], 't', 'the last try got the ticket');
    assert.ok(
      tries.every(([asked, answered], i) => answered >= asked && (i === 0 || asked >= tries[i - 1]![1])),
    );
  }

  // The content servers report fulfilment within about a second; wait for the last events.
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
    metricValue(m, 'rushgate_reception_orders_total', { result: 'busy' }),
    report.busyAnswers,
    'busy answers',
  );
  assert.equal(
    metricValue(m, 'rushgate_reception_orders_total'),
    report.attempts,
    'order and ticket requests',
  );
  assert.equal(
    metricValue(m, 'rushgate_reception_admissions_total'),
    report.waited,
    'admitted from the line',
  );
  assert.equal(
    metricValue(m, 'rushgate_reception_transfer_events_total', { type: 'fulfilled' }),
    report.outcomes.done,
  );
  console.log(
    `# rush: ${report.tickets} tickets ${JSON.stringify(report.ticketsPerServer)}, ${report.busyAnswers} busy answers, ` +
      `admission p50 ${report.admissionSeconds.p50} s p99 ${report.admissionSeconds.p99} s, ` +
      `completion p50 ${report.completionSeconds.p50} s p99 ${report.completionSeconds.p99} s, ` +
      `calibration ${JSON.stringify(report.calibration)}`,
  );
});

test('the human report names every figure', { timeout: 60_000 }, async () => {
  const r = await runRushgate(['rush', stack.url(ITEM), '--clients', '2', '--max-seconds', '50']);
  assert.equal(r.code, 0, r.stderr);
  for (const label of [
    'files               2 intact',
    'tickets per server',
    'busy answers',
    'waits',
    'calibration',
    'FIFO',
    // Not sampled (no --status): said so, not printed as 0 %.
    'slot use            not measured',
    'time to admission',
    'time to completion',
    'throughput',
    'errors              none',
  ]) {
    assert.ok(r.stdout.includes(label), `${label} in:\n${r.stdout}`);
  }
});

test('bad usage: exit 2', { timeout: 30_000 }, async () => {
  for (const args of [
    ['rush', stack.url(ITEM)],
    ['rush', stack.url(ITEM), '--clients', '0'],
    ['rush', stack.url(ITEM), '--clients', 'many'],
    ['rush', 'nope', '--clients', '1'],
  ]) {
    const r = await runRushgate(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});
