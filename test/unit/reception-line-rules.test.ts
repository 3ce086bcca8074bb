import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideLine, frontWindow, type LineInput, widerFrontWindow } from '../../src/reception/line-rules.js';
import type { LineEntry } from '../../src/store/types.js';

const HOLD = 16_000;
const ABANDON = 120_000;
const DUE_GRACE = 1000;

function entry(token: string, seq: number, over: Partial<LineEntry> = {}): LineEntry {
  return { token, seq, joinedAt: 0, lastSeenAt: 1000, firstEstimateSeconds: 5, ...over };
}

/** Tokens are "item:name"; every server holds every item unless `holders` says otherwise. */
function input(
  over: Partial<LineInput> & {
    line?: LineEntry[];
    free?: Record<string, number>;
    holders?: Record<string, string[]>;
  },
): LineInput {
  const free = new Map(Object.entries(over.free ?? { a: 0 }));
  const line = over.line ?? [];
  // The whole line is the front unless a test gives the front and the length itself.
  const token = over.request?.token;
  const index = line.findIndex((e) => e.token === token);
  return {
    front: line,
    length: line.length,
    ...(index >= 0 ? { requester: { entry: line[index]!, position: index + 1 } } : {}),
    now: 2000,
    rules: { holdMs: HOLD, abandonMs: ABANDON, dueGraceMs: DUE_GRACE },
    request: { item: '/x' },
    freeSlots: free,
    holdersOf: (item) => over.holders?.[item] ?? [...free.keys()],
    itemOf: (token) => token.split(':')[0],
    ...over,
  };
}

describe('waiting line rules', () => {
  it('admits a newcomer when nobody waits and a slot is free', () => {
    const d = decideLine(input({ free: { a: 1 } }));
    assert.equal(d.admitted, true);
    assert.equal(d.position, 1);
    assert.equal(d.requesterInLine, false);
  });

  it('is busy when no slot is free, and a newcomer joins at the end', () => {
    const d = decideLine(input({ line: [entry('/x:w1', 1), entry('/x:w2', 2)] }));
    assert.equal(d.admitted, false);
    assert.equal(d.position, 3);
  });

  it('holds a freed slot for the earliest waiter; a newcomer without a token is put behind', () => {
    const line = [entry('/x:w1', 1), entry('/x:w2', 2)];
    const d = decideLine(input({ line, free: { a: 1 } }));
    assert.equal(d.admitted, false);
    assert.deepEqual(d.holdsToStart, ['/x:w1']);
    assert.equal(d.position, 3);
    assert.deepEqual([...d.heldAhead], [['a', 1]]);
  });

  it('a later waiter is not admitted while the slot is held for an earlier one', () => {
    const line = [entry('/x:w1', 1, { heldSince: 1500 }), entry('/x:w2', 2)];
    const d = decideLine(input({ line, free: { a: 1 }, request: { token: '/x:w2', item: '/x' } }));
    assert.equal(d.admitted, false);
    assert.equal(d.requesterInLine, true);
    assert.equal(d.position, 2);
    assert.deepEqual(d.holdsToStart, []);
  });

  it('admits the waiter the slot is held for', () => {
    const line = [entry('/x:w1', 1, { heldSince: 1500 }), entry('/x:w2', 2)];
    const d = decideLine(input({ line, free: { a: 1 }, request: { token: '/x:w1', item: '/x' } }));
    assert.equal(d.admitted, true);
    assert.equal(d.position, 1);
    assert.deepEqual(d.heldAhead, new Map());
  });

  it('passes over a waiter whose hold ran out, who keeps its place and is first again when seen', () => {
    const line = [entry('/x:w1', 1, { heldSince: 0 }), entry('/x:w2', 2)];
    const now = HOLD + 1;
    const passed = decideLine(input({ line, now, free: { a: 1 }, request: { token: '/x:w2', item: '/x' } }));
    assert.equal(passed.admitted, true, 'the next waiter gets the slot');
    assert.equal(passed.position, 2);
    // w1 comes back: it is in its place and takes the slot ahead of w2's hold.
    const back = decideLine(
      input({
        line: [entry('/x:w1', 1, { heldSince: 0 }), entry('/x:w2', 2, { heldSince: HOLD })],
        now,
        free: { a: 1 },
        request: { token: '/x:w1', item: '/x' },
      }),
    );
    assert.equal(back.admitted, true);
    assert.equal(back.position, 1);
    assert.deepEqual(back.holdsToClear.sort(), ['/x:w1', '/x:w2']);
  });

  it('holds no slot for a waiter well past its due time; it keeps its place and is first when seen', () => {
    // w1 was seen at 1000 and told to come back at 3000; at 6000 it is late by more than the
    // grace (1 s plus a tenth of its 2 s interval).
    const late = entry('/x:w1', 1, { dueAt: 3000 });
    const line = [late, entry('/x:w2', 2, { dueAt: 7000 })];
    const d = decideLine(input({ line, now: 6000, free: { a: 1 } }));
    assert.deepEqual(d.holdsToStart, ['/x:w2'], 'the slot is held for the next waiter instead');
    const back = decideLine(
      input({
        line: [late, entry('/x:w2', 2, { dueAt: 7000, heldSince: 6000 })],
        now: 6100,
        free: { a: 1 },
        request: { token: '/x:w1', item: '/x' },
      }),
    );
    assert.equal(back.admitted, true, 'the late waiter, back, is first for the slot');
    assert.equal(back.position, 1);
  });

  it('passes a held slot on once its waiter is overdue, before holdSeconds run out', () => {
    const line = [entry('/x:w1', 1, { dueAt: 3000, heldSince: 2500 }), entry('/x:w2', 2, { dueAt: 9000 })];
    const onTime = decideLine(
      input({ line, now: 4200, free: { a: 1 }, request: { token: '/x:w2', item: '/x' } }),
    );
    assert.equal(onTime.admitted, false, 'within its grace the slot stays held for w1');
    const overdue = decideLine(
      input({ line, now: 4300, free: { a: 1 }, request: { token: '/x:w2', item: '/x' } }),
    );
    assert.equal(overdue.admitted, true, 'w1 is late: w2 takes the slot long before the hold ends');
    assert.deepEqual(overdue.heldAhead, new Map());
  });

  it('a waiter holding a request open is due at its end, and is held slots until then', () => {
    // Seen at 1000 holding a 30 s request: due at 31,000, overdue after 31,000 + 1000 + 3000.
    const line = [entry('/x:w1', 1, { dueAt: 31_000 }), entry('/x:w2', 2)];
    assert.deepEqual(decideLine(input({ line, now: 34_900, free: { a: 1 } })).holdsToStart, ['/x:w1']);
    assert.deepEqual(decideLine(input({ line, now: 35_100, free: { a: 1 } })).holdsToStart, ['/x:w2']);
  });

  it('drops a waiter not seen for abandonSeconds, so an abandoned place never stalls the line', () => {
    const line = [entry('/x:gone', 1, { lastSeenAt: 0 }), entry('/x:w2', 2, { lastSeenAt: ABANDON })];
    const d = decideLine(
      input({ line, now: ABANDON + 1, free: { a: 1 }, request: { token: '/x:w2', item: '/x' } }),
    );
    assert.deepEqual(d.abandoned, ['/x:gone']);
    assert.equal(d.admitted, true);
    assert.equal(d.position, 1);
  });

  it('never drops the requester itself for not being seen (it is seen now)', () => {
    const line = [entry('/x:w1', 1, { lastSeenAt: 0 })];
    const d = decideLine(
      input({ line, now: ABANDON + 5, free: { a: 1 }, request: { token: '/x:w1', item: '/x' } }),
    );
    assert.deepEqual(d.abandoned, []);
    assert.equal(d.admitted, true);
  });

  it('hands several free slots to as many waiters, and a newcomer gets one only if any is left', () => {
    const line = [entry('/x:w1', 1), entry('/x:w2', 2)];
    assert.equal(decideLine(input({ line, free: { a: 2 } })).admitted, false);
    const d = decideLine(input({ line, free: { a: 1, b: 2 } }));
    assert.equal(d.admitted, true);
    assert.deepEqual(d.holdsToStart, ['/x:w1', '/x:w2']);
    assert.equal(d.freeForItem, 3);
  });

  it('holds a slot only on a server that holds the waiter’s item', () => {
    // w1 waits for /y, which only b holds and b is full; the free slot on a is not held for it.
    const line = [entry('/y:w1', 1)];
    const d = decideLine(input({ line, free: { a: 1, b: 0 }, holders: { '/y': ['b'], '/x': ['a', 'b'] } }));
    assert.equal(d.admitted, true);
    assert.deepEqual(d.holdsToStart, []);
  });

  it('ends a hold whose slot is gone', () => {
    const line = [entry('/x:w1', 1, { heldSince: 1900 })];
    const d = decideLine(input({ line, free: { a: 0 } }));
    assert.deepEqual(d.holdsToClear, ['/x:w1']);
    assert.equal(d.admitted, false);
  });
});

describe('waiting line rules, reading only the front', () => {
  const front = [entry('/x:w1', 1), entry('/x:w2', 2)];
  it('places a newcomer behind the whole line, not behind the front', () => {
    const d = decideLine({ ...input({ free: { a: 1 } }), front, length: 10_000 });
    assert.equal(d.admitted, false);
    assert.equal(d.position, 10_001);
    assert.deepEqual(d.holdsToStart, ['/x:w1']);
  });
  it('keeps a requester beyond the front at its rank, behind the holds of the front', () => {
    const far = entry('/x:w9000', 9000);
    const d = decideLine({
      ...input({ free: { a: 1 }, request: { token: far.token, item: '/x' } }),
      front,
      length: 10_000,
      requester: { entry: far, position: 9000 },
    });
    assert.equal(d.requesterInLine, true);
    assert.equal(d.admitted, false);
    assert.equal(d.position, 9000);
  });

  it('says when the requester joined, in the front or beyond it (its first hold is spread wider)', () => {
    const line = [entry('/x:a', 1, { joinedAt: 100 }), entry('/x:b', 2, { joinedAt: 700 })];
    const inFront = decideLine(input({ line, request: { token: '/x:b', item: '/x' } }));
    assert.equal(inFront.requesterJoinedAt, 700);
    assert.equal(inFront.requesterSeq, 2);
    const far = entry('/x:w9000', 9000, { joinedAt: 1500 });
    const beyond = decideLine({
      ...input({ line, request: { token: far.token, item: '/x' } }),
      length: 10_000,
      requester: { entry: far, position: 9000 },
    });
    assert.equal(beyond.requesterJoinedAt, 1500);
    assert.equal(decideLine(input({ line, request: { item: '/x' } })).requesterJoinedAt, undefined);
  });
  it('admits a requester beyond the front to a slot the front cannot use', () => {
    const far = entry('/y:w50', 50);
    const d = decideLine({
      ...input({
        free: { a: 1, b: 1 },
        holders: { '/x': ['a'], '/y': ['b'] },
        request: { token: far.token, item: '/y' },
      }),
      front,
      length: 100,
      requester: { entry: far, position: 50 },
    });
    assert.equal(d.admitted, true);
    assert.equal(d.requesterHeld, true);
  });
  it('counts abandoned front entries out of a far position', () => {
    const stale = entry('/x:gone', 0, { lastSeenAt: 2000 - ABANDON - 1 });
    const far = entry('/x:w9', 9);
    const d = decideLine({
      ...input({ request: { token: far.token, item: '/x' } }),
      front: [stale, ...front],
      length: 20,
      requester: { entry: far, position: 9 },
    });
    assert.deepEqual(d.abandoned, ['/x:gone']);
    assert.equal(d.position, 8);
  });

  it('says how many free slots the front left over, before a requester from beyond takes one', () => {
    // Both front waiters are overdue: neither is held a slot, so both slots are left over, and
    // the requester beyond the front would take one unless the caller reads further.
    const overdue = [entry('/x:w1', 1, { dueAt: 1500 }), entry('/x:w2', 2, { dueAt: 1500 })];
    const far = entry('/x:w40', 40);
    const d = decideLine({
      ...input({ now: 9000, free: { a: 2 }, request: { token: far.token, item: '/x' } }),
      front: overdue,
      length: 50,
      requester: { entry: far, position: 40 },
    });
    assert.equal(d.leftOver, 2);
    assert.equal(d.admitted, true);
    const kept = decideLine(input({ line: [entry('/x:w1', 1), entry('/x:w2', 2)], free: { a: 3 } }));
    assert.equal(kept.leftOver, 1, 'two held for the front, one over');
    assert.equal(decideLine(input({ line: [entry('/x:w1', 1)], free: { a: 1 } })).leftOver, 0);
  });

  it('reads the front again four times as far, up to a bound, for a slot left over', () => {
    const reads: number[] = [];
    for (let w: number | undefined = frontWindow(1); w !== undefined; w = widerFrontWindow(w)) reads.push(w);
    assert.deepEqual(reads, [36, 144, 576, 1024]);
    assert.equal(frontWindow(1, 10), 46, 'the first read reaches past the admissions under way');
    assert.equal(frontWindow(2000, 500), 4096, 'and stays bounded');
    assert.equal(
      widerFrontWindow(frontWindow(400)),
      undefined,
      'a front read past the bound is not read again',
    );
  });
});
