/**
 * The rehearsal report of `rushgate rush`: percentiles, tickets per server, busy answers, and
 * the calibration of the wait estimates (share admitted no later than the first estimate, median
 * absolute error), from hand-made buyer records.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BuyerRecord,
  buildReport,
  formatReport,
  median,
  percentile,
} from '../../src/client/rush-report.js';

test('percentile (nearest rank) and median', () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.equal(percentile([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 99), 10);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([]), null);
});

const buyer = (over: Partial<BuyerRecord>): BuyerRecord => ({
  outcome: 'done',
  startedMs: 0,
  admittedAfterMs: 100,
  finishedAfterMs: 1000,
  busyAnswers: 0,
  attempts: 1,
  tickets: ['a'],
  bytes: 1000,
  ...over,
});

test('totals, calibration and errors', () => {
  const report = buildReport(
    [
      buyer({}),
      buyer({ tickets: ['b'] }),
      // Waited 4 s against an estimate of 5 s: admitted before the estimate, error 1 s.
      buyer({
        tickets: ['a'],
        busyAnswers: 2,
        attempts: 3,
        firstEstimateSeconds: 5,
        admittedAfterMs: 4000,
        finishedAfterMs: 5000,
      }),
      // Waited 9 s against 6 s: late, error 3 s.
      buyer({
        tickets: ['c', 'b'],
        busyAnswers: 3,
        attempts: 5,
        firstEstimateSeconds: 6,
        admittedAfterMs: 9000,
        finishedAfterMs: 9500,
      }),
      buyer({
        outcome: 'failed',
        errorCode: 'unknown_item',
        tickets: [],
        bytes: 0,
        admittedAfterMs: undefined,
      }),
      buyer({ outcome: 'unfinished', errorCode: 'unfinished', tickets: ['c'], bytes: 10 }),
    ],
    { url: 'http://r/x', clients: 6, concurrency: 6, durationMs: 10_000 },
  );
  assert.deepEqual(report.outcomes, { done: 4, busy_timeout: 0, integrity: 0, failed: 1, unfinished: 1 });
  assert.deepEqual(report.ticketsPerServer, { a: 2, b: 2, c: 2 });
  assert.equal(report.tickets, 6);
  assert.equal(report.attempts, 1 + 1 + 3 + 5 + 1 + 1);
  assert.equal(report.busyAnswers, 5);
  assert.equal(report.waited, 2);
  assert.deepEqual(report.calibration, { samples: 2, admittedBeforeEstimate: 0.5, medianAbsErrorSeconds: 2 });
  assert.deepEqual(report.errors, { unknown_item: 1, unfinished: 1 });
  assert.equal(report.completionSeconds.p50, 1);
  assert.equal(report.completionSeconds.p99, 9.5);
  assert.equal(report.throughput.bytes, 4010);
  assert.equal(report.throughput.completionsPerSecond, 0.4);
  const text = formatReport(report).join('\n');
  assert.match(text, /tickets per server +a 2, b 2, c 2/);
  assert.match(text, /50% admitted no later than their first estimate/);
  assert.match(text, /errors +unknown_item 1, unfinished 1/);
});

test('nobody waited: no calibration figures', () => {
  const report = buildReport([buyer({})], { url: 'u', clients: 1, concurrency: 1, durationMs: 1000 });
  assert.deepEqual(report.calibration, {
    samples: 0,
    admittedBeforeEstimate: null,
    medianAbsErrorSeconds: null,
  });
  assert.match(formatReport(report).join('\n'), /nobody waited/);
});
