/**
 * The client's waiting room (seed FIG. 12C) against a fake clock: it retries after Retry-After
 * and never sooner, carries the queue token, ends at the --max-wait deadline without a try after
 * it, backs off while the reception is unreachable, and reads the place between long waits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Clock } from '../../src/client/clock.js';
import type { AskOptions, QueuePlace, ReceptionAnswer, Ticket } from '../../src/client/reception-api.js';
import {
  type BusyView,
  decide,
  preferWaitSeconds,
  RETRY_MARGIN_MS,
  waitForTicket,
} from '../../src/client/waiting-room.js';

function fakeClock(start = 1_700_000_000_000): Clock & { t: number } {
  const c = {
    t: start,
    now: () => c.t,
    async sleep(ms: number, signal?: AbortSignal) {
      if (signal?.aborted) throw signal.reason;
      c.t += Math.max(0, ms);
    },
  };
  return c;
}

const ticket: Ticket = {
  id: 't1',
  url: 'http://127.0.0.1:1/t/x/a.bin',
  server: 'a',
  notBefore: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
};
const busy = (retryAfterSeconds: number, position = 2, queueToken = 'q1'): ReceptionAnswer => ({
  kind: 'busy',
  position,
  estimatedWaitSeconds: retryAfterSeconds * 2,
  retryAfterSeconds,
  queueToken,
});
const ticketed: ReceptionAnswer = { kind: 'ticketed', orderId: 'o1', ticket };

function script(clock: Clock, answers: ReceptionAnswer[]) {
  const calls: { at: number; token: string | undefined }[] = [];
  return {
    calls,
    ask: async (token: string | undefined) => {
      calls.push({ at: clock.now(), token });
      const next = answers.shift();
      if (!next) throw new Error('asked more often than scripted');
      return next;
    },
  };
}

test('a reception that ignores Prefer: one held try at once, then Retry-After, never sooner, with the token', async () => {
  const clock = fakeClock();
  const s = script(clock, [busy(3, 4, 'qa'), busy(3, 3, 'qa'), busy(2, 1, 'qb'), ticketed]);
  const seen: BusyView[] = [];
  const got = await waitForTicket({ clock, ask: s.ask, observer: { busy: (v) => seen.push(v) } });
  assert.equal(got.kind, 'admitted');
  assert.equal(s.calls.length, 4);
  assert.deepEqual(
    s.calls.map((c) => c.token),
    [undefined, 'qa', 'qa', 'qb'],
  );
  assert.equal(s.calls[1]!.at, s.calls[0]!.at, 'the held try that finds out goes at once');
  assert.equal(s.calls[2]!.at - s.calls[1]!.at, 3000 + RETRY_MARGIN_MS, 'then not before Retry-After');
  assert.equal(s.calls[3]!.at - s.calls[2]!.at, 2000 + RETRY_MARGIN_MS);
  if (got.kind !== 'admitted') return;
  assert.equal(got.busyAnswers, 3);
  assert.equal(got.heldAnswers, 0);
  assert.equal(got.firstEstimateSeconds, 6);
  assert.equal(got.waitedMs, s.calls[3]!.at - s.calls[0]!.at);
  assert.deepEqual(
    seen.map((v) => v.position),
    [4, 3, 1],
  );
});

test('admitted at once: no wait, no busy answer', async () => {
  const clock = fakeClock();
  const s = script(clock, [ticketed]);
  const got = await waitForTicket({ clock, ask: s.ask });
  assert.deepEqual(got, {
    kind: 'admitted',
    orderId: 'o1',
    ticket,
    waitedMs: 0,
    busyAnswers: 0,
    heldAnswers: 0,
    admittedAt: clock.now(),
  });
});

test('gives up at the deadline: no try after it, and not before it', async () => {
  const clock = fakeClock();
  const start = clock.now();
  const s = script(clock, [busy(5), busy(5), busy(5), busy(5), busy(5)]);
  const got = await waitForTicket({ clock, ask: s.ask, deadline: start + 12_000 });
  assert.equal(got.kind, 'gave_up');
  assert.equal(s.calls.length, 4, 'tries at 0, 0 (held), 5 and 10 s; the next would be after 12 s');
  assert.ok(s.calls.every((c) => c.at <= start + 12_000));
  assert.equal(clock.now(), start + 12_000, 'waits out the deadline');
  if (got.kind === 'gave_up') assert.equal(got.position, 2);
});

test('a definite refusal ends the wait', async () => {
  const clock = fakeClock();
  const s = script(clock, [
    busy(1),
    { kind: 'error', status: 404, code: 'unknown_item', message: 'No content server holds this item.' },
  ]);
  const got = await waitForTicket({ clock, ask: s.ask });
  assert.equal(got.kind, 'refused');
  if (got.kind === 'refused') assert.equal(got.code, 'unknown_item');
});

test('backs off while unreachable, then recovers', async () => {
  const clock = fakeClock();
  const down: ReceptionAnswer = { kind: 'unreachable', message: 'ECONNREFUSED' };
  const s = script(clock, [down, down, down, ticketed]);
  const got = await waitForTicket({ clock, ask: s.ask });
  assert.equal(got.kind, 'admitted');
  const gaps = s.calls.slice(1).map((c, i) => c.at - s.calls[i]!.at);
  assert.deepEqual(gaps, [500, 1000, 2000]);
});

test('gives up when the reception stays unreachable', async () => {
  const clock = fakeClock();
  const start = clock.now();
  const got = await waitForTicket({
    clock,
    ask: async () => ({ kind: 'unreachable', message: 'ECONNREFUSED' }),
    unreachableGiveUpMs: 20_000,
  });
  assert.equal(got.kind, 'unreachable');
  assert.ok(clock.now() - start >= 20_000 && clock.now() - start < 30_000);
});

test('a rate-limited answer is retried after its Retry-After', async () => {
  const clock = fakeClock();
  const s = script(clock, [{ kind: 'rate_limited', retryAfterSeconds: 2 }, ticketed]);
  const got = await waitForTicket({ clock, ask: s.ask });
  assert.equal(got.kind, 'admitted');
  assert.ok(s.calls[1]!.at - s.calls[0]!.at >= 2000);
});

test('reads the place during a long wait and shows it, keeping the retry time', async () => {
  const clock = fakeClock();
  const s = script(clock, [busy(20, 5, 'qz'), busy(20, 5, 'qz'), ticketed]);
  const reads: { at: number; token: string }[] = [];
  let position = 5;
  const readPlace = async (token: string): Promise<QueuePlace> => {
    reads.push({ at: clock.now(), token });
    position--;
    return { position, estimatedWaitSeconds: 10 };
  };
  const seen: BusyView[] = [];
  const got = await waitForTicket({
    clock,
    ask: s.ask,
    readPlace,
    placeReadIntervalMs: 5000,
    observer: { busy: (v) => seen.push(v) },
  });
  assert.equal(got.kind, 'admitted');
  assert.ok(reads.length >= 2);
  assert.ok(reads.every((r) => r.token === 'qz'));
  assert.ok(s.calls[2]!.at - s.calls[1]!.at >= 20_000, 'reading the place does not bring the retry forward');
  assert.ok(seen.length >= 3);
  assert.ok(seen.slice(1).every((v) => v.retryAt === seen[1]!.retryAt));
});

test('an abort ends the wait at once', async () => {
  const clock = fakeClock();
  const controller = new AbortController();
  const s = script(clock, [busy(5)]);
  const ask = async (token: string | undefined) => {
    const a = await s.ask(token);
    controller.abort(new Error('ctrl-c'));
    return a;
  };
  await assert.rejects(waitForTicket({ clock, ask, signal: controller.signal }), /ctrl-c/);
});

test('decide: the pure rule', () => {
  const now = 1000;
  const o = { failures: 0, unreachableGiveUpMs: 60_000 };
  assert.deepEqual(decide(ticketed, now, o), { action: 'admit' });
  assert.deepEqual(decide(busy(4), now, o), { action: 'retry', at: now + 4000 + RETRY_MARGIN_MS });
  assert.deepEqual(decide(busy(4), now, { ...o, deadline: now + 4000 }), {
    action: 'give_up',
    at: now + 4000,
    reason: 'deadline',
  });
  assert.deepEqual(decide(busy(4), now, { ...o, deadline: now - 10 }), {
    action: 'give_up',
    at: now,
    reason: 'deadline',
  });
  assert.deepEqual(decide({ kind: 'unreachable', message: 'x' }, now, { ...o, failures: 9 }), {
    action: 'retry',
    at: now + 8000,
  });
});

test('a fractional deadline (from the process start time) is fine', async () => {
  const clock = fakeClock();
  const s = script(clock, [busy(1), busy(5)]);
  const got = await waitForTicket({ clock, ask: s.ask, deadline: clock.now() + 2000.37 });
  assert.equal(got.kind, 'gave_up');
  assert.equal(s.calls.length, 2);
});

/**
 * A reception that honours `Prefer: wait`: each try takes the hold it was asked for (on the fake
 * clock) unless its answer comes sooner, and says so with `waitAppliedSeconds`.
 */
function heldScript(
  clock: Clock & { t: number },
  answers: { answer: ReceptionAnswer; after?: number }[],
  applies = true,
) {
  const calls: { at: number; token: string | undefined; hold: number | undefined }[] = [];
  return {
    calls,
    ask: async (token: string | undefined, _signal?: AbortSignal, how?: AskOptions) => {
      calls.push({ at: clock.now(), token, hold: how?.preferWaitSeconds });
      const next = answers.shift();
      if (!next) throw new Error('asked more often than scripted');
      const hold = how?.preferWaitSeconds;
      if (next.answer.kind === 'busy' && hold !== undefined && applies) {
        clock.t += (next.after ?? hold) * 1000;
        return { ...next.answer, waitAppliedSeconds: hold };
      }
      if (next.after !== undefined) clock.t += next.after * 1000;
      return next.answer;
    },
  };
}

test('held retries: the first try asks no hold, every retry with a token asks one, a held busy answer is followed at once', async () => {
  const clock = fakeClock();
  const s = heldScript(clock, [
    { answer: busy(3, 4, 'qa') },
    { answer: busy(3, 3, 'qa') },
    { answer: busy(3, 2, 'qa') },
    { answer: ticketed, after: 1.5 },
  ]);
  const seen: BusyView[] = [];
  const got = await waitForTicket({ clock, ask: s.ask, observer: { busy: (v) => seen.push(v) } });
  assert.equal(got.kind, 'admitted');
  assert.deepEqual(
    s.calls.map((c) => c.hold),
    [undefined, 30, 30, 30],
    'no hold without a token; then the longest hold, whatever Retry-After suggests',
  );
  // The first held retry goes at once, to find out; it is held 30 s; the next follow at once.
  assert.equal(s.calls[1]!.at, s.calls[0]!.at);
  assert.equal(s.calls[2]!.at - s.calls[1]!.at, 30_000, 'held for 30 s, then the next held retry at once');
  assert.equal(s.calls[3]!.at - s.calls[2]!.at, 30_000);
  assert.deepEqual(
    seen.map((v) => [v.position, v.heldOpen === true]),
    [
      [4, true],
      [3, true],
      [2, true],
    ],
  );
  if (got.kind !== 'admitted') return;
  assert.equal(got.heldAnswers, 2);
  assert.equal(got.admittedAt, clock.now());
  assert.equal(got.firstBusy?.position, 4);
});

test('a reception that ignores Prefer: wait is retried at Retry-After, as before', async () => {
  const clock = fakeClock();
  const s = heldScript(
    clock,
    [{ answer: busy(2, 2, 'q') }, { answer: busy(2, 1, 'q') }, { answer: ticketed }],
    false,
  );
  const got = await waitForTicket({ clock, ask: s.ask });
  assert.equal(got.kind, 'admitted');
  assert.deepEqual(
    s.calls.map((c) => c.hold),
    [undefined, 30, 30],
  );
  assert.equal(s.calls[2]!.at - s.calls[1]!.at, 2000 + RETRY_MARGIN_MS);
  if (got.kind === 'admitted') assert.equal(got.heldAnswers, 0);
});

test('a held busy answer that came back at once (the reception cap) waits Retry-After: no spinning', async () => {
  const clock = fakeClock();
  const s = heldScript(clock, [
    { answer: busy(4, 2, 'q') },
    { answer: busy(4, 2, 'q'), after: 0 },
    { answer: ticketed },
  ]);
  await waitForTicket({ clock, ask: s.ask });
  assert.equal(s.calls[2]!.at - s.calls[1]!.at, 4000 + RETRY_MARGIN_MS);
});

test('--max-wait: no hold reaches past the deadline, and none is asked with less than a second left', async () => {
  const clock = fakeClock();
  const start = clock.now();
  const s = heldScript(clock, [
    { answer: busy(5, 3, 'q') },
    { answer: busy(5, 3, 'q') },
    { answer: busy(5, 3, 'q') },
    { answer: busy(5, 3, 'q') },
    { answer: busy(5, 3, 'q') },
  ]);
  const got = await waitForTicket({ clock, ask: s.ask, deadline: start + 12_500 });
  assert.equal(got.kind, 'gave_up');
  // 0: no token; then held for the 12 whole seconds left (until 12), then a plain try, whose
  // Retry-After would pass the deadline.
  assert.deepEqual(
    s.calls.map((c) => c.hold),
    [undefined, 12, undefined],
  );
  assert.ok(s.calls.every((c) => c.at <= start + 12_500));
  assert.equal(clock.now(), start + 12_500, 'waits out the deadline, not past it');
});

test('preferWaitSeconds: 30 s, never past the deadline', () => {
  assert.equal(preferWaitSeconds(0, undefined), 30);
  assert.equal(preferWaitSeconds(0, 60_000), 30);
  assert.equal(preferWaitSeconds(0, 9_900), 9);
  assert.equal(preferWaitSeconds(0, 999), undefined);
});

test('decide: a held busy answer retries at once, unless the deadline has come', () => {
  const now = 10_000;
  const o = { failures: 0, unreachableGiveUpMs: 60_000, askedAt: now - 5000, preferWaitSeconds: 5 };
  const held: ReceptionAnswer = { ...busy(4), waitAppliedSeconds: 5 } as ReceptionAnswer;
  assert.deepEqual(decide(held, now, o), { action: 'retry', at: now, held: true });
  assert.deepEqual(decide(held, now, { ...o, deadline: now }), {
    action: 'give_up',
    at: now,
    reason: 'deadline',
  });
  // Not asked for (no preferWaitSeconds), or answered far sooner than held: Retry-After rules.
  assert.deepEqual(decide(held, now, { failures: 0, unreachableGiveUpMs: 60_000 }), {
    action: 'retry',
    at: now + 4000 + RETRY_MARGIN_MS,
  });
  assert.deepEqual(decide(held, now, { ...o, askedAt: now - 100 }), {
    action: 'retry',
    at: now + 4000 + RETRY_MARGIN_MS,
  });
  // Not yet known whether the reception holds: one held try at once, to find out.
  assert.deepEqual(decide(busy(4), now, { failures: 0, unreachableGiveUpMs: 60_000, probeHold: true }), {
    action: 'retry',
    at: now,
    held: true,
  });
});
