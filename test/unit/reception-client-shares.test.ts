import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientShares } from '../../src/reception/client-limits.js';
import { SlotLedger } from '../../src/reception/slot-ledger.js';

/** Shares wired to a ledger as the order desk wires them. */
function wired() {
  const ledger = new SlotLedger();
  const shares = new ClientShares((id, server) => ledger.outstandingIds(server).has(id));
  ledger.onTicketGone((id) => shares.ticketEnded(id));
  let n = 0;
  const give = (key: string, server = 'a') => {
    const id = `t${++n}`;
    ledger.reserved({ id, server, issuedAt: 0 });
    shares.ticketGiven(key, id, server);
    return id;
  };
  return { ledger, shares, give };
}

describe('client shares: tickets', () => {
  it('counts tickets as given and uncounts them on every path the ledger frees a slot by', () => {
    const { ledger, shares, give } = wired();
    const ids = Array.from({ length: 6 }, () => give('10.0.0.0/24'));
    give('10.0.1.0/24');
    assert.equal(shares.liveTickets('10.0.0.0/24'), 6);
    assert.equal(shares.liveTickets('10.0.1.0/24'), 1);

    // Fulfilled or lapsed (a completion), failed notice or lost server (no completion).
    ledger.released(ids[0]!, 'a', 1);
    ledger.released(ids[1]!, 'a', 1, 1, false);
    assert.equal(shares.liveTickets('10.0.0.0/24'), 4);
    // The same end announced twice (a late event) is counted once.
    ledger.released(ids[0]!, 'a', 2);
    assert.equal(shares.liveTickets('10.0.0.0/24'), 4);

    // Ended elsewhere (another reception, a store sweep): gone from the store's view at a refresh.
    const outstanding = new Map([['a', new Set(ledger.outstandingIds('a'))]]);
    outstanding.get('a')?.delete(ids[2]!);
    outstanding.get('a')?.delete(ids[3]!);
    ledger.beginRefresh();
    ledger.refresh(outstanding, 3);
    assert.equal(shares.liveTickets('10.0.0.0/24'), 2);
    assert.equal(shares.liveTickets('10.0.1.0/24'), 1);

    ledger.released(ids[4]!, 'a', 4);
    ledger.released(ids[5]!, 'a', 4);
    assert.equal(shares.liveTickets('10.0.0.0/24'), 0);
    // A prefix holding nothing is forgotten.
    assert.equal(shares.size, 1);
    assert.deepEqual(shares.tracked, { tickets: 1, places: 0 });
  });

  it('does not count a ticket the ledger freed before it was handed out', () => {
    const { ledger, shares } = wired();
    ledger.reserved({ id: 'x', server: 'a', issuedAt: 0 });
    // Revoked (or its server lost) while its notice was out.
    ledger.released('x', 'a', 1, undefined, false);
    shares.ticketGiven('k', 'x', 'a');
    assert.equal(shares.liveTickets('k'), 0);
    assert.equal(shares.size, 0);
  });

  it('answers without asking about each ticket again', () => {
    let asked = 0;
    const shares = new ClientShares(() => {
      asked++;
      return true;
    });
    for (let i = 0; i < 5000; i++) shares.ticketGiven('k', `t${i}`, 'a');
    for (let i = 0; i < 5000; i++) assert.equal(shares.liveTickets('k'), 5000);
    // Once per ticket given, never per question.
    assert.equal(asked, 5000);
  });

  it('stays within its bounds, and a forgotten prefix never disturbs a new one of the same key', () => {
    const shares = new ClientShares(() => true, { maxClients: 3, maxTickets: 10 });
    for (let c = 0; c < 5; c++) shares.ticketGiven(`c${c}`, `c${c}-t`, 'a');
    assert.equal(shares.size, 3);
    assert.equal(shares.liveTickets('c0'), 0, 'the least recently used prefix was forgotten');
    // c0 comes back with a new ticket; its forgotten old ticket ends: the new count is untouched.
    shares.ticketGiven('c0', 'c0-new', 'a');
    shares.ticketEnded('c0-t');
    assert.equal(shares.liveTickets('c0'), 1);

    for (let i = 0; i < 25; i++) shares.ticketGiven('c4', `many-${i}`, 'a');
    assert.ok(shares.tracked.tickets <= 10);
    assert.ok(shares.liveTickets('c4') <= 10);
  });
});

describe('client shares: places', () => {
  it('is exact at the limit: places that left the line do not count', () => {
    const shares = new ClientShares();
    const line = new Set<string>();
    const join = (key: string, token: string) => {
      line.add(token);
      shares.placeGiven(key, token);
    };
    for (let i = 0; i < 8; i++) join('k', `p${i}`);
    assert.equal(
      shares.placesAtLeast('k', 8, (t) => line.has(t)),
      true,
    );
    assert.equal(
      shares.placesAtLeast('k', 9, (t) => line.has(t)),
      false,
    );
    line.delete('p3');
    line.delete('p5');
    assert.equal(
      shares.placesAtLeast('k', 8, (t) => line.has(t)),
      false,
    );
    assert.equal(
      shares.placesAtLeast('k', 6, (t) => line.has(t)),
      true,
    );
    for (const t of [...line]) line.delete(t);
    assert.equal(
      shares.placesAtLeast('k', 1, (t) => line.has(t)),
      false,
    );
    assert.equal(shares.size, 0, 'a prefix with no place left is forgotten');
  });

  it('keeps what it remembers near what is in line, with a bounded number of checks', () => {
    const shares = new ClientShares();
    const line = new Set<string>();
    let checked = 0;
    const inLine = (t: string) => {
      checked++;
      return line.has(t);
    };
    // 20,000 joins from one prefix under a limit that is never reached; each place leaves soon.
    for (let i = 0; i < 20_000; i++) {
      assert.equal(shares.placesAtLeast('k', 10_000_000, inLine), false);
      const token = `p${i}`;
      line.add(token);
      shares.placeGiven('k', token);
      line.delete(`p${i - 10}`);
      assert.ok(shares.tracked.places <= 2 * 10 + 16 + 1, `remembered ${shares.tracked.places}`);
    }
    assert.ok(checked <= 3 * 20_000, `checked ${checked} places for 20,000 joins`);
  });

  it('stays within its overall bound', () => {
    const shares = new ClientShares(() => true, { maxPlaces: 50 });
    for (let c = 0; c < 30; c++) for (let i = 0; i < 5; i++) shares.placeGiven(`c${c}`, `c${c}-${i}`);
    assert.ok(shares.tracked.places <= 50);
    assert.equal(
      shares.placesAtLeast('c29', 5, () => true),
      true,
    );
  });
});
