import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  calibrationOf,
  type EstimateInput,
  estimateWait,
  meanServiceMs,
  nextRate,
  retryAfterSeconds,
} from '../../src/reception/wait-estimator.js';

const base: EstimateInput = {
  slotsNeeded: 1,
  capacity: 2,
  inFlight: [],
  unknownInFlight: 0,
  serviceTimesMs: [],
  completionsPerSecond: 0,
  coldStartServiceMs: 10_000,
};

describe('wait estimator', () => {
  it('falls back to one cold-start service time per round of slots', () => {
    assert.deepEqual(estimateWait(base), { seconds: 10, method: 'cold-start' });
    assert.equal(estimateWait({ ...base, slotsNeeded: 3 }).seconds, 20);
    assert.equal(estimateWait({ ...base, capacity: 0 }).seconds, 10);
  });

  it('uses the record of service times and the elapsed time of transfers in flight', () => {
    const record = {
      serviceTimesMs: [10_000, 10_000, 10_000],
      inFlight: [{ elapsedMs: 6_000 }, { elapsedMs: 2_000 }],
    };
    const e = estimateWait({ ...base, ...record });
    // The first slot frees when the older transfer ends: 10 s − 6 s.
    assert.equal(e.method, 'service-times');
    assert.equal(e.seconds, 4);
    assert.equal(e.byServiceTimesMs, 4_000);
    // Position 2 needs the second slot (8 s); position 3 the first slot's next round (4 + 10 s).
    assert.equal(estimateWait({ ...base, ...record, slotsNeeded: 2 }).seconds, 8);
    assert.equal(estimateWait({ ...base, ...record, slotsNeeded: 3 }).seconds, 14);
  });

  it('assumes a whole service time for tickets not used yet and a quarter for overrunning transfers', () => {
    const st = [4_000, 4_000, 4_000];
    assert.equal(
      estimateWait({ ...base, serviceTimesMs: st, inFlight: [{ elapsedMs: undefined }] }).byServiceTimesMs,
      4_000,
    );
    assert.equal(
      estimateWait({ ...base, serviceTimesMs: st, inFlight: [{ elapsedMs: 9_000 }] }).byServiceTimesMs,
      1_000,
    );
    assert.equal(estimateWait({ ...base, serviceTimesMs: st, unknownInFlight: 1 }).byServiceTimesMs, 2_000);
  });

  it('ignores a record with too few samples', () => {
    assert.equal(meanServiceMs([1, 2]), undefined);
    assert.equal(meanServiceMs([1, 2, 3]), 2);
    assert.equal(estimateWait({ ...base, serviceTimesMs: [5_000, 5_000] }).method, 'cold-start');
  });

  it('uses the completion rate alone, and blends it with service times when both exist', () => {
    const r = estimateWait({ ...base, slotsNeeded: 10, completionsPerSecond: 2 });
    assert.equal(r.method, 'rate');
    assert.equal(r.seconds, 5);
    const b = estimateWait({
      ...base,
      slotsNeeded: 1,
      completionsPerSecond: 0.5,
      serviceTimesMs: [6_000, 6_000, 6_000],
      inFlight: [{ elapsedMs: 0 }, { elapsedMs: 0 }],
    });
    assert.equal(b.method, 'blend');
    assert.equal(b.seconds, 4); // (6 s + 2 s) / 2
  });

  it('never estimates below one second and grows with position', () => {
    assert.equal(estimateWait({ ...base, completionsPerSecond: 1000 }).seconds, 1);
    let previous = 0;
    for (let p = 1; p <= 50; p++) {
      const s = estimateWait({
        ...base,
        slotsNeeded: p,
        serviceTimesMs: [3_000, 3_500, 4_000],
        inFlight: [{ elapsedMs: 100 }, { elapsedMs: 2_000 }],
        completionsPerSecond: 0.7,
      }).seconds;
      assert.ok(s >= previous, `position ${p}: ${s} < ${previous}`);
      previous = s;
    }
  });

  it('caps Retry-After, jitters it a little, and keeps it below the hold for clients near the front', () => {
    const ra = (estimateSeconds: number, random: number, nearFront = false) =>
      retryAfterSeconds({ estimateSeconds, nearFront, holdSeconds: 15, maxRetryAfterSeconds: 30, random });
    assert.equal(ra(100, 0.5), 30);
    assert.equal(ra(20, 0), 18);
    assert.equal(ra(20, 0.999), 22);
    assert.equal(ra(20, 0.5, true), 14);
    assert.equal(ra(0, 0.5), 1);
    assert.equal(
      retryAfterSeconds({
        estimateSeconds: 5,
        nearFront: true,
        holdSeconds: 1,
        maxRetryAfterSeconds: 30,
        random: 0.5,
      }),
      1,
    );
  });

  it('folds completions into an EWMA per second', () => {
    assert.equal(nextRate(undefined, 4, 2000), 2);
    assert.equal(nextRate(2, 0, 1000, 0.5), 1);
  });

  it('measures calibration: share admitted before the estimate and median absolute error', () => {
    const c = calibrationOf([
      { estimateSeconds: 10, actualSeconds: 8 },
      { estimateSeconds: 10, actualSeconds: 13 },
      { estimateSeconds: 5, actualSeconds: 5 },
      { estimateSeconds: 20, actualSeconds: 10 },
    ]);
    assert.equal(c.samples, 4);
    assert.equal(c.admittedBeforeEstimate, 0.75);
    assert.equal(c.medianAbsoluteErrorSeconds, 2.5);
    assert.deepEqual(calibrationOf([]), {
      samples: 0,
      admittedBeforeEstimate: 0,
      medianAbsoluteErrorSeconds: 0,
    });
  });
});
