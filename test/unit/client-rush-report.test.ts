/**
 * The rehearsal report of `rushgate rush` (CONTRACT §5): percentiles, tickets per server, busy
 * answers, integrity, the calibration of the wait estimates (share admitted no later than the
 * first estimate, median absolute and relative error, share inside the first range), FIFO
 * inversions, slot use while anyone waited, from hand-made buyer records; and figures that were
 * not measured are null and printed as such.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BuyerRecord,
  buildReport,
  fifoInversions,
  formatReport,
  median,
  percentile,
  slotUseOf,
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
  digestChecked: true,
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
        errorMessage: 'no content server holds /x',
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
  assert.deepEqual(report.calibration, {
    samples: 2,
    admittedBeforeEstimate: 0.5,
    medianAbsErrorSeconds: 2,
    // |4 − 5| / 4 = 0.25 and |9 − 6| / 9 = 0.333…
    medianRelativeError: 0.292,
    rangeSamples: 0,
    admittedInsideRange: null,
  });
  assert.deepEqual(report.integrity, { intact: 4, mismatched: 0, unchecked: 0 });
  assert.equal(report.slotUse, null, 'not sampled: not measured');
  assert.deepEqual(report.errors, { unknown_item: 1, unfinished: 1 });
  assert.deepEqual(report.errorExamples, { unknown_item: 'no content server holds /x' });
  assert.equal(report.completionSeconds.p50, 1);
  assert.equal(report.completionSeconds.p99, 9.5);
  assert.equal(report.throughput.bytes, 4010);
  assert.equal(report.throughput.completionsPerSecond, 0.4);
  const text = formatReport(report).join('\n');
  assert.match(text, /tickets per server +a 2, b 2, c 2/);
  assert.match(text, /50% admitted no later than their first estimate/);
  assert.match(text, /inside the first range: not measured/);
  assert.match(text, /slot use +not measured/);
  assert.match(text, /errors +unknown_item 1, unfinished 1/);
  assert.match(text, /unknown_item: no content server holds \/x/);
});

test('nobody waited: no calibration figures', () => {
  const report = buildReport([buyer({})], { url: 'u', clients: 1, concurrency: 1, durationMs: 1000 });
  assert.deepEqual(report.calibration, {
    samples: 0,
    admittedBeforeEstimate: null,
    medianAbsErrorSeconds: null,
    medianRelativeError: null,
    rangeSamples: 0,
    admittedInsideRange: null,
  });
  assert.deepEqual(report.waitSeconds, { p50: null, p99: null, max: null });
  assert.equal(report.fifo.worstSeconds, null);
  const text = formatReport(report).join('\n');
  assert.match(text, /nobody waited/);
  assert.match(text, /FIFO +no comparable pairs of waiters: not measured/);
  assert.doesNotMatch(text, / 0\.00 s/);
});

const waiter = (over: Partial<BuyerRecord>): BuyerRecord =>
  buyer({ busyAnswers: 1, firstEstimateSeconds: 5, joinAskedAtMs: 0, joinedAtMs: 10, ...over });

test('calibration: the wait runs from the first busy answer; the range is judged where given', () => {
  const report = buildReport(
    [
      // Waited 4 s, estimate 5, range [3, 8]: before the estimate, inside the range.
      waiter({ joinedAtMs: 1000, admittedAtMs: 5000, admittedAfterMs: 5000, firstRangeSeconds: [3, 8] }),
      // Waited 10 s, estimate 5, range [3, 8]: late, outside.
      waiter({ joinedAtMs: 1000, admittedAtMs: 11_000, admittedAfterMs: 11_000, firstRangeSeconds: [3, 8] }),
      // Waited 2 s, no range given.
      waiter({ joinedAtMs: 1000, admittedAtMs: 3000, admittedAfterMs: 3000 }),
    ],
    { url: 'u', clients: 3, concurrency: 3, durationMs: 12_000 },
  );
  assert.equal(report.calibration.samples, 3);
  assert.equal(report.calibration.admittedBeforeEstimate, 0.667);
  assert.equal(report.calibration.medianAbsErrorSeconds, 3);
  assert.equal(report.calibration.rangeSamples, 2);
  assert.equal(report.calibration.admittedInsideRange, 0.5);
  assert.deepEqual(report.waitSeconds, { p50: 4, p99: 10, max: 10 });
});

test('FIFO: only pairs whose order is certain count; an inversion is an overtaking beyond the tolerance', () => {
  const records = [
    // A joined first (answered at 100, before B asked at 200), admitted at 9 s.
    waiter({ joinAskedAtMs: 0, joinedAtMs: 100, firstPosition: 1, admittedAtMs: 9000 }),
    // B asked after A's answer: behind A, but admitted at 5 s: an inversion of 4 s.
    waiter({ joinAskedAtMs: 200, joinedAtMs: 300, firstPosition: 2, admittedAtMs: 5000 }),
    // C asked at the same time as B and got a larger position at the same moment: behind B and A;
    // admitted 0.5 s before B: inside a 1 s tolerance; 4.5 s before A: an inversion.
    waiter({ joinAskedAtMs: 200, joinedAtMs: 300, firstPosition: 3, admittedAtMs: 4500 }),
    // D asked before anyone answered and named no position: its order against the others is unknown.
    waiter({ joinAskedAtMs: 0, joinedAtMs: 400, admittedAtMs: 1000 }),
  ];
  const f = fifoInversions(records, 1);
  // Certain: A before B and C (answered before they asked), B before C (same moment, smaller position).
  assert.equal(f.pairs, 3);
  assert.equal(f.inversions, 2);
  assert.equal(f.buyersOvertaken, 1);
  assert.equal(f.worstSeconds, 4.5);
  assert.equal(fifoInversions(records, 5).inversions, 0);
});

test('slot use: the mean share over readings while anyone waited; none of those, not measured', () => {
  const s = slotUseOf([
    { at: 0, waiting: 0, usable: 6, used: 1 },
    { at: 1, waiting: 3, usable: 6, used: 6 },
    { at: 2, waiting: 2, usable: 6, used: 3 },
    { at: 3, waiting: 2, usable: 0, used: 0 },
  ]);
  assert.deepEqual(s, { samples: 4, samplesWhileWaiting: 2, whileWaiting: 0.75, statusErrors: 0 });
  assert.equal(slotUseOf([{ at: 0, waiting: 0, usable: 6, used: 0 }]).whileWaiting, null);
  const report = buildReport([buyer({})], {
    url: 'u',
    clients: 1,
    concurrency: 1,
    durationMs: 1000,
    slotSamples: [{ at: 1, waiting: 3, usable: 4, used: 3 }],
  });
  assert.match(formatReport(report).join('\n'), /slot use +75% of usable slots in use while anyone waited/);
});

test('integrity: a finished download without a stated digest is unchecked, not intact', () => {
  const report = buildReport(
    [buyer({}), buyer({ digestChecked: false }), buyer({ outcome: 'integrity', errorCode: 'integrity' })],
    { url: 'u', clients: 3, concurrency: 3, durationMs: 1000 },
  );
  assert.deepEqual(report.integrity, { intact: 1, mismatched: 1, unchecked: 1 });
});
