import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CycleWatch,
  calibrationOf,
  cycleDrift,
  type EstimateInput,
  errorFactors,
  estimateWait,
  firstHoldsFloorMs,
  meanServiceMs,
  nextRate,
  retryAfterSeconds,
  unwatchedDrift,
  widenedRange,
} from '../../src/reception/wait-estimator.js';
import {
  type ArrivalPhase,
  distributions,
  type Quote,
  type SimulatedWait,
  seededRandom,
  simulateLine,
} from '../../src/reception/wait-simulation.js';

const base: EstimateInput = {
  slotsNeeded: 1,
  capacity: 2,
  inFlight: [],
  unknownInFlight: 0,
  serviceTimesMs: [],
  completionsPerSecond: 0,
  coldStartServiceMs: 10_000,
};

/** A record of `n` service times drawn from `draw` (seeded, so the same every run). */
function recordOf(n: number, draw: (r: () => number) => number, seed = 7): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => draw(random));
}

describe('wait estimator', () => {
  it('falls back to one cold-start service time per round of slots, with a wide interval', () => {
    const e = estimateWait(base);
    assert.equal(e.method, 'cold-start');
    assert.ok(e.lowSeconds <= e.seconds && e.seconds <= e.highSeconds);
    // Two slots of unknown age: the first frees well within one 10 s service time.
    assert.ok(e.seconds >= 2 && e.seconds <= 10, `${e.seconds}`);
    assert.ok(e.highSeconds - e.lowSeconds >= e.seconds, `${e.lowSeconds}–${e.highSeconds}`);
    const third = estimateWait({ ...base, slotsNeeded: 3 });
    assert.ok(third.seconds >= 10 && third.seconds <= 20, `${third.seconds}`);
    assert.equal(estimateWait({ ...base, capacity: 0 }).method, 'cold-start');
  });

  it('takes the cycle as at least as long as the first holds have already run', () => {
    // A rush's first second: 150 slots, tickets ~1 s old, none ended; the servers' throughput
    // says 470 ms a transfer. 700 waiters ahead need more than four rounds of those slots.
    const first = {
      ...base,
      capacity: 150,
      inFlight: Array.from({ length: 150 }, (_, i) => ({ elapsedMs: i < 99 ? undefined : 700 })),
      coldStartServiceMs: 470,
      slotsNeeded: 700,
    };
    const ages = Array.from({ length: 150 }, (_, i) => 900 + i);
    const blind = estimateWait(first);
    const floored = estimateWait({ ...first, heldSoFarMs: ages });
    assert.equal(firstHoldsFloorMs(ages), 975);
    // Without the floor: about 700 / 150 rounds of 470 ms; with it, of at least 975 ms.
    assert.ok(blind.seconds <= 3, `${blind.seconds}`);
    assert.ok(floored.seconds >= 4 && floored.cycleMs >= 975, `${floored.seconds} s, ${floored.cycleMs} ms`);
    assert.ok(floored.highSeconds > floored.seconds);
    // A floor under the cycle changes nothing; a couple of slots say nothing.
    const young = estimateWait({ ...first, heldSoFarMs: ages.map((a) => a / 10) });
    assert.deepEqual(young, blind);
    assert.equal(firstHoldsFloorMs([5_000, 5_000]), 0);
    assert.deepEqual(estimateWait({ ...first, heldSoFarMs: [5_000, 5_000] }), blind);
    // Also over a record of transfer times that the sockets' buffering made short.
    const recorded = { ...first, serviceTimesMs: [300, 350, 400, 450, 500] };
    assert.ok(estimateWait({ ...recorded, heldSoFarMs: ages }).cycleMs >= 975);
  });

  it('uses the record of service times and the elapsed time of transfers in flight', () => {
    const record = {
      serviceTimesMs: [10_000, 10_000, 10_000],
      inFlight: [{ elapsedMs: 6_000 }, { elapsedMs: 2_000 }],
    };
    const e = estimateWait({ ...base, ...record });
    // The first slot frees when the older transfer ends: 10 s − 6 s; with no spread, no doubt.
    assert.equal(e.method, 'service-times');
    assert.equal(e.seconds, 4);
    assert.ok(Math.abs(e.cycleMs - 10_000) < 1e-6);
    // Position 2 needs the second slot (8 s); position 3 the first slot's next round (4 + 10 s).
    assert.equal(estimateWait({ ...base, ...record, slotsNeeded: 2 }).seconds, 8);
    assert.equal(estimateWait({ ...base, ...record, slotsNeeded: 3 }).seconds, 14);
  });

  it('reads a transfer’s remaining time from the recorded times longer than its age', () => {
    // Half the transfers take 2 s, half 10 s: one that has run 3 s is a long one, 7 s to go.
    const st = [2_000, 2_000, 2_000, 2_000, 10_000, 10_000, 10_000, 10_000];
    const one = (inFlight: EstimateInput['inFlight']) =>
      estimateWait({ ...base, capacity: 1, serviceTimesMs: st, inFlight }).seconds;
    assert.equal(one([{ elapsedMs: 3_000 }]), 7);
    // Not used yet: a whole service time, whose median is anywhere from 2 to 10 s.
    const fresh = one([{ elapsedMs: undefined }]);
    assert.ok(fresh >= 2 && fresh <= 10, `${fresh}`);
    // Past every recorded time: a quarter of a service time (0.5 or 2.5 s) is assumed left.
    const over = estimateWait({
      ...base,
      capacity: 1,
      serviceTimesMs: st,
      inFlight: [{ elapsedMs: 12_000 }],
    });
    assert.ok(over.seconds <= 1 && over.highSeconds <= 3, JSON.stringify(over));
  });

  it('survives measurements that are not numbers', () => {
    const e = estimateWait({
      ...base,
      slotsNeeded: Number.NaN,
      inFlight: [{ elapsedMs: Number.NaN }],
      unknownInFlight: -3,
      serviceTimesMs: [Number.NaN, -1, 3_000, 3_000, 3_000],
      completionsPerSecond: Number.NaN,
      lineRatePerSecond: Number.POSITIVE_INFINITY,
    });
    assert.ok(Number.isInteger(e.seconds) && e.seconds >= 1, JSON.stringify(e));
    assert.ok(e.lowSeconds <= e.seconds && e.seconds <= e.highSeconds, JSON.stringify(e));
  });

  it('ignores a record with too few samples', () => {
    assert.equal(meanServiceMs([1, 2]), undefined);
    assert.equal(meanServiceMs([1, 2, 3]), 2);
    assert.equal(estimateWait({ ...base, serviceTimesMs: [5_000, 5_000] }).method, 'cold-start');
  });

  it('uses the completion rate alone, and blends it with service times when both exist', () => {
    const r = estimateWait({ ...base, slotsNeeded: 10, completionsPerSecond: 2 });
    assert.equal(r.method, 'rate');
    assert.ok(Math.abs(r.cycleMs - 1000) < 1e-6); // two slots, two freeings a second
    assert.ok(r.seconds >= 4 && r.seconds <= 6, `${r.seconds}`);
    const st = recordOf(50, distributions.uniform(5_000, 7_000));
    const alone = estimateWait({ ...base, serviceTimesMs: st }).cycleMs;
    // The rate says a cycle of 8 s (hand-overs the record does not see): the blend moves toward it.
    const blended = estimateWait({ ...base, serviceTimesMs: st, completionsPerSecond: 0.25 });
    assert.equal(blended.method, 'blend');
    assert.ok(blended.cycleMs > alone && blended.cycleMs < 8_000, `${alone} → ${blended.cycleMs}`);
    // A line that admitted nobody meanwhile was empty: its slots may have idled, the rate is not trusted.
    const idle = estimateWait({
      ...base,
      serviceTimesMs: st,
      completionsPerSecond: 0.25,
      lineRatePerSecond: 0,
    });
    assert.ok(Math.abs(idle.cycleMs - alone) < 1, `${idle.cycleMs}`);
  });

  it('lengthens the cycle by the share of slots still in hand-over (Little’s law)', () => {
    const st = recordOf(100, distributions.uniform(2_000, 4_000));
    const started = Array.from({ length: 20 }, (_, i) => ({ elapsedMs: i * 150 }));
    const plain = estimateWait({ ...base, capacity: 20, serviceTimesMs: st, inFlight: started });
    const handing = estimateWait({
      ...base,
      capacity: 20,
      serviceTimesMs: st,
      inFlight: [...started.slice(0, 19), { elapsedMs: undefined }],
    });
    assert.ok(Math.abs(handing.cycleMs / plain.cycleMs - 20 / 19) < 1e-9);
  });

  it('quotes a median inside an interval that is wide near the front and narrow deep in line', () => {
    const st = recordOf(150, distributions.lognormal(3_000, 0.5));
    const inFlight = Array.from({ length: 6 }, (_, i) => ({ elapsedMs: i * 500 }));
    const input = { ...base, capacity: 6, serviceTimesMs: st, inFlight, completionsPerSecond: 2 };
    const relWidth = (k: number) => {
      const e = estimateWait({ ...input, slotsNeeded: k });
      assert.ok(
        e.lowSeconds >= 0 && e.lowSeconds <= e.seconds && e.seconds <= e.highSeconds,
        JSON.stringify(e),
      );
      return (e.highSeconds - e.lowSeconds) / e.seconds;
    };
    const front = relWidth(3);
    const deep = relWidth(600);
    assert.ok(front > 0.5, `front ${front}`);
    assert.ok(deep < 0.3 && deep < front / 2, `deep ${deep} vs front ${front}`);
  });

  it('never estimates below one second and grows with position, also past the exact rounds', () => {
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

  it('costs the same for a thousand slots and a hundred thousand waiters', () => {
    const st = recordOf(150, distributions.exponential(3_000));
    const inFlight = Array.from({ length: 1000 }, (_, i) => ({ elapsedMs: (i * 7) % 3_000 }));
    const e = estimateWait({
      ...base,
      capacity: 1000,
      slotsNeeded: 100_000,
      serviceTimesMs: st,
      inFlight,
      unknownInFlight: 0,
      completionsPerSecond: 330,
    });
    // 100 rounds of 1000 slots at about 3 s.
    assert.ok(e.seconds > 250 && e.seconds < 350, `${e.seconds}`);
    assert.ok(e.lowSeconds < e.seconds && e.highSeconds > e.seconds);
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

  it('measures calibration: admitted by the estimate, inside the range, absolute and relative error', () => {
    const c = calibrationOf([
      { estimateSeconds: 10, actualSeconds: 8, lowSeconds: 6, highSeconds: 12 },
      { estimateSeconds: 10, actualSeconds: 13, lowSeconds: 6, highSeconds: 12 },
      { estimateSeconds: 5, actualSeconds: 5, lowSeconds: 5, highSeconds: 5 },
      { estimateSeconds: 20, actualSeconds: 10 },
    ]);
    assert.equal(c.samples, 4);
    assert.equal(c.admittedBeforeEstimate, 0.75);
    assert.equal(c.medianAbsoluteErrorSeconds, 2.5);
    assert.equal(c.rangeSamples, 3);
    assert.equal(c.admittedInRange, 2 / 3);
    // |8−10|/8, |13−10|/13, 0, |10−20|/10 → median of 0, 0.2308, 0.25, 1
    assert.ok(Math.abs(c.medianRelativeError - (3 / 13 + 0.25) / 2) < 1e-12);
    assert.deepEqual(calibrationOf([]), {
      samples: 0,
      admittedBeforeEstimate: 0,
      admittedInRange: 0,
      rangeSamples: 0,
      medianAbsoluteErrorSeconds: 0,
      medianRelativeError: 0,
    });
  });
});

describe('a cycle that drifts', () => {
  it('counts only the movement beyond what each estimate’s own error explains', () => {
    const steady = [1000, 1010, 990, 1005, 995].map((cycleMs) => ({ cycleMs, relVar: 0.01 }));
    assert.equal(cycleDrift(steady), 0, 'noise within the models’ own error is no drift');
    const rising = [600, 800, 1300, 1250, 1150, 1450].map((cycleMs) => ({ cycleMs, relVar: 0.001 }));
    const d = cycleDrift(rising);
    assert.ok(d > 0.05 && d < 0.2, `${d}`);
    assert.equal(cycleDrift(rising.slice(0, 2)), 0, 'two models say nothing');
  });

  it('assumes a rush’s drift for a cycle watched only briefly, none after the drift window', () => {
    assert.ok(Math.abs(unwatchedDrift(0) - 0.25 ** 2) < 1e-12);
    assert.ok(Math.abs(unwatchedDrift(15_000) - 0.125 ** 2) < 1e-12);
    assert.equal(unwatchedDrift(30_000), 0);
    assert.equal(unwatchedDrift(600_000), 0);
    assert.ok(Math.abs(unwatchedDrift(-5) - 0.25 ** 2) < 1e-12, 'a clock step back is no watching');
  });

  it('watches a cycle from its first model, one model a second, models rebuilt every few ms', () => {
    const w = new CycleWatch();
    // Early in a rush a model is built with every hold that ends: 200 a second here.
    for (let t = 0; t <= 15_000; t += 5) {
      w.driftRelVar(t, 'taken');
      w.record(t, { cycleMs: 1000, cycleRelVar: 0.001 });
    }
    assert.ok(Math.abs(w.driftRelVar(15_000, 'taken') - 0.125 ** 2) < 1e-9, 'watched 15 s, not the last ms');
    assert.equal(w.driftRelVar(30_000, 'taken'), 0, 'a steady cycle watched 30 s has no drift left');
    // A cycle that rises second after second is drift, seen across seconds.
    for (let t = 30_000; t <= 45_000; t += 5) {
      w.driftRelVar(t, 'taken');
      w.record(t, { cycleMs: 1000 * 1.05 ** ((t - 30_000) / 1000), cycleRelVar: 0.001 });
    }
    assert.ok(w.driftRelVar(45_000, 'taken') > 0.02);
    // Another record is another measure: watched afresh.
    assert.ok(Math.abs(w.driftRelVar(45_001, 'started') - 0.25 ** 2) < 1e-6);
    // And so is a cycle nobody asked about for the drift window (between rushes).
    const idle = new CycleWatch();
    idle.driftRelVar(0, 'taken');
    idle.record(0, { cycleMs: 1000, cycleRelVar: 0.001 });
    assert.ok(Math.abs(idle.driftRelVar(100_000, 'taken') - 0.25 ** 2) < 1e-9);
  });

  it('widens the range by the drift, and leaves the median alone', () => {
    const input: EstimateInput = {
      ...base,
      capacity: 50,
      slotsNeeded: 500,
      inFlight: Array.from({ length: 50 }, (_, i) => ({ elapsedMs: i * 30 })),
      serviceTimesMs: recordOf(200, distributions.lognormal(1500, 0.3)),
      completionsPerSecond: 33,
      lineRatePerSecond: 33,
    };
    const still = estimateWait(input);
    const drifting = estimateWait({ ...input, cycleDriftRelVar: 0.04 });
    assert.equal(drifting.seconds, still.seconds);
    assert.ok(
      drifting.highSeconds - drifting.lowSeconds > 2 * (still.highSeconds - still.lowSeconds),
      JSON.stringify({ still, drifting }),
    );
  });
});

describe('ranges widened by the waits that came true', () => {
  it('reads the 10th and 90th percentiles of actual / estimate over long enough estimates', () => {
    // 100 waiters quoted 10 s who waited 8–17.9 s (a line that slowed), and short ones that say nothing.
    const samples = [
      ...Array.from({ length: 100 }, (_, i) => ({ estimateSeconds: 10, actualSeconds: 8 + i / 10 })),
      ...Array.from({ length: 500 }, () => ({ estimateSeconds: 1, actualSeconds: 0.1 })),
    ];
    const f = errorFactors(samples);
    assert.ok(f);
    assert.ok(Math.abs(f.low - 0.9) < 1e-9 && Math.abs(f.high - 1.7) < 1e-9, JSON.stringify(f));
    assert.equal(errorFactors(samples.slice(0, 49)), undefined, 'too few to say');
  });

  it('only ever widens, and leaves short estimates alone', () => {
    const f = { low: 0.9, high: 1.7 };
    assert.deepEqual(widenedRange({ seconds: 20, lowSeconds: 19, highSeconds: 21 }, f), [18, 34]);
    assert.deepEqual(widenedRange({ seconds: 20, lowSeconds: 10, highSeconds: 40 }, f), [10, 40]);
    assert.deepEqual(widenedRange({ seconds: 3, lowSeconds: 2, highSeconds: 4 }, f), [2, 4]);
    assert.deepEqual(widenedRange({ seconds: 20, lowSeconds: 19, highSeconds: 21 }, undefined), [19, 21]);
  });
});

describe('wait estimator calibration on a simulated line', () => {
  const service = {
    'lognormal σ 0.3': distributions.lognormal(3_000, 0.3),
    'lognormal σ 0.8': distributions.lognormal(3_000, 0.8),
    'uniform 2–4 s (8 MiB at varying client speed)': distributions.uniform(2_000, 4_000),
    exponential: distributions.exponential(3_000),
  };
  const SEEDS = [1, 2, 3, 4];
  /** A rush that has run for two minutes; then bursts that drain, or a steady overload. */
  function scenarios(slots: number): ArrivalPhase[][] {
    const perSecond = slots / 3; // what the slots serve, at 3 s a transfer
    const warm: ArrivalPhase = { perSecond: 0.9 * perSecond, seconds: 120 };
    const bursts: ArrivalPhase[] = [warm];
    for (let i = 0; i < 6; i++)
      bursts.push({ burst: 4 * slots }, { perSecond: 0.5 * perSecond, seconds: 30 });
    return [bursts, [warm, { perSecond: 1.15 * perSecond, seconds: 150 }]];
  }
  function waits(serviceMs: (r: () => number) => number, estimate: (i: EstimateInput) => Quote) {
    const out: SimulatedWait[] = [];
    for (const slots of [6, 24])
      for (const arrivals of scenarios(slots))
        for (const seed of SEEDS)
          out.push(...simulateLine({ slots, serviceMs, arrivals, seed, estimate, countFromMs: 120_000 }));
    return out;
  }
  /** The figures the issue asks for; the relative error over waits that are not tiny. */
  function figures(samples: SimulatedWait[]) {
    const all = calibrationOf(samples);
    const notTiny = calibrationOf(samples.filter((s) => s.actualSeconds >= 3));
    return {
      byMedian: all.admittedBeforeEstimate,
      inRange: all.admittedInRange,
      relativeError: notTiny.medianRelativeError,
    };
  }

  for (const [name, serviceMs] of Object.entries(service)) {
    it(`is calibrated for ${name} service times`, () => {
      const samples = waits(serviceMs, estimateWait);
      assert.ok(samples.length > 5_000, `only ${samples.length} waiters`);
      const f = figures(samples);
      const shown = JSON.stringify(f);
      assert.ok(f.byMedian >= 0.45 && f.byMedian <= 0.55, `admitted by the median: ${shown}`);
      assert.ok(f.inRange >= 0.75 && f.inRange <= 0.85, `inside the 80 % interval: ${shown}`);
      assert.ok(f.relativeError <= 0.2, `median relative error: ${shown}`);
    });
  }

  it('tells a miscalibrated estimator apart (the mean-based one, with a ±25 % range)', () => {
    // The seed's plain method: k rounds of the mean service time over the slots, rounded up.
    const naive = (i: EstimateInput): Quote => {
      const mean = meanServiceMs(i.serviceTimesMs) ?? i.coldStartServiceMs;
      const seconds = Math.max(1, Math.ceil((i.slotsNeeded * mean) / Math.max(1, i.capacity) / 1000));
      return { seconds, lowSeconds: Math.floor(seconds * 0.75), highSeconds: Math.ceil(seconds * 1.25) };
    };
    const f = figures(waits(service['uniform 2–4 s (8 MiB at varying client speed)'], naive));
    const calibrated =
      f.byMedian >= 0.45 &&
      f.byMedian <= 0.55 &&
      f.inRange >= 0.75 &&
      f.inRange <= 0.85 &&
      f.relativeError <= 0.2;
    assert.equal(calibrated, false, JSON.stringify(f));
  });

  it('quotes from the slots’ hold times when the hand-over is most of a slot’s cycle', () => {
    // The 10,000-buyer rehearsal: transfers of 0.1–0.2 s as the content servers timed them (the
    // sockets took the item whole), each slot held about 1.5 s from issue to free. Fed the
    // transfer times, the estimator saw a 0.2 s cycle plus a hand-over share it takes up to 10 %.
    const serviceMs = distributions.lognormal(200, 0.5);
    const handoverMs = (r: () => number) => 750 + 1500 * r();
    const cycleS = 1.7;
    const run = (feed: 'holds' | 'transfers') => {
      const out: SimulatedWait[] = [];
      for (const slots of [6, 24]) {
        const perSecond = slots / cycleS;
        const warm: ArrivalPhase = { perSecond: 0.9 * perSecond, seconds: 120 };
        const bursts: ArrivalPhase[] = [warm];
        for (let i = 0; i < 6; i++)
          bursts.push({ burst: 4 * slots }, { perSecond: 0.5 * perSecond, seconds: 30 });
        for (const arrivals of [bursts, [warm, { perSecond: 1.15 * perSecond, seconds: 150 }]])
          for (const seed of SEEDS)
            out.push(
              ...simulateLine({
                slots,
                serviceMs,
                handoverMs,
                arrivals,
                seed,
                estimate: estimateWait,
                countFromMs: 120_000,
                feed,
              }),
            );
      }
      return figures(out);
    };
    const holds = run('holds');
    const transfers = run('transfers');
    const shown = JSON.stringify({ holds, transfers });
    // Near the goal (45–55 %, 75–85 %, ≤ 0.2), where the transfer times put it nowhere near.
    assert.ok(holds.byMedian >= 0.4 && holds.byMedian <= 0.6, shown);
    assert.ok(holds.inRange >= 0.7 && holds.inRange <= 0.9, shown);
    assert.ok(holds.relativeError <= 0.2, shown);
    assert.ok(transfers.byMedian < 0.2 && transfers.relativeError > 0.2, shown);
  });
});
