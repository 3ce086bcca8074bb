import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeldOpen, spreadHold } from '../../src/reception/held-open.js';

/** A held-open registry over a fake clock; `free` is the number of free slots. */
function registry(opts: { max?: number; free?: () => number } = {}) {
  let now = 0;
  const held = new HeldOpen({
    max: opts.max ?? 100,
    freeSlots: opts.free ?? (() => 1),
    now: () => now,
    tickMs: 5,
  });
  return { held, advance: (ms: number) => (now += ms) };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('held-open requests', () => {
  it('answers a held request as soon as its attempt admits it', async () => {
    const { held } = registry();
    let admit = false;
    const answer = held.hold({
      seq: 1,
      deadline: 10_000,
      attempt: async () => (admit ? 'ticket' : undefined),
      expire: async () => 'busy',
    });
    assert.ok(answer);
    held.wake();
    await flush();
    assert.equal(held.count(), 1, 'still busy: still held');
    admit = true;
    held.wake();
    assert.equal(await answer, 'ticket');
    assert.equal(held.count(), 0);
  });

  it('once a waiter stays busy, those behind it for the same item are not tried in that wake', async () => {
    const { held } = registry({ free: () => 2 });
    const tried: string[] = [];
    const hold = (seq: number, group: string) =>
      held.hold({
        seq,
        group,
        deadline: 10_000,
        attempt: async () => {
          tried.push(`${group}${seq}`);
          return undefined;
        },
        expire: async () => 'busy',
      });
    for (const [seq, group] of [
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
      [4, 'a'],
      [5, 'b'],
    ] as const)
      hold(seq, group);
    held.wake();
    await flush();
    await flush();
    assert.deepEqual(tried, ['a1', 'b3'], 'one failed try per item, in line order');
    await held.close();
  });

  it('fills many free slots in two rounds: one try, then the rest at once, in line order', async () => {
    let free = 7;
    const { held } = registry({ free: () => free });
    const started: number[] = [];
    let inFlight = 0;
    let mostAtOnce = 0;
    const answers = Array.from({ length: 10 }, (_, i) =>
      held.hold({
        seq: i + 1,
        group: 'a',
        deadline: 10_000,
        attempt: async () => {
          started.push(i + 1);
          inFlight += 1;
          mostAtOnce = Math.max(mostAtOnce, inFlight);
          await flush();
          inFlight -= 1;
          free -= 1;
          return 'ticket';
        },
        expire: async () => 'busy',
      }),
    );
    held.wake();
    const settled = await Promise.all(answers.slice(0, 7));
    assert.deepEqual(settled, Array(7).fill('ticket'));
    assert.deepEqual(started, [1, 2, 3, 4, 5, 6, 7], 'the earliest seven, in order, and no more');
    assert.equal(mostAtOnce, 6, 'once one was admitted, the other six tried side by side');
    assert.equal(held.count(), 3);
    await held.close();
  });

  it('hands the next free slot on once a slot is reserved, not when the answer is ready', async () => {
    let free = 2;
    const { held } = registry({ free: () => free });
    const events: string[] = [];
    let releaseFirst: () => void = () => {};
    const firstAnswered = new Promise<void>((r) => {
      releaseFirst = r;
    });
    const answers = [1, 2].map((seq) =>
      held.hold({
        seq,
        group: 'a',
        deadline: 10_000,
        attempt: async (reserved) => {
          events.push(`try ${seq}`);
          free -= 1;
          reserved();
          // The notice's round trip: the first answer waits until the second waiter was tried.
          if (seq === 1) await firstAnswered;
          events.push(`answer ${seq}`);
          return `ticket ${seq}`;
        },
        expire: async () => 'busy',
      }),
    );
    // Should the wake wait for the first answer, the test must fail, not hang: let it go anyway.
    const fallback = setTimeout(() => releaseFirst(), 500);
    held.wake();
    assert.equal(await answers[1], 'ticket 2');
    releaseFirst();
    assert.equal(await answers[0], 'ticket 1');
    clearTimeout(fallback);
    assert.deepEqual(events, ['try 1', 'try 2', 'answer 2', 'answer 1']);
  });

  it('keeps holding a waiter whose reserved slot was given back, and tries it again', async () => {
    let free = 1;
    const { held } = registry({ free: () => free });
    let tries = 0;
    const answer = held.hold({
      seq: 1,
      deadline: 10_000,
      attempt: async (reserved) => {
        tries += 1;
        free -= 1;
        reserved();
        await flush();
        free += 1;
        // The first notice failed on every server: the slot is free again and the waiter busy.
        return tries === 1 ? undefined : 'ticket';
      },
      expire: async () => 'busy',
    });
    held.wake();
    assert.equal(await answer, 'ticket');
    assert.equal(tries, 2);
  });

  it('tries the earliest in line first, one try per free slot', async () => {
    let free = 1;
    const { held } = registry({ free: () => free });
    const tried: number[] = [];
    const hold = (seq: number) =>
      held.hold({
        seq,
        deadline: 10_000,
        attempt: async () => {
          tried.push(seq);
          if (seq !== 2) return undefined;
          free -= 1;
          return 'ticket';
        },
        expire: async () => 'busy',
      });
    const three = hold(3);
    const two = hold(2);
    held.wake();
    assert.equal(await two, 'ticket');
    await flush();
    assert.deepEqual(tried, [2], 'the one free slot went to the earliest; nobody else was tried');
    await held.close();
    assert.equal(await three, 'busy');
  });

  it('goes on past an earlier waiter that cannot use the free slot', async () => {
    let free = 1;
    const { held } = registry({ free: () => free });
    const tried: number[] = [];
    const hold = (seq: number, admit: boolean) =>
      held.hold({
        seq,
        deadline: 10_000,
        attempt: async () => {
          tried.push(seq);
          if (!admit) return undefined;
          free -= 1;
          return `ticket ${seq}`;
        },
        expire: async () => 'busy',
      });
    const first = hold(1, false);
    const second = hold(2, true);
    held.wake();
    assert.equal(await second, 'ticket 2');
    assert.deepEqual(tried, [1, 2]);
    await held.close();
    assert.equal(await first, 'busy');
  });

  it('answers with the busy answer once the deadline passes', async () => {
    const { held, advance } = registry({ free: () => 0 });
    const answer = held.hold({
      seq: 1,
      deadline: 1000,
      attempt: async () => undefined,
      expire: async () => 'busy after the wait',
    });
    advance(1000);
    assert.equal(await answer, 'busy after the wait');
  });

  it('refuses past its cap, so the caller answers at once', async () => {
    const { held } = registry({ max: 1, free: () => 0 });
    const first = held.hold({
      seq: 1,
      deadline: 1e9,
      attempt: async () => undefined,
      expire: async () => 'x',
    });
    assert.ok(first);
    const second = held.hold({
      seq: 2,
      deadline: 1e9,
      attempt: async () => undefined,
      expire: async () => 'y',
    });
    assert.equal(second, undefined);
    await held.close();
    assert.equal(await first, 'x');
    assert.equal(
      held.hold({ seq: 3, deadline: 1e9, attempt: async () => undefined, expire: async () => 'z' }),
      undefined,
      'closed: nothing more is held',
    );
  });

  it('drops a request whose client went away, without trying it again', async () => {
    const { held } = registry();
    const gone = new AbortController();
    let tries = 0;
    void held.hold({
      seq: 1,
      deadline: 1e9,
      signal: gone.signal,
      attempt: async () => {
        tries += 1;
        return undefined;
      },
      expire: async () => 'busy',
    });
    gone.abort();
    assert.equal(held.count(), 0);
    held.wake();
    await flush();
    assert.equal(tries, 0);
  });

  it('spreads the ends of holds given together over the last fifth of their wait', () => {
    assert.equal(spreadHold(30_000, 0), 30_000);
    assert.equal(spreadHold(30_000, 0.5), 27_000);
    assert.equal(spreadHold(30_000, 0.999_999), 24_000);
    const ends = new Set(Array.from({ length: 100 }, (_, i) => spreadHold(30_000, i / 100)));
    assert.equal(ends.size, 100, 'a burst of holds ends over 6 s, not in one tick');
    assert.equal(spreadHold(30_000, Number.NaN), 30_000, 'a broken random source holds the whole wait');
    assert.equal(spreadHold(1, 0.9), 1, 'never 0');
  });

  it("spreads a waiter's first hold over most of its wait, from a quarter of it on", () => {
    assert.equal(spreadHold(30_000, 0, true), 30_000);
    assert.equal(spreadHold(30_000, 0.5, true), 18_750);
    assert.equal(spreadHold(30_000, 0.999_999, true), 7_500);
    const ends = Array.from({ length: 100 }, (_, i) => spreadHold(30_000, i / 100, true));
    assert.ok(Math.max(...ends) - Math.min(...ends) > 22_000, "a launch's first holds end over 22 s");
    assert.equal(spreadHold(30_000, Number.NaN, true), 30_000);
    assert.equal(spreadHold(2_000, 0.999_999, true), 1_000, 'never under a second');
    assert.equal(spreadHold(1_000, 0.999_999, true), 1_000);
    assert.equal(spreadHold(400, 0.999_999, true), 400, 'a wait under a second is not lengthened');
  });
});
